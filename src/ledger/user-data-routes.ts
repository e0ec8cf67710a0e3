import { once } from "node:events";
import { type Request, type Response, Router } from "express";
import type { Database } from "../db/connection.ts";
import { labelText } from "../keys/api-keys.ts";
import { audit } from "../audit/log.ts";
import { type FieldError, fieldErrors } from "../errors.ts";
import { sendProblem } from "../http/problem.ts";
import { actorOf } from "../http/request.ts";
import type { Logger } from "../logger.ts";
import { eraseUserUsage, userEventPages } from "./user-data.ts";

/** An end user id as events carry it, or why no event could carry it. */
export function parseUserId(raw: unknown): { ok: true; user: string } | { ok: false; errors: FieldError[] } {
  const parsed = labelText.safeParse(raw);
  if (parsed.success && parsed.data === raw) return { ok: true, user: parsed.data };
  return { ok: false, errors: parsed.success ? [{ path: "user", message: "must not start or end with spaces" }] : fieldErrors(parsed.error.issues).map((e) => ({ ...e, path: "user" })) };
}

/** The `:user` of the path; answers 400 when no event could carry it. */
function userOf(req: Request, res: Response): string | undefined {
  const parsed = parseUserId(req.params.user);
  if (parsed.ok) return parsed.user;
  sendProblem(res, "invalid", "the user in the path is not one usage events can name", { errors: parsed.errors });
  return undefined;
}

/** Writes respecting backpressure; false once the client has gone. */
async function write(res: Response, chunk: string): Promise<boolean> {
  if (res.destroyed) return false;
  if (res.write(chunk)) return true;
  await Promise.race([once(res, "drain"), once(res, "close")]);
  return !res.destroyed;
}

/**
 * Streams one end user's usage as NDJSON, a page at a time, then audits what left the gateway
 * under `actor`: the admin API's export and the dashboard's are this one.
 */
export async function sendUserExport(res: Response, database: Database, logger: Logger, user: string, actor: string): Promise<void> {
  // attachment() guesses a type from the file name; the NDJSON type is set after it.
  res.attachment(`tollgate-usage-${user.replace(/[^\w.-]/g, "_")}.ndjson`);
  res.status(200).type("application/x-ndjson");
  let events = 0;
  try {
    for await (const page of userEventPages(database, user)) {
      if (!(await write(res, page.map((e) => `${JSON.stringify(e)}\n`).join("")))) break;
      events += page.length;
    }
    if (!res.destroyed) res.end();
  } catch (err) {
    // The status line is gone already: cutting the stream short is the only way to say it failed.
    logger.error({ error: (err as Error).name, code: (err as { code?: string }).code, reqId: res.locals.requestId }, "usage export failed");
    res.destroy();
    return;
  }
  // What left the gateway, even when the client stopped reading part way.
  await audit(database.db, { actor, action: "export", entity: "usage", entityId: user, after: { events } });
}

/** `/api/users/:user/usage`: one end user's usage exported as NDJSON, or erased with the rollups corrected. */
export function userDataRouter(database: Database, logger: Logger): Router {
  const router = Router();

  router.get("/users/:user/usage", async (req, res) => {
    const user = userOf(req, res);
    if (!user) return;
    await sendUserExport(res, database, logger, user, actorOf(req));
  });

  router.delete("/users/:user/usage", async (req, res) => {
    const user = userOf(req, res);
    if (!user) return;
    res.json(await eraseUserUsage(database, user, actorOf(req)));
  });

  return router;
}
