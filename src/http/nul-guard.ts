import type { NextFunction, Request, Response } from "express";
import { sendProblem } from "./problem.ts";

/*
 * PostgreSQL text cannot hold a NUL byte: one that reaches a query fails it, and the caller got a
 * 500 for what is their own mistake. NULs are refused at the door, precisely, instead.
 */

/** A NUL anywhere in the path or the query string, raw or percent-encoded. */
export function refuseNulInUrl(req: Request, res: Response, next: NextFunction): void {
  if (!/%00|\u0000/i.test(req.url)) return next();
  sendProblem(res, "invalid", "the path or query contains a NUL byte (%00), which no name or id can hold");
}

/** Where in a parsed JSON body a NUL first appears (in a key or a string), or undefined. */
export function nulPathIn(value: unknown, path = ""): string | undefined {
  if (typeof value === "string") return value.includes("\u0000") ? path || "(body)" : undefined;
  if (typeof value !== "object" || value === null) return undefined;
  for (const [key, inner] of Object.entries(value)) {
    const here = Array.isArray(value) ? `${path}[${key}]` : path ? `${path}.${key}` : key;
    if (key.includes("\u0000")) return here;
    const found = nulPathIn(inner, here);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** A NUL in any string or key of an already parsed JSON body. */
export function refuseNulInBody(req: Request, res: Response, next: NextFunction): void {
  const path = nulPathIn(req.body);
  if (path === undefined) return next();
  sendProblem(res, "invalid", `the body holds a NUL byte (\\u0000) at ${JSON.stringify(path)}, which no stored text can hold`, {
    errors: [{ path, message: "contains a NUL byte" }],
  });
}
