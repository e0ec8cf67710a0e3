import { createHash } from "node:crypto";
import { z } from "zod";
import { batchResult, jsonlTap } from "../batch.ts";
import type { CallUsage, StreamTap } from "../types.ts";
import { envelopeUsage, isRecord, lenient, parseJson, pathOnly, someText } from "../wire.ts";
import { geminiUsage } from "./usage.ts";

/*
 * Gemini Batch API spend. `models/{model}:batchGenerateContent` creates a batch, a long-running
 * operation `batches/{id}`; `GET batches/{id}` polls it. Once it is done, its responses are either
 * inline, in the operation itself (`response.inlinedResponses.inlinedResponses[]`, repeated in
 * `metadata.output`, where the SDKs read them), or in a JSONL file (`responsesFile: "files/{id}"`),
 * downloaded with `GET files/{id}:download?alt=media`; the SDKs build that path from the file's name
 * and their base URL, so the download comes through the gateway. Each result is a
 * GenerateContentResponse with its `usageMetadata`, or an error that costs nothing.
 *
 * Each succeeded request is recorded once, at the batch tier, under `batch:{batch or file
 * name}:{index}` (its place among the results, which Google keeps in request order), with the
 * request's own key added when it has one (`batch:batches/abc:0:request-1`). Reading the batch or
 * the file again builds the same ids, and the ledger keeps one row per id.
 */

const tidy = (path: string) => pathOnly(path).replace(/\/+$/, "");

/** `batches/{id}`, the name captured. */
export const BATCH = /(?:^|\/)(batches\/[^/:]+)$/;
/** `files/{id}:download` (under `/download/v1beta/` in Google's REST examples, `/v1beta/` from the SDKs), the name captured. */
export const DOWNLOAD = /(?:^|\/)(files\/[^/:]+):download$/;

/** The batch a poll reads (`batches/{id}`), or undefined. */
export const polledBatch = (path: string): string | undefined => BATCH.exec(tidy(path))?.[1];
/** The file a download reads (`files/{id}`), or undefined. */
export const downloadedFile = (path: string): string | undefined => DOWNLOAD.exec(tidy(path))?.[1];

/** Keys this plain go into the ledger id as they are; others are hashed, as ids are bounded and printable. */
const PLAIN_KEY = /^[\x21-\x7e]{1,64}$/;

/** The ledger id of the `index`th request of `batch` (a batch's or a responses file's name). */
export function requestId(batch: string, index: number, key: unknown): string {
  const id = `batch:${batch.slice(0, 100)}:${index}`;
  if (typeof key !== "string" || key === "") return id;
  return `${id}:${PLAIN_KEY.test(key) ? key : createHash("sha256").update(key).digest("hex").slice(0, 32)}`;
}

/**
 * What one result bills: a response is recorded (its usage unread when it carries none that reads,
 * and then unpriced), an error nothing. `model` names the model where the response does not.
 */
function resultUsage(result: Record<string, unknown>, id: string, model: string | undefined): CallUsage | undefined {
  if (!isRecord(result.response) || result.error != null) return undefined;
  const seen = envelopeUsage(geminiUsage, result.response, "usageMetadata", "modelVersion");
  return batchResult({ usage: seen.usage, model: seen.model ?? model }, id);
}

const Output = z.looseObject({ inlinedResponses: z.looseObject({ inlinedResponses: z.array(z.unknown()) }) });
const Operation = z.looseObject({
  response: z.unknown().optional(),
  metadata: lenient(z.looseObject({ model: someText, output: z.unknown().optional() })),
});
const Inlined = z.looseObject({ metadata: lenient(z.looseObject({ key: z.unknown().optional() })) });

const NOTHING: CallUsage = { usage: undefined, model: undefined };

/**
 * A poll's answer: nothing while the batch runs or when its responses are in a file; once its
 * inline responses are there, one result per succeeded request.
 */
export function inlineResults(path: string, body: unknown): CallUsage {
  const batch = polledBatch(path);
  const operation = Operation.safeParse(body).data;
  const output = Output.safeParse(operation?.response).data ?? Output.safeParse(operation?.metadata?.output).data;
  if (batch === undefined || !output) return NOTHING;
  const model = operation?.metadata?.model?.replace(/^models\//, "");
  const results = output.inlinedResponses.inlinedResponses.flatMap((result, index) => {
    if (!isRecord(result)) return [];
    return resultUsage(result, requestId(batch, index, Inlined.safeParse(result).data?.metadata?.key), model) ?? [];
  });
  return { ...NOTHING, results };
}

/** Where a line names a response: a line too long to read that does is recorded, unpriced. */
const NAMES_RESPONSE = /"response"\s*:\s*\{/;

/**
 * A responses file as it is downloaded, line by line (`{"key", "response"}` or `{"key", "error"}`),
 * one result per succeeded request. Any file can be downloaded this way; only lines that are
 * responses bill anything.
 */
export function responsesFileTap(file: string): StreamTap {
  return jsonlTap((line, index, whole) => {
    if (!whole) return NAMES_RESPONSE.test(line) ? batchResult(NOTHING, requestId(file, index, undefined)) : undefined;
    const result = parseJson(line);
    return isRecord(result) ? resultUsage(result, requestId(file, index, result.key), undefined) : undefined;
  });
}
