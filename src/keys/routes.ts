import { Router } from "express";
import { sendProblem } from "../http/problem.ts";
import { actorOf, parseBody } from "../http/request.ts";
import { type ApiKeys, createKeyRequestFor } from "./api-keys.ts";
import { CreateSourceRequest, type IngestSources } from "./ingest-sources.ts";

/** Keys and ingest sources; each change is audited by its store, in the change's own transaction. */
export function keysRouter(keys: ApiKeys, sources: IngestSources, providers: readonly string[]): Router {
  const router = Router();
  const CreateRequest = createKeyRequestFor(providers);

  router.post("/keys", async (req, res) => {
    const body = parseBody(CreateRequest, req, res);
    if (!body) return;
    res.status(201).json(await keys.create(body, actorOf(req)));
  });
  router.get("/keys", async (_req, res) => {
    res.json({ keys: await keys.list() });
  });
  router.delete("/keys/:id", async (req, res) => {
    const revoked = await keys.revoke(req.params.id, actorOf(req));
    if (!revoked) return sendProblem(res, "not_found", `no key with id ${req.params.id}`);
    res.json(revoked);
  });

  router.post("/ingest-sources", async (req, res) => {
    const body = parseBody(CreateSourceRequest, req, res);
    if (!body) return;
    const created = await sources.create(body.name, actorOf(req));
    if ("conflict" in created) return sendProblem(res, "conflict", `an ingest source named ${body.name} already exists`);
    res.status(201).json(created);
  });
  router.get("/ingest-sources", async (_req, res) => {
    res.json({ sources: await sources.list() });
  });
  router.post("/ingest-sources/:id/secrets", async (req, res) => {
    const rotated = await sources.rotate(req.params.id, actorOf(req));
    if (!rotated) return sendProblem(res, "not_found", `no ingest source with id ${req.params.id}`);
    res.status(201).json(rotated);
  });
  router.post("/ingest-sources/:id/revoke-older-secrets", async (req, res) => {
    res.json({ revoked: await sources.revokeOlderSecrets(req.params.id, actorOf(req)) });
  });
  return router;
}
