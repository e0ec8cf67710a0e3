import {
  type Behaviour,
  DEFAULT_DELTAS,
  type FakeUpstream,
  type ProviderContract,
  type RecordedRequest,
  type Reply,
  answerText,
  json,
  piece,
  randomId,
  sseFrame,
  startFake,
} from "./fake-upstream.ts";

/*
 * A fake Anthropic Messages API, written from Anthropic's API reference and streaming guide:
 * `POST /v1/messages` (whole or streamed as named events message_start → content blocks with a
 * ping → message_delta with the cumulative usage → message_stop), `POST /v1/messages/count_tokens`,
 * and an ended Message Batch (`GET /v1/messages/batches/{id}`, its `results_url` absolute on the fake's
 * own host as Anthropic's is on api.anthropic.com) with its results file (`GET .../results`, JSONL).
 * Auth is `x-api-key` or `Authorization: Bearer`, and `anthropic-version` is required; errors are
 * `{"type":"error","error":{"type","message"},"request_id"}`.
 */

export const ANTHROPIC_KEY = "sk-ant-fake-0123456789abcdef";

/**
 * What a message reports: a prompt mostly read from cache, with cache writes split by lifetime.
 * `input_tokens` counts only the uncached, unwritten part.
 */
export const ANTHROPIC_USAGE = {
  input_tokens: 50,
  cache_creation_input_tokens: 3000,
  cache_read_input_tokens: 12000,
  cache_creation: { ephemeral_5m_input_tokens: 1000, ephemeral_1h_input_tokens: 2000 },
  output_tokens: 420,
  service_tier: "standard",
};

export const ANTHROPIC_COUNTED_TOKENS = 2095;

const THOUGHT = "Let me think about this.";
const SIGNATURE = "EqQBCkgIARABGAIiQL2m3wGfakeSignature";

type Body = Record<string, unknown>;
type Usage = Record<string, unknown>;

function anthropicError(status: number, message: string | undefined) {
  const known: Record<number, [type: string, message: string]> = {
    400: ["invalid_request_error", "Invalid request."],
    401: ["authentication_error", "invalid x-api-key"],
    403: ["permission_error", "Your API key does not have permission to use the specified resource."],
    404: ["not_found_error", "The requested resource could not be found."],
    413: ["request_too_large", "Request exceeds the maximum allowed number of bytes."],
    429: ["rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"],
    500: ["api_error", "Internal server error"],
    504: ["timeout_error", "Request timed out"],
    529: ["overloaded_error", "Overloaded"],
  };
  const [type, wording] = known[status] ?? [status >= 500 ? "api_error" : "invalid_request_error", `Error ${status}`];
  return { type: "error", error: { type, message: message ?? wording }, request_id: randomId("req_011C", 20) };
}

function authorise(request: RecordedRequest, _url: URL, key: string): Reply | undefined {
  // The SDK (1.x) sends its API key as `Authorization: Bearer`; older ones and curl use `x-api-key`.
  const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? "")?.[1];
  const presented = request.headers["x-api-key"] ?? bearer;
  if (presented === undefined) return json(401, anthropicError(401, "x-api-key header is required"));
  if (presented !== key) return json(401, anthropicError(401, "invalid x-api-key"));
  if (request.headers["anthropic-version"] === undefined) return json(400, anthropicError(400, "anthropic-version: header is required"));
  return undefined;
}

const thinks = (body: Body): boolean => {
  const thinking = body.thinking;
  return typeof thinking === "object" && thinking !== null && (thinking as Body).type === "enabled";
};

/** message_delta restates the cumulative counts, without the cache-write split message_start gave. */
function deltaUsage(usage: Usage): Usage {
  const keys = ["input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens", "server_tool_use"];
  return Object.fromEntries(keys.filter((k) => k in usage).map((k) => [k, usage[k]]));
}

function* messageEvents(model: string, deltas: number, usage: Usage, thinking: boolean, size: number): Generator<string> {
  const event = (type: string, fields: Body = {}) => sseFrame({ type, ...fields }, type);
  const startUsage = { ...usage, output_tokens: Math.min(1, Number(usage.output_tokens ?? 0)) };
  yield event("message_start", {
    message: { id: randomId("msg_01", 22), type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: startUsage },
  });
  let index = 0;
  if (thinking) {
    yield event("content_block_start", { index, content_block: { type: "thinking", thinking: "", signature: "" } });
    yield event("content_block_delta", { index, delta: { type: "thinking_delta", thinking: THOUGHT } });
    yield event("content_block_delta", { index, delta: { type: "signature_delta", signature: SIGNATURE } });
    yield event("content_block_stop", { index });
    index++;
  }
  yield event("content_block_start", { index, content_block: { type: "text", text: "" } });
  yield event("ping");
  for (let i = 0; i < deltas; i++) yield event("content_block_delta", { index, delta: { type: "text_delta", text: piece(i, size) } });
  yield event("content_block_stop", { index });
  yield event("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: deltaUsage(usage) });
  yield event("message_stop");
}

function messages(body: Body, model: string, b: Behaviour): Reply {
  const deltas = b.deltas ?? DEFAULT_DELTAS;
  const usage = b.usage ?? ANTHROPIC_USAGE;
  if (body.stream === true) return { kind: "stream", contentType: "text/event-stream; charset=utf-8", frames: messageEvents(model, deltas, usage, thinks(body), b.deltaBytes ?? 0) };
  const content = [...(thinks(body) ? [{ type: "thinking", thinking: THOUGHT, signature: SIGNATURE }] : []), { type: "text", text: answerText(deltas, b.deltaBytes) }];
  return json(200, { id: randomId("msg_01", 22), type: "message", role: "assistant", model, content, stop_reason: "end_turn", stop_sequence: null, usage });
}

/** Usage of the two requests of every batch that succeed; a third errored and a fourth expired. */
export const ANTHROPIC_BATCH_RESULTS = [
  { custom_id: "first", model: "claude-sonnet-4-6", usage: { input_tokens: 100, cache_creation_input_tokens: 0, cache_read_input_tokens: 2000, output_tokens: 500 } },
  { custom_id: "second", model: "claude-sonnet-4-6", usage: { input_tokens: 1000, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 200 } },
];

/** A batch's results, one JSON object a line as Anthropic's reference shows them (`MessageBatchIndividualResponse`). */
function* batchResults(): Generator<string> {
  for (const { custom_id, model, usage } of ANTHROPIC_BATCH_RESULTS) {
    const message = { id: randomId("msg_01", 22), type: "message", role: "assistant", model, content: [{ type: "text", text: "Done." }], stop_reason: "end_turn", stop_sequence: null, usage };
    yield `${JSON.stringify({ custom_id, result: { type: "succeeded", message } })}\n`;
  }
  const error = { type: "error", error: { type: "invalid_request_error", message: "max_tokens: Field required" }, request_id: randomId("req_011C", 20) };
  yield `${JSON.stringify({ custom_id: "third", result: { type: "errored", error } })}\n`;
  yield `${JSON.stringify({ custom_id: "fourth", result: { type: "expired" } })}\n`;
}

/** An ended batch as `GET /v1/messages/batches/{id}` answers it. */
function endedBatch(id: string, host: string | undefined) {
  const counts = { processing: 0, succeeded: ANTHROPIC_BATCH_RESULTS.length, errored: 1, canceled: 0, expired: 1 };
  const at = "2026-12-05T12:00:00Z";
  const results_url = `http://${host ?? "127.0.0.1"}/v1/messages/batches/${id}/results`;
  return { id, type: "message_batch", processing_status: "ended", request_counts: counts, ended_at: at, created_at: at, expires_at: at, archived_at: null, cancel_initiated_at: null, results_url };
}

function answer(request: RecordedRequest, url: URL, behaviour: Behaviour): Reply {
  const path = url.pathname;
  const batch = request.method === "GET" ? /^\/v1\/messages\/batches\/(msgbatch_[^/]+)$/.exec(path)?.[1] : undefined;
  if (batch !== undefined) return json(200, endedBatch(batch, request.headers.host));
  if (request.method === "GET" && /^\/v1\/messages\/batches\/msgbatch_[^/]+\/results$/.test(path)) return { kind: "stream", contentType: "application/binary", frames: batchResults() };
  const known = path === "/v1/messages" || path === "/v1/messages/count_tokens";
  if (request.method !== "POST" || !known) return json(404, anthropicError(404, `Not found: ${request.method} ${path}`));
  const body = (typeof request.body === "object" && request.body !== null ? request.body : {}) as Body;
  if (typeof body.model !== "string" || body.model === "") return json(400, anthropicError(400, "model: Field required"));
  if (path === "/v1/messages/count_tokens") return json(200, { input_tokens: ANTHROPIC_COUNTED_TOKENS });
  return messages(body, body.model, behaviour);
}

const contract: ProviderContract = {
  authorise,
  errorBody: anthropicError,
  answer,
  commonHeaders: () => ({ "request-id": randomId("req_011C", 20), "anthropic-organization-id": "00000000-0000-4000-8000-000000000000" }),
};

/** A fake Anthropic API on a loopback port, accepting `key`. Base URL for the SDK: `url`. */
export function startFakeAnthropic(key = ANTHROPIC_KEY): Promise<FakeUpstream> {
  return startFake(contract, key);
}
