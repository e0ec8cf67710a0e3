import { z } from "zod";
import { isEventStream, type SseEvent, type SseTap, sseStreamTap } from "../sse.ts";
import type { CallUsage, ProviderWire, RequestFacts } from "../types.ts";
import {
  bearerToken,
  envelopeUsage,
  eventType,
  isRecord,
  lenient,
  parseJson,
  barePath,
  requestFacts,
  someText,
  textOf,
  usageFrom,
  keyInHeader,
} from "../wire.ts";
import { inferenceAt, operations } from "../operations.ts";
import { batchResult } from "../batch.ts";
import { openAIUsage as openai } from "./usage.ts";

/*
 * OpenAI's API, and the upstreams that copy it (xAI, Mistral, Groq, DeepSeek, OpenRouter). Three
 * stream formats share one wire framing (`data:` lines, `event:` names for the Responses API):
 * - Chat Completions and legacy Completions: chunks, then `data: [DONE]`. Usage comes only when the
 *   request sets `stream_options.include_usage`: one extra chunk before [DONE] with `choices: []`
 *   and the usage; every other chunk then carries `"usage": null`.
 * - Responses API: typed events; the terminal `response.completed` / `.incomplete` / `.failed`
 *   carries the whole response, its `usage` and `model` included. No [DONE].
 */

type Endpoint = "chat" | "completions" | "responses" | "other";

/** Which API a path speaks; suffix matching keeps prefixes such as `/v1` or Azure deployments out of it. */
function endpointOf(path: string): Endpoint {
  const p = barePath(path);
  if (/(^|\/)chat\/completions$/.test(p)) return "chat";
  if (/(^|\/)completions$/.test(p)) return "completions";
  // `/responses` creates a response; `/responses/{id}` reads one back (with `?stream=true`, as a stream).
  if (/(^|\/)responses(\/[^/]+)?$/.test(p)) return "responses";
  return "other";
}

/**
 * Upstreams that report stream usage without being asked, so nothing is injected and nothing is
 * dropped: Mistral rejects `stream_options` (422 extra_forbidden) and always ends with usage;
 * OpenRouter documents `include_usage` as having no effect, usage always included; Groq puts usage
 * on its last chunk (`x_groq.usage`) unasked.
 */
const REPORTS_STREAM_USAGE_UNASKED = new Set(["mistral", "openrouter", "groq"]);

/**
 * The body with `stream_options.include_usage: true` added (other stream options kept), when the
 * client streams chat or completions without asking for usage itself; undefined otherwise. A
 * `stream_options` that is not an object is left for the upstream to reject as it would have.
 * A body without stream options (the usual one) keeps the client's bytes (`bytes`) with the option
 * put first: nothing of it is written again, so a long prompt costs no second serialisation and a
 * number JSON.parse cannot hold exactly (a seed beyond 2^53) reaches the upstream as sent.
 */
function withStreamUsage(endpoint: Endpoint, body: unknown, bytes: Buffer | undefined): Buffer | undefined {
  if (endpoint !== "chat" && endpoint !== "completions") return undefined;
  if (!isRecord(body) || body.stream !== true) return undefined;
  const options = body.stream_options;
  if (options !== undefined && options !== null && !isRecord(options)) return undefined;
  if (options?.include_usage === true) return undefined;
  if (bytes && !("stream_options" in body)) {
    // It parsed as an object, so only whitespace precedes its brace; it holds `stream`, so a comma follows ours.
    const open = bytes.indexOf(0x7b) + 1;
    return Buffer.concat([bytes.subarray(0, open), USAGE_OPTION, bytes.subarray(open)]);
  }
  return Buffer.from(JSON.stringify({ ...body, stream_options: { ...options, include_usage: true } }));
}

const USAGE_OPTION = Buffer.from(`"stream_options":{"include_usage":true},`);

/** A chunk that names a model (a non-empty `model`): only those are parsed for it. */
const NAMES_MODEL = /"model"\s*:\s*"[^"]/;

/** Non-null usage in a chunk; cheap enough to run on every event, so only usage chunks get parsed. */
const CARRIES_USAGE = /"usage"\s*:\s*\{/;

const Chunk = z.looseObject({
  model: someText,
  choices: lenient(z.array(z.unknown()).nullable()),
  usage: z.unknown().optional(),
  /** Groq's own place for stream usage. */
  x_groq: lenient(z.looseObject({ usage: z.unknown().optional() }).nullable()),
});
type Chunk = z.infer<typeof Chunk>;

/** Chat Completions and Completions streams: usage from the latest chunk that has any. */
function chunkTap(injected: boolean): SseTap {
  /**
   * The first chunk naming a model, kept unread: its model is needed only when the usage chunk
   * does not name one or never comes (cut streams), so a whole stream parses one chunk, not two.
   * Azure's first chunk carries only prompt filter results and `"model": ""`, so it is passed by.
   */
  let firstNaming: string | undefined;
  let usageChunk: Chunk | undefined;
  const read = (data: string): Chunk | undefined => Chunk.safeParse(parseJson(data)).data;
  const firstModel = () => (firstNaming === undefined ? undefined : read(firstNaming)?.model);

  return {
    onEvent(event: SseEvent) {
      if (event.data === "[DONE]") return "forward";
      if (firstNaming === undefined && NAMES_MODEL.test(event.data)) firstNaming = event.data;
      if (!CARRIES_USAGE.test(event.data)) return "forward";
      const chunk = read(event.data);
      if (!chunk) return "forward";
      const usage = isRecord(chunk.usage) ? chunk.usage : isRecord(chunk.x_groq?.usage) ? chunk.x_groq.usage : undefined;
      if (!usage) return "forward";
      usageChunk = { ...chunk, usage };
      // The chunk the gateway asked for is not the client's: it is the one with no choices at all.
      return injected && Array.isArray(chunk.choices) && chunk.choices.length === 0 ? "drop" : "forward";
    },
    result(): CallUsage {
      if (!usageChunk) return { usage: undefined, model: firstModel() };
      return { usage: usageFrom(openai.extract(usageChunk)), model: usageChunk.model ?? firstModel() };
    },
  };
}

/** Terminal Responses API events: each carries the final response object. */
const TERMINAL = new Set(["response.completed", "response.incomplete", "response.failed"]);
const ResponseEvent = z.looseObject({ response: z.looseObject({ model: someText }) });

/** Responses API streams: the model from `response.created`, usage from the terminal event. */
function responsesTap(): SseTap {
  let created: CallUsage = { usage: undefined, model: undefined };
  let final: CallUsage | undefined;
  return {
    onEvent(event: SseEvent) {
      const type = eventType(event);
      if (type === "response.created" || (type !== undefined && TERMINAL.has(type))) {
        const response = ResponseEvent.safeParse(parseJson(event.data)).data?.response;
        const seen = envelopeUsage(openai, response, "usage", "model");
        if (type === "response.created") created = seen;
        else final = seen;
      }
      return "forward";
    },
    result: () => ({ usage: final?.usage, model: final?.model ?? created.model }),
  };
}

/** A batch read back: `GET batches/{id}`. */
const BATCH = /(^|\/)batches\/[^/]+$/;

/**
 * Billable requests: the endpoints that generate (Chat, Completions, Responses, Embeddings,
 * Moderations, Images, Audio). `GET responses/{id}` and `GET chat/completions/{id}` read a stored
 * answer back, `POST responses/input_tokens` counts tokens: forwarded, not billed again.
 */
const openAIOperation = operations(
  [
    inferenceAt("chat/completions", "completions", "responses", "embeddings", "moderations", "images/generations", "images/edits", "images/variations", "audio/speech", "audio/transcriptions", "audio/translations"),
    { method: "GET", path: BATCH, operation: { kind: "batch", name: "batches.retrieve" } },
  ],
  ["chat/completions", "responses/input_tokens", "responses", "batches", "files", "uploads", "models", "fine_tuning/jobs", "vector_stores", "assistants", "threads", "containers", "conversations", "evals", "videos", "realtime"],
);

/** Batch states whose usage is final: the requests that ran are billed, at the batch rate. */
const FINISHED_BATCH = new Set(["completed", "cancelled", "expired"]);

/**
 * A batch object's usage, once the batch is over (OpenAI's Batch has `usage` in Responses-API
 * form and the `model` it ran): recorded under the batch's id, at the batch tier.
 */
function batchUsage(body: unknown): CallUsage {
  if (!isRecord(body) || body.object !== "batch" || typeof body.id !== "string" || !FINISHED_BATCH.has(String(body.status))) return { usage: undefined, model: undefined };
  const seen = envelopeUsage(openai, body, "usage", "model");
  if (!seen.usage) return seen;
  return batchResult(seen, `batch:${body.id.slice(0, 180)}`);
}

/** OpenAI's error shape; on 429 the type names what ran out, as OpenAI's own 429s do ("tokens", "insufficient_quota"). */
function openAIError(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
  const type = status === 429 ? code : status >= 500 ? "server_error" : "invalid_request_error";
  return { error: { message, type, param: null, code, ...details } };
}

/** Facts about an OpenAI-style request; `injects` when the upstream takes `stream_options` and reports usage only when asked. */
export function inspectOpenAI(path: string, body: unknown, injects: boolean, bytes?: Buffer): RequestFacts {
  // Read by hand, not by a schema: this runs on every proxied call. A field of the wrong type is
  // absent here (the upstream's to reject), as the lenient schemas of the other providers read it.
  const request = isRecord(body) ? body : {};
  return requestFacts({
    model: textOf(request.model),
    stream: request.stream === true,
    user: textOf(request.user),
    rewritten: injects ? withStreamUsage(endpointOf(path), body, bytes) : undefined,
  });
}

/** OpenAI's API as the upstream named `name` speaks it (its route prefix and the ledger's provider name). */
export function openAIWire(name: string): ProviderWire {
  const injects = !REPORTS_STREAM_USAGE_UNASKED.has(name);
  return {
    clientKey: (headers) => bearerToken(headers),
    credentialHeaders: ["authorization"],
    credentialQuery: [],
    authorize: keyInHeader("authorization", "Bearer "),
    inspect: (path, body, _query, bytes) => inspectOpenAI(path, body, injects, bytes),
    operation: openAIOperation,
    // Chat, Completions, Responses and Embeddings answers all carry `usage` beside `model`.
    usageOf: (path, body) => (BATCH.test(barePath(path)) ? batchUsage(body) : envelopeUsage(openai, body, "usage", "model")),
    isStream: isEventStream,
    tap: (path, injected) => (endpointOf(path) === "responses" ? sseStreamTap(responsesTap(), false) : sseStreamTap(chunkTap(injected), injected)),
    error: openAIError,
  };
}
