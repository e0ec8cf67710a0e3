import { z } from "zod";
import { inferenceAt, operations } from "../operations.ts";
import { isEventStream, type SseEvent, type SseTap, sseStreamTap } from "../sse.ts";
import type { CallUsage, ProviderWire } from "../types.ts";
import {
  bearerToken,
  envelopeUsage,
  eventType,
  headerValue,
  isRecord,
  lenient,
  parseJson,
  readBody,
  requestFacts,
  someFlag,
  someText,
  usageFrom,
  keyInHeader,
} from "../wire.ts";
import { anthropicUsage } from "./usage.ts";
import { RESULTS, gatewayResultsUrls, resultsBatch, resultsTap } from "./batch-results.ts";

/*
 * Anthropic's Messages API. Streams are named events (`event:` + `data:`): `message_start` carries
 * the message skeleton with the model and the input-side usage (cache reads, cache writes split by
 * lifetime), `message_delta` carries usage again at the end; Anthropic documents those counts as
 * cumulative, so they are merged by keeping the highest value per field, never added up.
 */

const AnthropicRequest = z.looseObject({
  model: someText,
  stream: someFlag,
  metadata: lenient(z.looseObject({ user_id: someText }).nullable()),
});

type Counters = Record<string, unknown>;

/**
 * Merges a later cumulative usage report into an earlier one: numbers keep their maximum (a field a
 * later event restates can only have grown; one it leaves out or nulls keeps its value), nested
 * objects merge the same way, anything else takes the later value.
 */
export function mergeCumulative(earlier: Counters, later: Counters): Counters {
  const merged: Counters = { ...earlier };
  for (const [key, value] of Object.entries(later)) {
    const before = merged[key];
    if (typeof value === "number" && typeof before === "number") merged[key] = Math.max(before, value);
    else if (isRecord(value) && isRecord(before)) merged[key] = mergeCumulative(before, value);
    else if (value !== null && value !== undefined) merged[key] = value;
  }
  return merged;
}

/**
 * Field-wise maxima can leave the 5-minute/1-hour split not adding up to the cache-write total when
 * the two events disagree; the extractor would then reject the usage whole. The total wins, and
 * what the split does not explain is counted as 5-minute writes, the default lifetime.
 */
function reconcileCacheSplit(usage: Counters): Counters {
  const split = usage.cache_creation;
  const total = usage.cache_creation_input_tokens;
  if (!isRecord(split) || typeof total !== "number") return usage;
  const oneHour = typeof split.ephemeral_1h_input_tokens === "number" ? split.ephemeral_1h_input_tokens : 0;
  const fiveMinutes = typeof split.ephemeral_5m_input_tokens === "number" ? split.ephemeral_5m_input_tokens : 0;
  if (fiveMinutes + oneHour === total) return usage;
  if (oneHour > total) return { ...usage, cache_creation_input_tokens: fiveMinutes + oneHour };
  return { ...usage, cache_creation: { ...split, ephemeral_5m_input_tokens: total - oneHour } };
}

const MessageStart = z.looseObject({ message: z.looseObject({ model: someText, usage: lenient(z.looseObject({})) }) });
const MessageDelta = z.looseObject({ usage: lenient(z.looseObject({})) });

export function messagesTap(): SseTap {
  let model: string | undefined;
  let usage: Counters | undefined;
  const merge = (more: Counters | undefined) => {
    if (more) usage = usage ? mergeCumulative(usage, more) : more;
  };
  return {
    onEvent(event: SseEvent) {
      const type = eventType(event);
      if (type === "message_start") {
        const start = MessageStart.safeParse(parseJson(event.data)).data;
        model = start?.message.model ?? model;
        merge(start?.message.usage);
      } else if (type === "message_delta") {
        merge(MessageDelta.safeParse(parseJson(event.data)).data?.usage);
      }
      return "forward";
    },
    result(): CallUsage {
      if (!usage) return { usage: undefined, model };
      return { usage: usageFrom(anthropicUsage.extract({ usage: reconcileCacheSplit(usage), model })), model };
    },
  };
}

/** Anthropic's error types by status (docs: "HTTP errors"); on 429 the type names what ran out. */
const ERROR_TYPES: Readonly<Record<number, string>> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  500: "api_error",
  504: "timeout_error",
  529: "overloaded_error",
};

function anthropicError(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
  const type = status === 429 ? code : (ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error"));
  return { type: "error", error: { type, message, ...details } };
}

/**
 * Billable requests: Messages (and the legacy Text Completions), and a Message Batch's results file,
 * which is where a batch's usage is reported (batch-results.ts). Counting tokens, models, files and
 * the rest of Message Batches are forwarded and counted.
 */
const anthropicOperation = operations(
  [inferenceAt("messages", "complete"), { method: "GET", path: RESULTS, operation: { kind: "batch", name: "messages.batches.results" } }],
  ["messages/count_tokens", "messages/batches", "models", "files", "skills"],
);

export const anthropicWire: ProviderWire = {
  // The SDK sends `x-api-key`; with an auth token instead it sends `Authorization: Bearer`.
  clientKey: (headers) => headerValue(headers, "x-api-key") ?? bearerToken(headers),
  credentialHeaders: ["x-api-key", "authorization"],
  credentialQuery: [],
  authorize: keyInHeader("x-api-key"),
  inspect(_path, body) {
    const request = readBody(AnthropicRequest, body);
    return requestFacts({ model: request.model, stream: request.stream === true, user: request.metadata?.user_id ?? undefined });
  },
  operation: anthropicOperation,
  // A Message carries `usage` beside `model`; count_tokens answers (`input_tokens` alone) are free and carry none.
  usageOf: (_path, body) => envelopeUsage(anthropicUsage, body, "usage", "model"),
  rewriteAnswer: (_path, body) => gatewayResultsUrls(body),
  // A results file (JSONL, whatever its content type) is read line by line as it passes, never held.
  isStream: (contentType, path) => isEventStream(contentType) || resultsBatch(path) !== undefined,
  tap: (path) => {
    const batch = resultsBatch(path);
    return batch === undefined ? sseStreamTap(messagesTap(), false) : resultsTap(batch);
  },
  error: anthropicError,
};
