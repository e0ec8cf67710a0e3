import type { Request, Response } from "express";
import type { z } from "zod";
import { fieldErrors } from "../errors.ts";
import { sendProblem } from "./problem.ts";

/** Validates a JSON body against a schema, answering 400 with field paths when it does not fit. */
export function parseBody<S extends z.ZodType>(schema: S, req: Request, res: Response): z.infer<S> | undefined {
  const parsed = schema.safeParse(req.body ?? {});
  if (parsed.success) return parsed.data;
  sendProblem(res, "invalid", "the body does not fit the expected shape", { errors: fieldErrors(parsed.error.issues) });
  return undefined;
}

/** Validates the query string (or the part `pick` takes of it), answering 400 with field paths when it does not fit. */
export function parseQuery<S extends z.ZodType>(
  schema: S,
  req: Request,
  res: Response,
  pick: (query: Request["query"]) => unknown = (query) => query,
): z.infer<S> | undefined {
  const parsed = schema.safeParse(pick(req.query));
  if (parsed.success) return parsed.data;
  sendProblem(res, "invalid", "the query does not fit the expected shape", { errors: fieldErrors(parsed.error.issues) });
  return undefined;
}

/** The actor of an admin API request, for the audit log: the admin token, optionally naming the person (`x-tollgate-actor`). */
export function actorOf(req: Request): string {
  const named = req.get("x-tollgate-actor")?.trim();
  return named && /^[^\u0000-\u001f]{1,200}$/.test(named) ? `admin:${named}` : "admin";
}
