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
  unixSeconds,
} from "./fake-upstream.ts";

/*
 * A fake OpenAI API, written from OpenAI's API reference: Chat Completions (stream chunks, the
 * usage-only chunk with `choices: []` only under `stream_options.include_usage`, `data: [DONE]`),
 * the Responses API (typed `event:` + `data:` events ending with `response.completed`),
 * Embeddings (float or base64, which the Node SDK asks for by default), legacy Completions and
 * Models. Auth is `Authorization: Bearer <key>`; errors are `{"error":{message,type,param,code}}`.
 */

export const OPENAI_KEY = "sk-fake-openai-0123456789abcdef";

/** What chat and completion answers report: a cached prompt and a reasoning model's output. */
export const OPENAI_CHAT_USAGE = {
  prompt_tokens: 1200,
  completion_tokens: 300,
  total_tokens: 1500,
  prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 128, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
};

export const OPENAI_RESPONSES_USAGE = {
  input_tokens: 1200,
  input_tokens_details: { cached_tokens: 1024 },
  output_tokens: 300,
  output_tokens_details: { reasoning_tokens: 128 },
  total_tokens: 1500,
};

export const OPENAI_EMBEDDINGS_USAGE = { prompt_tokens: 8, total_tokens: 8 };

export const OPENAI_MODELS = ["gpt-4o", "gpt-4o-mini", "o4-mini", "text-embedding-3-small", "gpt-3.5-turbo-instruct"];

const FINGERPRINT = "fp_f5bdcc3276";

type Body = Record<string, unknown>;

export function openAIError(status: number, message: string | undefined) {
  const known: Record<number, [type: string, code: string | null, message: string]> = {
    400: ["invalid_request_error", null, "Invalid request."],
    401: ["invalid_request_error", "invalid_api_key", "Incorrect API key provided."],
    403: ["request_forbidden", "unsupported_country_region_territory", "Country, region, or territory not supported"],
    404: ["invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."],
    429: ["requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again in 1s."],
    500: ["server_error", null, "The server had an error while processing your request. Sorry about that!"],
    503: ["server_error", null, "The engine is currently overloaded, please try again later"],
  };
  const [type, code, wording] = known[status] ?? [status >= 500 ? "server_error" : "invalid_request_error", null, `Error ${status}`];
  return { error: { message: message ?? wording, type, param: null, code } };
}

function authorise(request: RecordedRequest, _url: URL, key: string): Reply | undefined {
  const header = request.headers.authorization;
  const presented = typeof header === "string" ? /^Bearer (.+)$/.exec(header)?.[1] : undefined;
  if (presented === key) return undefined;
  if (presented === undefined)
    return json(401, {
      error: {
        message:
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from https://platform.openai.com/account/api-keys.",
        type: "invalid_request_error",
        param: null,
        code: null,
      },
    });
  const masked = presented.length > 8 ? `${presented.slice(0, 3)}${"*".repeat(presented.length - 7)}${presented.slice(-4)}` : "***";
  return json(401, {
    error: {
      message: `Incorrect API key provided: ${masked}. You can find your API key at https://platform.openai.com/account/api-keys.`,
      type: "invalid_request_error",
      param: null,
      code: "invalid_api_key",
    },
  });
}

const wantsUsage = (body: Body): boolean => {
  const options = body.stream_options;
  return typeof options === "object" && options !== null && (options as Body).include_usage === true;
};

const sse = (frames: Iterable<string>): Reply => ({ kind: "stream", contentType: "text/event-stream; charset=utf-8", frames });

/** Chat Completions: one chunk opening the assistant turn, one per delta, one finishing, then usage if asked, then [DONE]. */
function* chatChunks(model: string, deltas: number, usage: unknown, includeUsage: boolean, size: number): Generator<string> {
  const base = { id: randomId("chatcmpl-", 29), object: "chat.completion.chunk", created: unixSeconds(), model, service_tier: "default", system_fingerprint: FINGERPRINT };
  // Under include_usage every chunk but the last says `"usage": null`.
  const tail = includeUsage ? { usage: null } : {};
  const choice = (delta: Body, finish: string | null) => [{ index: 0, delta, logprobs: null, finish_reason: finish }];
  yield sseFrame({ ...base, choices: choice({ role: "assistant", content: "", refusal: null }, null), ...tail });
  for (let i = 0; i < deltas; i++) yield sseFrame({ ...base, choices: choice({ content: piece(i, size) }, null), ...tail });
  yield sseFrame({ ...base, choices: choice({}, "stop"), ...tail });
  if (includeUsage) yield sseFrame({ ...base, choices: [], usage });
  yield sseFrame("[DONE]");
}

function chat(body: Body, model: string, b: Behaviour): Reply {
  const deltas = b.deltas ?? DEFAULT_DELTAS;
  const usage = b.usage ?? OPENAI_CHAT_USAGE;
  if (body.stream === true) return sse(chatChunks(model, deltas, usage, wantsUsage(body), b.deltaBytes ?? 0));
  return json(200, {
    id: randomId("chatcmpl-", 29),
    object: "chat.completion",
    created: unixSeconds(),
    model,
    choices: [{ index: 0, message: { role: "assistant", content: answerText(deltas, b.deltaBytes), refusal: null, annotations: [] }, logprobs: null, finish_reason: "stop" }],
    usage,
    service_tier: "default",
    system_fingerprint: FINGERPRINT,
  });
}

function* completionChunks(model: string, deltas: number, usage: unknown, includeUsage: boolean, size: number): Generator<string> {
  const base = { id: randomId("cmpl-", 29), object: "text_completion", created: unixSeconds(), model, system_fingerprint: null };
  const choice = (text: string, finish: string | null) => [{ text, index: 0, logprobs: null, finish_reason: finish }];
  for (let i = 0; i < deltas; i++) yield sseFrame({ ...base, choices: choice(piece(i, size), null) });
  yield sseFrame({ ...base, choices: choice("", "stop") });
  if (includeUsage) yield sseFrame({ ...base, choices: [], usage });
  yield sseFrame("[DONE]");
}

function completions(body: Body, model: string, b: Behaviour): Reply {
  const deltas = b.deltas ?? DEFAULT_DELTAS;
  const usage = b.usage ?? OPENAI_CHAT_USAGE;
  if (body.stream === true) return sse(completionChunks(model, deltas, usage, wantsUsage(body), b.deltaBytes ?? 0));
  return json(200, {
    id: randomId("cmpl-", 29),
    object: "text_completion",
    created: unixSeconds(),
    model,
    choices: [{ text: answerText(deltas, b.deltaBytes), index: 0, logprobs: null, finish_reason: "stop" }],
    usage,
    system_fingerprint: null,
  });
}

/** A Response object as the Responses API returns it, in the given state. */
function responseObject(id: string, model: string, body: Body, status: string, output: unknown[], usage: unknown) {
  return {
    id,
    object: "response",
    created_at: unixSeconds(),
    status,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model,
    output,
    parallel_tool_calls: true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: null, summary: null },
    service_tier: "default",
    store: true,
    temperature: 1.0,
    text: { format: { type: "text" } },
    tool_choice: "auto",
    tools: [],
    top_p: 1.0,
    truncation: "disabled",
    usage,
    user: body.user ?? null,
    metadata: {},
  };
}

const outputText = (text: string) => ({ type: "output_text", annotations: [], logprobs: [], text });
const message = (id: string, status: string, content: unknown[]) => ({ id, type: "message", status, content, role: "assistant" });

/** The Responses API event sequence for one text answer; every event carries its `sequence_number`. */
function* responseEvents(body: Body, model: string, deltas: number, usage: unknown, size: number): Generator<string> {
  const id = `resp_${randomId("", 48)}`;
  const itemId = `msg_${randomId("", 48)}`;
  const text = answerText(deltas, size);
  let sequence = 0;
  const event = (type: string, fields: Body) => sseFrame({ type, sequence_number: sequence++, ...fields }, type);
  const at = { item_id: itemId, output_index: 0, content_index: 0 };
  yield event("response.created", { response: responseObject(id, model, body, "in_progress", [], null) });
  yield event("response.in_progress", { response: responseObject(id, model, body, "in_progress", [], null) });
  yield event("response.output_item.added", { output_index: 0, item: message(itemId, "in_progress", []) });
  yield event("response.content_part.added", { ...at, part: outputText("") });
  for (let i = 0; i < deltas; i++) yield event("response.output_text.delta", { ...at, delta: piece(i, size), logprobs: [] });
  yield event("response.output_text.done", { ...at, text, logprobs: [] });
  yield event("response.content_part.done", { ...at, part: outputText(text) });
  const done = message(itemId, "completed", [outputText(text)]);
  yield event("response.output_item.done", { output_index: 0, item: done });
  yield event("response.completed", { response: responseObject(id, model, body, "completed", [done], usage) });
}

function responses(body: Body, model: string, b: Behaviour): Reply {
  const deltas = b.deltas ?? DEFAULT_DELTAS;
  const usage = b.usage ?? OPENAI_RESPONSES_USAGE;
  if (body.stream === true) return sse(responseEvents(body, model, deltas, usage, b.deltaBytes ?? 0));
  const done = message(`msg_${randomId("", 48)}`, "completed", [outputText(answerText(deltas, b.deltaBytes))]);
  return json(200, responseObject(`resp_${randomId("", 48)}`, model, body, "completed", [done], usage));
}

/** A fixed vector per input; base64 is the float32 little-endian bytes, as the SDK decodes them. */
function embeddings(body: Body, model: string, b: Behaviour): Reply {
  const input = body.input;
  const count = Array.isArray(input) && input.some((item) => typeof item !== "number") ? input.length : 1;
  const dimensions = typeof body.dimensions === "number" ? body.dimensions : 8;
  const vector = Array.from({ length: dimensions }, (_, j) => Math.fround((j + 1) / 16));
  const encoded = body.encoding_format === "base64" ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector;
  return json(200, {
    object: "list",
    data: Array.from({ length: count }, (_, index) => ({ object: "embedding", index, embedding: encoded })),
    model,
    usage: b.usage ?? OPENAI_EMBEDDINGS_USAGE,
  });
}

const modelObject = (id: string) => ({ id, object: "model", created: 1715367049, owned_by: "system" });

/** The operations by path below `/v1`; the fake Azure OpenAI answers with the same ones under its own paths. */
export const OPENAI_OPERATIONS: Readonly<Record<string, (body: Body, model: string, b: Behaviour) => Reply>> = {
  "/chat/completions": chat,
  "/completions": completions,
  "/responses": responses,
  "/embeddings": embeddings,
};

/** A finished batch's usage, as the Batch object reports it (Responses-API form). */
export const OPENAI_BATCH_USAGE = OPENAI_RESPONSES_USAGE;

/**
 * Batches (`POST /v1/batches`, `GET /v1/batches/{id}`, `GET /v1/batches`) on their documented
 * lifecycle: created `validating`; each retrieve moves one state on (`in_progress`, then
 * `completed` with `usage` and the `model` it ran, as the Batch object reports them).
 */
const batches = new Map<string, { created: number; endpoint: string; input_file_id: string; polls: number }>();
const BATCH_MODEL = "gpt-4o-mini-2024-07-18";

function batchObject(id: string) {
  const b = batches.get(id)!;
  const status = b.polls === 0 ? "validating" : b.polls === 1 ? "in_progress" : "completed";
  const done = status === "completed";
  return {
    id,
    object: "batch",
    endpoint: b.endpoint,
    model: BATCH_MODEL,
    errors: null,
    input_file_id: b.input_file_id,
    completion_window: "24h",
    status,
    output_file_id: done ? `file-${id.slice(6)}out` : null,
    error_file_id: null,
    created_at: b.created,
    in_progress_at: b.polls >= 1 ? b.created + 1 : null,
    expires_at: b.created + 86_400,
    finalizing_at: done ? b.created + 2 : null,
    completed_at: done ? b.created + 3 : null,
    failed_at: null,
    expired_at: null,
    cancelling_at: null,
    cancelled_at: null,
    request_counts: { total: 2, completed: done ? 2 : 0, failed: 0 },
    // Reported once the batch has run; zeros while it has not.
    usage: done ? OPENAI_BATCH_USAGE : { input_tokens: 0, input_tokens_details: { cached_tokens: 0 }, output_tokens: 0, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 0 },
    metadata: null,
  };
}

/** Reads of stored answers (`store: true`), and listings: what the SDKs' retrieve and list methods call. */
function readBack(request: RecordedRequest, path: string): Reply | undefined {
  if (request.method === "POST" && path === "/v1/batches") {
    const body = (request.body ?? {}) as Body;
    const id = `batch_${randomId("", 32)}`;
    batches.set(id, { created: unixSeconds(), endpoint: String(body.endpoint), input_file_id: String(body.input_file_id), polls: 0 });
    return json(200, batchObject(id));
  }
  if (request.method !== "GET") return undefined;
  const batch = /^\/v1\/batches\/([^/]+)$/.exec(path)?.[1];
  if (batch !== undefined) {
    const known = batches.get(batch);
    if (!known) return json(404, openAIError(404, `No batch found with id '${batch}'.`));
    known.polls++;
    return json(200, batchObject(batch));
  }
  if (path === "/v1/batches") {
    const data = [...batches.keys()].map(batchObject);
    return json(200, { object: "list", data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: false });
  }
  if (path === "/v1/files") return json(200, { object: "list", data: [], has_more: false, first_id: null, last_id: null });
  const response = /^\/v1\/responses\/([^/]+)$/.exec(path)?.[1];
  if (response !== undefined) {
    const done = message(`msg_${randomId("", 48)}`, "completed", [outputText(answerText())]);
    return json(200, responseObject(response, "gpt-4o-2024-08-06", {}, "completed", [done], OPENAI_RESPONSES_USAGE));
  }
  const completion = /^\/v1\/chat\/completions\/([^/]+)$/.exec(path)?.[1];
  if (completion !== undefined)
    return json(200, {
      id: completion,
      object: "chat.completion",
      created: unixSeconds(),
      model: "gpt-4o-2024-08-06",
      choices: [{ index: 0, message: { role: "assistant", content: answerText(), refusal: null, annotations: [] }, logprobs: null, finish_reason: "stop" }],
      usage: OPENAI_CHAT_USAGE,
      service_tier: "default",
      system_fingerprint: FINGERPRINT,
    });
  return undefined;
}

function answer(request: RecordedRequest, url: URL, behaviour: Behaviour): Reply {
  const path = url.pathname;
  const read = readBack(request, path);
  if (read) return read;
  if (request.method === "GET" && path === "/v1/models") return json(200, { object: "list", data: OPENAI_MODELS.map(modelObject) });
  const one = /^\/v1\/models\/([^/]+)$/.exec(path);
  if (request.method === "GET" && one) {
    const id = decodeURIComponent(one[1] ?? "");
    return OPENAI_MODELS.includes(id) ? json(200, modelObject(id)) : json(404, openAIError(404, `The model '${id}' does not exist`));
  }
  const route = path.startsWith("/v1/") ? OPENAI_OPERATIONS[path.slice(3)] : undefined;
  if (request.method !== "POST" || !route)
    return json(404, { error: { message: `Invalid URL (${request.method} ${path})`, type: "invalid_request_error", param: null, code: null } });
  const body = (typeof request.body === "object" && request.body !== null ? request.body : {}) as Body;
  if (typeof body.model !== "string" || body.model === "") return json(400, openAIError(400, "you must provide a model parameter"));
  return route(body, behaviour.model ?? body.model, behaviour);
}

const contract: ProviderContract = {
  authorise,
  errorBody: openAIError,
  answer,
  commonHeaders: () => ({ "x-request-id": `req_${randomId("", 32)}`, "openai-version": "2020-10-01", "openai-processing-ms": "12" }),
};

/** A fake OpenAI API on a loopback port, accepting `key`. Base URL for the SDK: `${url}/v1`. */
export function startFakeOpenAI(key = OPENAI_KEY): Promise<FakeUpstream> {
  return startFake(contract, key);
}
