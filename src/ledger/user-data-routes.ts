import { once } from "node:events";
import { type Request, type Response, Router } from "express";
import type { Database } from "../db/connection.ts";
import { labelText } from "../keys/api-keys.ts";
import { audit } from "../audit/log.ts";
import { fieldErrors } from "../errors.ts";
import { sendProblem } from "../http/problem.ts";
import { actorOf } from "../http/request.ts";
import type { Logger } from "../logger.ts";
import { eraseUserUsage, userEventPages } from "./user-data.ts";

/** The `:user` of the path, as events carry it; answers 400 when no event could carry it. */
function userOf(req: Request, res: Response): string | undefined {
  const parsed = labelText.safeParse(req.params.user);
  if (parsed.success && parsed.data === req.params.user) return parsed.data;
  const errors = parsed.success ? [{ path: "user", message: "must not start or end with spaces" }] : fieldErrors(parsed.error.issues).map((e) => ({ ...e, path: "user" }));
  sendProblem(res, "invalid", "the user in the path is not one usage events can name", { errors });
  return undefined;
}

/** Writes respecting backpressure; false once the client has gone. */
async function write(res: Response, chunk: string): Promise<boolean> {
  if (res.destroyed) return false;
  if (res.write(chunk)) return true;
  await Promise.race([once(res, "drain"), once(res, "close")]);
  return !res.destroyed;
}

/** `/api/users/:user/usage`: one end user's usage exported as NDJSON, or erased with the rollups corrected. */
export function userDataRouter(database: Database, logger: Logger): Router {
  const router = Router();

  router.get("/users/:user/usage", async (req, res) => {
    const user = userOf(req, res);
    if (!user) return;
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
    await audit(database.db, { actor: actorOf(req), action: "export", entity: "usage", entityId: user, after: { events } });
  });

  router.delete("/users/:user/usage", async (req, res) => {
    const user = userOf(req, res);
    if (!user) return;
    res.json(await eraseUserUsage(database, user, actorOf(req)));
  });

  return router;
}
