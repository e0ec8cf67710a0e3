import { isEventStream, type SseEvent, type SseTap, sseStreamTap } from "../sse.ts";
import { INFERENCE, operations } from "../operations.ts";
import type { CallUsage, Operation, ProviderWire } from "../types.ts";
import { envelopeUsage, headerValue, isRecord, keyInHeader, parseJson, pathOnly, requestFacts, textOf } from "../wire.ts";
import { geminiUsage } from "./usage.ts";
import { BATCH, DOWNLOAD, LIST, downloadedFile, listingTap, listsBatches, pollTap, polledBatch, responsesFileTap } from "./batch-results.ts";

/*
 * Google's Gemini API (generativelanguage). The model and the action are in the path
 * (`/v1beta/models/{model}:{action}`), not the body. `streamGenerateContent?alt=sse` sends each
 * GenerateContentResponse as a `data:` event; every one of them repeats `usageMetadata` with the
 * counts so far, so the last one seen is the call's usage. Without `alt=sse` the same responses
 * come as one JSON array.
 */

/** `models/{model}:{action}` (and tuned models); the model may be URL-encoded. */
function modelAction(path: string): { model: string | undefined; action: string | undefined } {
  const match = /\/(?:models|tunedModels)\/([^/:]+):([A-Za-z]+)$/.exec(pathOnly(path));
  if (!match) return { model: undefined, action: undefined };
  let model = match[1];
  try {
    model = decodeURIComponent(model ?? "");
  } catch {
    // A malformed escape is the upstream's to reject; the raw segment still names the model.
  }
  return { model: model || undefined, action: match[2] };
}

const USAGE = '"usageMetadata"';

/**
 * Keeps only the raw text of the latest event with usage: events are not parsed as they pass,
 * one parse at the end reads the usage and the model that answered.
 */
function sseTap(): SseTap {
  let lastWithUsage: string | undefined;
  let first: string | undefined;
  return {
    onEvent(event: SseEvent) {
      first ??= event.data;
      if (event.data.includes(USAGE)) lastWithUsage = event.data;
      return "forward";
    },
    result(): CallUsage {
      const answer = envelopeUsage(geminiUsage, parseJson(lastWithUsage ?? ""), "usageMetadata", "modelVersion");
      if (answer.model !== undefined) return answer;
      // A stream cut before any usage still names its model in the first event (read only then).
      const opening = parseJson(first ?? "");
      return { usage: answer.usage, model: isRecord(opening) ? textOf(opening.modelVersion) : undefined };
    },
  };
}

/**
 * A whole answer: one GenerateContentResponse, or the JSON array a stream without `alt=sse` is
 * (the last element with usage has the final counts). CountTokens answers carry no usageMetadata.
 */
function usageOf(_path: string, body: unknown): CallUsage {
  const answer = Array.isArray(body) ? body.findLast((item) => isRecord(item) && isRecord(item.usageMetadata)) : body;
  return envelopeUsage(geminiUsage, answer, "usageMetadata", "modelVersion");
}

/** google.rpc.Code names by HTTP status, as Google's APIs pair them (AIP-193). */
const RPC_STATUS: Readonly<Record<number, string>> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  409: "ABORTED",
  413: "INVALID_ARGUMENT",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  501: "NOT_IMPLEMENTED",
  502: "UNAVAILABLE",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

/**
 * Google's error shape. The machine-readable code goes where Google puts its own: an ErrorInfo
 * detail whose `reason` is UPPER_SNAKE_CASE and whose `metadata` is a string map.
 */
function geminiError(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
  const metadata = Object.fromEntries(Object.entries(details).map(([key, value]) => [key, typeof value === "string" ? value : JSON.stringify(value)]));
  const info = { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: code.toUpperCase(), domain: "tollgate", metadata };
  return { error: { code: status, message, status: RPC_STATUS[status] ?? "UNKNOWN", details: [info] } };
}

/** The model actions that generate, and so bill: everything else on a model (`countTokens`, `get`) is free. */
const GENERATING = ["generateContent", "streamGenerateContent", "embedContent", "batchEmbedContents", "predict", "predictLongRunning"];
/** Free model actions named in the metric; any other action is `models.other`. */
const FREE_ACTIONS = new Set(["countTokens", "batchGenerateContent", "asyncBatchEmbedContent"]);

const resourceOperation = operations(
  [
    { method: "GET", path: BATCH, operation: { kind: "batch", name: "batches.retrieve" } },
    { method: "GET", path: LIST, operation: { kind: "batch", name: "batches.list" } },
    { method: "GET", path: DOWNLOAD, operation: { kind: "batch", name: "files.download" } },
  ],
  ["models", "tunedModels", "files", "cachedContents", "batches", "operations", "corpora", "fileSearchStores"],
);

/**
 * Billable requests: the generating actions on a model, and a batch's responses where they are read
 * (batch-results.ts): a poll of a done batch with inline responses, a listing that shows one, a
 * download of a responses file.
 * Creating a batch, polling one still running, listing and reading models, counting tokens, files
 * and cached contents are forwarded and counted.
 */
function geminiOperation(method: string, path: string): Operation {
  const { action } = modelAction(path);
  if (action === undefined) return resourceOperation(method, path);
  if (method.toUpperCase() === "POST" && GENERATING.includes(action)) return INFERENCE;
  return { kind: "other", name: `models.${FREE_ACTIONS.has(action) ? action : "other"}` };
}

export const geminiWire: ProviderWire = {
  // Google's SDKs send `x-goog-api-key`; REST examples and older clients put the key in `?key=`.
  clientKey: (headers, query) => headerValue(headers, "x-goog-api-key") ?? (query.get("key")?.trim() || undefined),
  credentialHeaders: ["x-goog-api-key"],
  credentialQuery: ["key"],
  authorize: keyInHeader("x-goog-api-key"),
  inspect(path) {
    const { model, action } = modelAction(path);
    return requestFacts({ model, stream: action === "streamGenerateContent" });
  },
  operation: geminiOperation,
  usageOf,
  // A batch's poll, a listing of batches and a downloaded file are read as they pass, never held: any may be large.
  isStream: (contentType, path) => isEventStream(contentType) || polledBatch(path) !== undefined || listsBatches(path) || downloadedFile(path) !== undefined,
  tap: (path) => {
    const batch = polledBatch(path);
    if (batch !== undefined) return pollTap(batch);
    if (listsBatches(path)) return listingTap();
    const file = downloadedFile(path);
    return file === undefined ? sseStreamTap(sseTap(), false) : responsesFileTap(file);
  },
  error: geminiError,
};
