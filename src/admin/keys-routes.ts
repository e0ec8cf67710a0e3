import { type Request, type Response, Router } from "express";
import { z } from "zod";
import type { Database } from "../db/connection.ts";
import { type ApiKeys, CreateKeyRequest, type KeyInfo } from "../keys/api-keys.ts";
import { CreateSourceRequest, type IngestSources } from "../keys/ingest-sources.ts";
import { fieldErrors, sendProblem } from "../problem.ts";
import { actorOf, audit } from "./audit.ts";

/** Validates a JSON body against a schema, answering 400 with field paths when it does not fit. */
export function parseBody<S extends z.ZodType>(schema: S, req: Request, res: Response): z.infer<S> | undefined {
  const parsed = schema.safeParse(req.body ?? {});
  if (parsed.success) return parsed.data;
  sendProblem(res, 400, "Bad Request", "the body does not fit the expected shape", { errors: fieldErrors(parsed.error.issues) });
  return undefined;
}

/** What the audit log keeps of a key: who it is for, never the key, its hash or its prefix. */
const keyRecord = ({ key: _key, prefix: _prefix, ...rest }: KeyInfo & { key?: string }) => rest;

export function keysRouter(keys: ApiKeys, sources: IngestSources, providers: readonly string[], database: Database): Router {
  const router = Router();
  const CreateRequest = CreateKeyRequest.superRefine((req, ctx) => {
    for (const [i, name] of (req.allowed_providers ?? []).entries())
      if (!providers.includes(name)) ctx.addIssue({ code: "custom", path: ["allowed_providers", i], message: `one of the proxy's providers: ${providers.join(", ")}` });
  });

  router.post("/keys", async (req, res) => {
    const body = parseBody(CreateRequest, req, res);
    if (!body) return;
    const key = await keys.create(body);
    await audit(database.db, { actor: actorOf(req), action: "create", entity: "key", entityId: key.id, after: keyRecord(key) });
    res.status(201).json(key);
  });
  router.get("/keys", async (_req, res) => {
    res.json({ keys: await keys.list() });
  });
  router.delete("/keys/:id", async (req, res) => {
    const wasLive = (await keys.list()).some((k) => k.id === req.params.id && k.revoked_at === null);
    const revoked = await keys.revoke(req.params.id);
    if (!revoked) return sendProblem(res, 404, "Not Found", `no key with id ${req.params.id}`);
    // Revoking twice is a no-op, and the log keeps changes only.
    if (wasLive) await audit(database.db, { actor: actorOf(req), action: "revoke", entity: "key", entityId: revoked.id, before: keyRecord({ ...revoked, revoked_at: null }), after: keyRecord(revoked) });
    res.json(revoked);
  });

  router.post("/ingest-sources", async (req, res) => {
    const body = parseBody(CreateSourceRequest, req, res);
    if (!body) return;
    const created = await sources.create(body.name);
    if ("conflict" in created) return sendProblem(res, 409, "Conflict", `an ingest source named ${body.name} already exists`);
    await audit(database.db, { actor: actorOf(req), action: "create", entity: "ingest_source", entityId: created.id, after: { id: created.id, name: created.name } });
    res.status(201).json(created);
  });
  router.get("/ingest-sources", async (_req, res) => {
    res.json({ sources: await sources.list() });
  });
  router.post("/ingest-sources/:id/secrets", async (req, res) => {
    const rotated = await sources.rotate(req.params.id);
    if (!rotated) return sendProblem(res, 404, "Not Found", `no ingest source with id ${req.params.id}`);
    await audit(database.db, { actor: actorOf(req), action: "add_secret", entity: "ingest_source", entityId: req.params.id, after: { secret_id: rotated.secret_id } });
    res.status(201).json(rotated);
  });
  router.post("/ingest-sources/:id/revoke-older-secrets", async (req, res) => {
    const revoked = await sources.revokeOlderSecrets(req.params.id);
    if (revoked > 0) await audit(database.db, { actor: actorOf(req), action: "revoke_older_secrets", entity: "ingest_source", entityId: req.params.id, after: { revoked } });
    res.json({ revoked });
  });
  return router;
}
