import type { Request, Response } from "express";
import type { ApiKeys } from "../keys/api-keys.ts";
import type { IngestSources } from "../keys/ingest-sources.ts";
import type { Failure } from "../errors.ts";
import { type BodyFailure, type ByteBudget, readBody } from "../http/read-body.ts";
import { verify } from "../signing/standard-webhooks.ts";
import { MAX_BODY_BYTES } from "./usage-body.ts";
import type { SenderContext } from "./usage-item.ts";

/**
 * How many bytes of signed bodies may be held, across all connections, before their signatures
 * are checked: room for a few full-size batches at once, while a crowd of anonymous slow bodies
 * holds no more than this (beyond it they are refused with 503).
 */
export const PRE_AUTH_BYTES = 16 * 1024 * 1024;

/** What the ingest doors need to know who is posting. */
export interface SenderDeps {
  keys: ApiKeys;
  sources: IngestSources;
  /** Shared by every connection: the bytes of signed bodies read before their signature is checked. */
  preAuth: ByteBudget;
}

function bearer(req: Request): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(req.get("authorization") ?? "");
  return match?.[1];
}

async function senderOfKey(token: string, keys: ApiKeys, now: Date): Promise<SenderContext | { error: string }> {
  const key = await keys.find(token);
  if (key?.kind === "virtual") return { error: "the bearer token is a Tollgate virtual key, for calls through the proxy; reporting usage takes an ingest key (tollgate keys create --kind ingest)" };
  if (!key) return { error: "the bearer token is not an active ingest key" };
  return { source: `ingest:${key.name}`, now, team: key.team, project: key.project, feature: key.feature, user: key.user, api_key_id: key.id };
}

export type Authenticated = { ok: true; sender: SenderContext; body: Buffer } | Failure<"unauthorized"> | BodyFailure;

/**
 * Who is posting, and what: an ingest key is checked before a byte of the body is read, so an
 * anonymous or wrong key costs no memory; a Standard Webhooks signature covers the body, which is
 * then read within the shared pre-authentication budget and let go of once checked.
 */
export async function authenticatedBody(req: Request, deps: SenderDeps): Promise<Authenticated> {
  const now = new Date();
  const token = bearer(req);
  if (token) {
    const sender = await senderOfKey(token, deps.keys, now);
    if ("error" in sender) return { ok: false, kind: "unauthorized", message: sender.error };
    const read = await readBody(req, { limit: MAX_BODY_BYTES });
    return read.ok ? { ok: true, sender, body: read.body } : read;
  }
  if (!req.get("webhook-signature"))
    return { ok: false, kind: "unauthorized", message: "send an ingest key as `Authorization: Bearer tlg_...` or sign the request (Standard Webhooks)" };
  const read = await readBody(req, { limit: MAX_BODY_BYTES, budget: deps.preAuth });
  if (!read.ok) return read;
  try {
    const checked = verify(
      { id: req.get("webhook-id"), timestamp: req.get("webhook-timestamp"), signature: req.get("webhook-signature") },
      read.body,
      await deps.sources.activeSecrets(),
    );
    if (!checked.ok) return { ok: false, kind: "unauthorized", message: checked.message };
    return { ok: true, sender: { source: `ingest:${checked.signer.sourceName}`, now }, body: read.body };
  } finally {
    read.release();
  }
}

/** A refusal for want of budget says when to come back, and closes the connection whose body was left unread. */
export function setRefusalHeaders(res: Response, failure: Exclude<Authenticated, { ok: true }>): void {
  if (failure.kind === "unavailable") res.set({ "retry-after": "1", connection: "close" });
}
