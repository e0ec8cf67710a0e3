import { Router } from "express";
import { z } from "zod";
import type { Database } from "../db/connection.ts";
import { type ProviderKeys, SetProviderKeyRequest } from "../keys/provider-keys.ts";
import { rotateMasterKey } from "../keys/rotate-master.ts";
import type { SecretBox } from "../keys/secret-box.ts";
import { sendProblem } from "../problem.ts";
import { actorOf, audit } from "./audit.ts";
import { parseBody } from "./keys-routes.ts";

/** Provider keys: set, replace, remove and list (never shown back), and the master key's rotation. */
export function providersRouter(deps: { database: Database; box: SecretBox; providerKeys: ProviderKeys; providers: readonly string[] }): Router {
  const router = Router();
  const SetRequest = SetProviderKeyRequest.extend({
    name: z.enum(deps.providers as [string, ...string[]], { error: `one of the proxy's providers: ${deps.providers.join(", ")}` }),
  });

  router.get("/providers", async (_req, res) => {
    res.json({ providers: await deps.providerKeys.list(deps.providers) });
  });
  router.post("/providers", async (req, res) => {
    const body = parseBody(SetRequest, req, res);
    if (!body) return;
    const [before] = await deps.providerKeys.list([body.name]);
    const after = await deps.providerKeys.set(body.name, body.api_key);
    // Listings hold the key's last characters at most: the record never holds the key.
    await audit(deps.database.db, { actor: actorOf(req), action: "set", entity: "provider_key", entityId: body.name, before, after });
    res.json(after);
  });
  router.delete("/providers/:name", async (req, res) => {
    const [before] = await deps.providerKeys.list([req.params.name]);
    if (!(await deps.providerKeys.remove(req.params.name))) return sendProblem(res, 404, "Not Found", `no stored key for provider ${req.params.name}`);
    const [after] = await deps.providerKeys.list([req.params.name]);
    await audit(deps.database.db, { actor: actorOf(req), action: "remove", entity: "provider_key", entityId: req.params.name, before, after });
    res.json(after);
  });
  router.post("/providers/rotate-master", async (req, res) => {
    const rotated = await rotateMasterKey(deps.database, deps.box);
    await audit(deps.database.db, { actor: actorOf(req), action: "rotate_master", entity: "provider_key", entityId: rotated.master_key_id, after: rotated });
    res.json(rotated);
  });
  return router;
}
