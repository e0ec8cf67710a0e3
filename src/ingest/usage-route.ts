import express, { type Request, type Response, Router } from "express";
import type { ApiKeys } from "../keys/api-keys.ts";
import type { IngestSources } from "../keys/ingest-sources.ts";
import type { LedgerEvent } from "../ledger/build-event.ts";
import { DatabaseTimeout, type Recorder } from "../ledger/recorder.ts";
import { usageEventsTotal } from "../metrics.ts";
import type { FieldError } from "../errors.ts";
import { sendProblem } from "../http/problem.ts";
import { verify } from "../signing/standard-webhooks.ts";
import { MAX_BODY_BYTES, formatOf, splitBody } from "./usage-body.ts";
import { type SenderContext, fromCloudEvent, toUsageEvent } from "./usage-item.ts";

export interface IngestDeps {
  keys: ApiKeys;
  sources: IngestSources;
  recorder: Recorder;
}

type Rejection = { index: number; id: string | null; errors: FieldError[] };

function bearer(req: Request): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(req.get("authorization") ?? "");
  return match?.[1];
}

/** Who is posting: an ingest key, or a sender whose Standard Webhooks signature checks out. */
export async function authenticateSender(req: Request, body: Buffer, deps: IngestDeps): Promise<SenderContext | { error: string }> {
  const now = new Date();
  const token = bearer(req);
  if (token) {
    const key = await deps.keys.find(token);
    if (key?.kind === "virtual") return { error: "the bearer token is a Tollgate virtual key, for calls through the proxy; reporting usage takes an ingest key (tollgate keys create --kind ingest)" };
    if (!key) return { error: "the bearer token is not an active ingest key" };
    return { source: `ingest:${key.name}`, now, team: key.team, project: key.project, feature: key.feature, user: key.user, api_key_id: key.id };
  }
  if (req.get("webhook-signature")) {
    const checked = verify(
      { id: req.get("webhook-id"), timestamp: req.get("webhook-timestamp"), signature: req.get("webhook-signature") },
      body,
      await deps.sources.activeSecrets(),
    );
    if (!checked.ok) return { error: checked.message };
    return { source: `ingest:${checked.signer.sourceName}`, now };
  }
  return { error: "send an ingest key as `Authorization: Bearer tlg_...` or sign the request (Standard Webhooks)" };
}

/** Sends the committed outcome: 200 all taken, 207 some rejected, 422 none taken. */
function answer(res: Response, accepted: number, duplicates: number, rejected: Rejection[]): void {
  const status = rejected.length === 0 ? 200 : accepted + duplicates > 0 ? 207 : 422;
  res.status(status).json({ accepted, duplicates, rejected });
}

/** Records the events and answers only after they are committed. */
export async function recordAndAnswer(res: Response, recorder: Recorder, events: LedgerEvent[], rejected: Rejection[]): Promise<void> {
  usageEventsTotal.inc({ outcome: "rejected" }, rejected.length);
  let outcomes: boolean[];
  try {
    outcomes = events.length > 0 ? await recorder.record(events) : [];
  } catch (err) {
    res.set("retry-after", "5");
    if (err instanceof DatabaseTimeout)
      sendProblem(res, "storage_unavailable", `the ledger database did not answer within ${err.afterMs} ms; send the request again (events already recorded are not counted twice)`);
    else sendProblem(res, "storage_unavailable", "the ledger could not be written; nothing from this request was recorded, send it again");
    return;
  }
  const accepted = outcomes.filter(Boolean).length;
  answer(res, accepted, outcomes.length - accepted, rejected);
}

/** Reads, validates and records a usage post from a sender already authenticated. */
export async function handleUsagePost(req: Request, res: Response, recorder: Recorder, sender: SenderContext): Promise<void> {
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  const format = formatOf(req.get("content-type"));
  if (!format)
    return sendProblem(res, "unsupported_media_type", "send application/json, application/x-ndjson, application/cloudevents+json or application/cloudevents-batch+json");
  const split = splitBody(format, body.toString("utf8"));
  if (!split.ok) return sendProblem(res, split.error.kind, split.error.message);
  const toEvent = format === "cloudevent" || format === "cloudevents-batch" ? fromCloudEvent : toUsageEvent;
  const events: LedgerEvent[] = [];
  const rejected: Rejection[] = [];
  for (const item of split.items) {
    if (item.error) {
      rejected.push({ index: item.index, id: null, errors: [item.error] });
      continue;
    }
    const result = toEvent(item.value, sender, recorder.builder);
    if (result.ok) events.push(result.event);
    else rejected.push({ index: item.index, id: result.id, errors: result.errors });
  }
  await recordAndAnswer(res, recorder, events, rejected);
}

/** Raw bytes: the signature covers them, and the content type decides how they are read. */
export const rawUsageBody = express.raw({ type: () => true, limit: MAX_BODY_BYTES });

export function usageRouter(deps: IngestDeps): Router {
  const router = Router();
  router.post("/v1/usage", rawUsageBody, async (req: Request, res: Response) => {
    const sender = await authenticateSender(req, Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0), deps);
    if ("error" in sender) return sendProblem(res, "unauthorized", sender.error);
    await handleUsagePost(req, res, deps.recorder, sender);
  });
  return router;
}
