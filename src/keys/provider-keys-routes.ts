import { Router } from "express";
import type { Database } from "../db/connection.ts";
import { sendProblem } from "../http/problem.ts";
import { actorOf, parseBody } from "../http/request.ts";
import { type ProviderKeys, setProviderKeyRequestFor } from "./provider-keys.ts";
import { rotateMasterKey } from "./rotate-master.ts";
import type { SecretBox } from "./secret-box.ts";

/**
 * Provider keys: set, replace, remove and list (never shown back), and the master key's rotation;
 * each change is audited by the store, in the change's own transaction.
 */
export function providersRouter(deps: { database: Database; box: SecretBox; providerKeys: ProviderKeys; providers: readonly string[] }): Router {
  const router = Router();
  const SetRequest = setProviderKeyRequestFor(deps.providers);

  router.get("/providers", async (_req, res) => {
    res.json({ providers: await deps.providerKeys.list(deps.providers) });
  });
  router.post("/providers", async (req, res) => {
    const body = parseBody(SetRequest, req, res);
    if (!body) return;
    res.json(await deps.providerKeys.set(body.name, body.api_key, actorOf(req)));
  });
  router.delete("/providers/:name", async (req, res) => {
    const after = await deps.providerKeys.remove(req.params.name, actorOf(req));
    if (!after) return sendProblem(res, "not_found", `no stored key for provider ${req.params.name}`);
    res.json(after);
  });
  router.post("/providers/rotate-master", async (req, res) => {
    res.json(await rotateMasterKey(deps.database, deps.box, actorOf(req)));
  });
  return router;
}
