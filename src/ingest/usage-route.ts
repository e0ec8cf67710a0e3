import { type Request, type Response, Router } from "express";
import { textOf } from "../http/charset.ts";
import type { LedgerEvent } from "../ledger/build-event.ts";
import type { Recorder } from "../ledger/recorder.ts";
import { usageEventsTotal } from "../metrics.ts";
import type { FieldError } from "../errors.ts";
import { sendProblem } from "../http/problem.ts";
import { formatOf, splitBody } from "./usage-body.ts";
import { type Authenticated, type SenderDeps, authenticatedBody, setRefusalHeaders } from "./sender-auth.ts";
import { type SenderContext, fromCloudEvent, toUsageEvent } from "./usage-item.ts";

export interface IngestDeps extends SenderDeps {
  recorder: Recorder;
}

type Rejection = { index: number; id: string | null; errors: FieldError[] };

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
  } catch {
    res.set("retry-after", "5");
    sendProblem(res, "storage_unavailable", "the ledger could not be written; nothing from this request was recorded, send it again");
    return;
  }
  const accepted = outcomes.filter(Boolean).length;
  answer(res, accepted, outcomes.length - accepted, rejected);
}

/** Answers a failure to authenticate or to read the body; a client gone away gets nothing. */
export function refuse(res: Response, failure: Exclude<Authenticated, { ok: true }>): void {
  if (failure.kind === "aborted") return;
  setRefusalHeaders(res, failure);
  sendProblem(res, failure.kind, failure.message);
}

/** Validates and records a usage post from a sender already authenticated. */
export async function handleUsagePost(req: Request, res: Response, recorder: Recorder, sender: SenderContext, body: Buffer): Promise<void> {
  const format = formatOf(req.get("content-type"));
  if (!format)
    return sendProblem(res, "unsupported_media_type", "send application/json, application/x-ndjson, application/cloudevents+json or application/cloudevents-batch+json");
  const text = textOf(body, req.get("content-type"));
  if (!text.ok) return sendProblem(res, text.kind, text.message);
  const split = splitBody(format, text.text);
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

export function usageRouter(deps: IngestDeps): Router {
  const router = Router();
  router.post("/v1/usage", async (req: Request, res: Response) => {
    const auth = await authenticatedBody(req, deps);
    if (!auth.ok) return refuse(res, auth);
    await handleUsagePost(req, res, deps.recorder, auth.sender, auth.body);
  });
  return router;
}
