import { createHash } from "node:crypto";
import { StringDecoder } from "node:string_decoder";
import { z } from "zod";
import { batchResult, jsonlTap } from "../batch.ts";
import { type ValueReader, jsonValues } from "../json-values.ts";
import type { CallUsage, StreamTap } from "../types.ts";
import { envelopeUsage, isRecord, lenient, parseJson, barePath } from "../wire.ts";
import { geminiUsage } from "./usage.ts";

/*
 * Gemini Batch API spend. `models/{model}:batchGenerateContent` creates a batch, a long-running
 * operation `batches/{id}`; `GET batches/{id}` polls it. Once it is done, its responses are either
 * inline, in the operation itself (`response.inlinedResponses.inlinedResponses[]`, repeated in
 * `metadata.output`, where the SDKs read them), or in a JSONL file (`responsesFile: "files/{id}"`),
 * downloaded with `GET files/{id}:download?alt=media`; the SDKs build that path from the file's name
 * and their base URL, so the download comes through the gateway. Each result is a
 * GenerateContentResponse with its `usageMetadata`, or an error that costs nothing. Both are read
 * as they pass to the client, one response at a time (json-values.ts, ../batch.ts), never held whole.
 *
 * Each succeeded request is recorded once, at the batch tier, under `batch:{batch or file
 * name}:{index}` (its place among the results, which Google keeps in request order), with the
 * request's own key added when it has one (`batch:batches/abc:0:request-1`). Reading the batch or
 * the file again builds the same ids, and the ledger keeps one row per id.
 */

/** `batches/{id}`, the name captured. */
export const BATCH = /(?:^|\/)(batches\/[^/:]+)$/;
/** `files/{id}:download` (under `/download/v1beta/` in Google's REST examples, `/v1beta/` from the SDKs), the name captured. */
export const DOWNLOAD = /(?:^|\/)(files\/[^/:]+):download$/;

/** `batches`: the listing of every batch, each as a poll would show it. */
export const LIST = /(?:^|\/)batches$/;

/** Whether a request lists the batches. */
export const listsBatches = (path: string): boolean => LIST.test(barePath(path));
/** The batch a poll reads (`batches/{id}`), or undefined. */
export const polledBatch = (path: string): string | undefined => BATCH.exec(barePath(path))?.[1];
/** The file a download reads (`files/{id}`), or undefined. */
export const downloadedFile = (path: string): string | undefined => DOWNLOAD.exec(barePath(path))?.[1];

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
 * and then unpriced), an error nothing.
 */
function resultUsage(result: Record<string, unknown>, id: string): CallUsage | undefined {
  if (!isRecord(result.response) || result.error != null) return undefined;
  return batchResult(envelopeUsage(geminiUsage, result.response, "usageMetadata", "modelVersion"), id);
}

/** Where a result names a response: one too long to read that does is recorded, unpriced. */
const NAMES_RESPONSE = /"response"\s*:\s*\{/;

const Inlined = z.looseObject({ metadata: lenient(z.looseObject({ key: z.unknown().optional() })) });

/** Where a poll's answer holds inline responses (the operation's `response`, repeated in `metadata.output`), and the batch's model. */
const INLINE = ["/response/inlinedResponses/inlinedResponses/*", "/metadata/output/inlinedResponses/inlinedResponses/*"];
const MODEL = "/metadata/model";

const NOTHING: CallUsage = { usage: undefined, model: undefined };

/**
 * A poll's answer, read as it passes: nothing while the batch runs or when its responses are in a
 * file; once its inline responses are there, one result per succeeded request. The answer is
 * never parsed or held whole, only one response at a time: a done batch's answer carries all its
 * responses, twice, beyond what the proxy holds of a JSON answer.
 */
export function pollTap(batch: string): StreamTap {
  /** The responses read, by their place: the second copy of each is passed by unparsed. */
  const read = new Map<number, InlineResult>();
  let model: string | undefined;
  return scanningTap(
    [...INLINE, MODEL],
    (target, text, index, whole) => {
      if (target === INLINE.length) model = modelName(text);
      else if (!read.has(index)) read.set(index, inlineResult(text, whole));
    },
    // The batch's model stands in for responses that do not name theirs (it may come after them).
    () => billed(batch, read, model),
  );
}

/** What one inline response bills, its id still to be made (the batch's name, its place, its request's key), and that key. */
interface InlineResult {
  seen: CallUsage | undefined;
  key: unknown;
}

function inlineResult(text: string, whole: boolean): InlineResult {
  if (!whole) return { seen: NAMES_RESPONSE.test(text) ? batchResult(NOTHING, "") : undefined, key: undefined };
  const result = parseJson(text);
  return { seen: (isRecord(result) && resultUsage(result, "")) || undefined, key: Inlined.safeParse(result).data?.metadata?.key };
}

/** A batch's responses read, each under its id, the batch's model standing in for those that name none. */
function billed(batch: string, read: Map<number, InlineResult>, model: string | undefined): CallUsage[] {
  return [...read].flatMap(([index, { seen, key }]) => (seen ? [{ ...seen, key: requestId(batch, index, key), model: seen.model ?? model }] : []));
}

/** A batch's model as its metadata names it (`models/…`), bare; undefined when it names none. */
function modelName(text: string): string | undefined {
  const named = parseJson(text);
  return typeof named === "string" ? named.replace(/^models\//, "") || undefined : undefined;
}

/** A tap that scans a JSON answer for `targets` as it passes (json-values.ts) and bills what `results` makes of what was read. */
function scanningTap(targets: readonly string[], read: ValueReader, results: () => CallUsage[]): StreamTap {
  const decoder = new StringDecoder("utf8");
  const scanner = jsonValues(targets, read);
  return {
    push(chunk) {
      scanner.push(decoder.write(chunk));
      return chunk;
    },
    end() {
      scanner.push(decoder.end());
      return undefined;
    },
    result: () => {
      const found = results();
      return found.length === 0 ? NOTHING : { ...NOTHING, results: found };
    },
  };
}

/** Where a listing holds each batch's name, model and inline responses (as a poll's answer does, under `operations`). */
const LISTED = ["/operations/*/name", "/operations/*/metadata/model", ...INLINE.map((path) => `/operations/*${path}`)];

/**
 * A listing of batches (`GET batches`, `{operations: [...]}`), read as it passes: each done batch
 * in it shows its inline responses as a poll of it would, and each succeeded one is recorded under
 * the id a poll gives it, so reading a batch both ways records it once. A batch's name and model may
 * come after its responses: what each response bills waits for them until the listing ends. A
 * response whose batch has no name cannot be told from another batch's and is left out.
 */
export function listingTap(): StreamTap {
  const names = new Map<number, string>();
  const models = new Map<number, string | undefined>();
  /** Per batch (its place in the listing), its responses read, as a poll reads them. */
  const read = new Map<number, Map<number, InlineResult>>();
  return scanningTap(
    LISTED,
    (target, text, index, whole, indices) => {
      const batch = indices[0] ?? 0;
      if (target === 0) {
        const name = parseJson(text);
        if (typeof name === "string") names.set(batch, name);
        return;
      }
      if (target === 1) return void models.set(batch, modelName(text));
      const responses = read.get(batch) ?? new Map<number, InlineResult>();
      read.set(batch, responses);
      if (!responses.has(index)) responses.set(index, inlineResult(text, whole));
    },
    () =>
      [...read].flatMap(([batch, responses]) => {
        const name = names.get(batch);
        return name !== undefined && BATCH.test(name) ? billed(name, responses, models.get(batch)) : [];
      }),
  );
}

/**
 * A responses file as it is downloaded, line by line (`{"key", "response"}` or `{"key", "error"}`),
 * one result per succeeded request. Any file can be downloaded this way; only lines that are
 * responses bill anything.
 */
export function responsesFileTap(file: string): StreamTap {
  return jsonlTap((line, index, whole) => {
    if (!whole) return NAMES_RESPONSE.test(line) ? batchResult(NOTHING, requestId(file, index, undefined)) : undefined;
    const result = parseJson(line);
    return isRecord(result) ? resultUsage(result, requestId(file, index, result.key)) : undefined;
  });
}
