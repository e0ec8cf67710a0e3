import { z } from "zod";
import type { CallUsage, StreamTap } from "../types.ts";
import { batchResult, jsonlTap } from "../batch.ts";
import { envelopeUsage, isRecord, parseJson, barePath } from "../wire.ts";
import { anthropicUsage } from "./usage.ts";

/*
 * A Message Batch's results file (`GET messages/batches/{id}/results`): JSONL, one line per request,
 * `{"custom_id", "result": {"type": "succeeded", "message": {..., "model", "usage"}}}`; errored,
 * canceled and expired results carry no usage and cost nothing. The batch object itself reports no
 * usage, so this file is where a batch's spend is read: each succeeded request is recorded under
 * `batch:{batch id}:{custom_id}`, at the batch tier, and the ledger's one row per id makes reading
 * the file again record nothing new. The file is read line by line as it is relayed (jsonl.ts); a
 * line too long to read is passed on unread, its request not recorded (its custom_id is unknown).
 */

/** `messages/batches/{id}/results`, the batch id captured. */
export const RESULTS = /(?:^|\/)messages\/batches\/([^/]+)\/results$/;

/** The batch a results path reads, or undefined when the path is not a results file. */
export function resultsBatch(path: string): string | undefined {
  return RESULTS.exec(barePath(path))?.[1];
}

const Line = z.looseObject({
  custom_id: z.string().min(1).max(64),
  result: z.looseObject({ type: z.string(), message: z.unknown().optional() }),
});

/** The usage one results line bills, or undefined (not succeeded, unreadable, or without usage). */
export function resultUsage(batchId: string, line: string): CallUsage | undefined {
  const parsed = Line.safeParse(parseJson(line)).data;
  if (!parsed || parsed.result.type !== "succeeded") return undefined;
  const seen = envelopeUsage(anthropicUsage, parsed.result.message, "usage", "model");
  if (!seen.usage) return undefined;
  return batchResult(seen, `batch:${batchId.slice(0, 100)}:${parsed.custom_id}`);
}

/** Reads a results file as it passes, unchanged, and reports each succeeded request's usage. */
export const resultsTap = (batchId: string): StreamTap => jsonlTap((line, _index, whole) => (whole ? resultUsage(batchId, line) : undefined));

/** A batch object with its `results_url` made relative (path and query kept), or undefined when there is nothing to change. */
function relativeResults(batch: unknown): unknown {
  if (!isRecord(batch) || batch.type !== "message_batch" || typeof batch.results_url !== "string") return undefined;
  const url = URL.parse(batch.results_url);
  if (!url) return undefined;
  return { ...batch, results_url: `${url.pathname}${url.search}` };
}

/**
 * A batch object (retrieved, created, cancelled) or a page of them, with each `results_url` relative,
 * or undefined when none names a results file. Anthropic gives an absolute URL on its own host,
 * which the SDKs follow as it is: around the gateway, with the client's gateway key. A relative one
 * the SDKs (TypeScript and Python) resolve against their base URL, so the read comes through here
 * and the batch's spend is recorded; Anthropic's path is kept as given, never assumed.
 */
export function gatewayResultsUrls(body: unknown): unknown {
  const one = relativeResults(body);
  if (one !== undefined || !isRecord(body) || !Array.isArray(body.data)) return one;
  const page = body.data.map((b) => relativeResults(b) ?? b);
  return page.some((b, i) => b !== (body.data as unknown[])[i]) ? { ...body, data: page } : undefined;
}
