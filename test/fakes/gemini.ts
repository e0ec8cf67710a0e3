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
 * A fake Gemini API (generativelanguage v1beta), written from Google's API reference:
 * `models/{model}:generateContent`, `:streamGenerateContent` (with `?alt=sse` each
 * GenerateContentResponse is one `data:` event, CRLF-framed as Google sends them; without it the
 * same responses come as one JSON array) and `:countTokens`. Every streamed response repeats
 * `usageMetadata` with the counts so far. The key goes in `x-goog-api-key` or `?key=`. Errors are
 * `{"error":{"code","message","status"}}`; like the real API, a wrong key is a 400
 * INVALID_ARGUMENT (reason API_KEY_INVALID) and a missing one a 403 PERMISSION_DENIED, not a 401.
 *
 * The Batch API, from Google's batch-mode reference: `models/{model}:batchGenerateContent` takes
 * `{batch: {inputConfig: {requests: {requests: [{request, metadata}]}}}}` (inline) or
 * `{batch: {inputConfig: {fileName}}}` (a JSONL file of `{key, request}` lines, uploaded beforehand:
 * GEMINI_INPUT_FILES stands for those uploads) and answers a long-running operation `batches/{id}`.
 * `GET batches/{id}` answers it running on the first poll and done on every later one: its
 * `response` (and `metadata.output`) then holds `inlinedResponses.inlinedResponses[]` (each a
 * `response` with its `usageMetadata` or an `error`, and the request's `metadata`) or a
 * `responsesFile`, downloaded at `files/{id}:download?alt=media` (under `/v1beta/` as the SDKs
 * ask, or `/download/v1beta/` as the REST examples do) as JSONL, one `{key, response}` or
 * `{key, error}` a line, in request order. A request without `contents` fails on its own.
 */

export const GEMINI_KEY = "AIzaSyFake-gemini-0123456789abcdef";

/** What an answer reports: a prompt mostly from cached content, and thinking beside the candidates. */
export const GEMINI_USAGE = {
  promptTokenCount: 2000,
  candidatesTokenCount: 250,
  totalTokenCount: 2430,
  cachedContentTokenCount: 1500,
  thoughtsTokenCount: 180,
  promptTokensDetails: [{ modality: "TEXT", tokenCount: 2000 }],
  cacheTokensDetails: [{ modality: "TEXT", tokenCount: 1500 }],
};

const STATUS_NAMES: Record<number, [status: string, message: string]> = {
  400: ["INVALID_ARGUMENT", "Request contains an invalid argument."],
  403: ["PERMISSION_DENIED", "The caller does not have permission"],
  404: ["NOT_FOUND", "Requested entity was not found."],
  429: ["RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."],
  500: ["INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"],
  503: ["UNAVAILABLE", "The model is overloaded. Please try again later."],
  504: ["DEADLINE_EXCEEDED", "Deadline expired before operation could complete."],
};

function geminiError(code: number, message: string | undefined, details?: unknown[]) {
  const [status, wording] = STATUS_NAMES[code] ?? [code >= 500 ? "INTERNAL" : "FAILED_PRECONDITION", `Error ${code}`];
  return { error: { code, message: message ?? wording, status, ...(details ? { details } : {}) } };
}

function authorise(request: RecordedRequest, url: URL, key: string): Reply | undefined {
  const header = request.headers["x-goog-api-key"];
  const presented = typeof header === "string" ? header : (url.searchParams.get("key") ?? undefined);
  if (presented === key) return undefined;
  if (presented === undefined)
    return json(
      403,
      geminiError(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."),
    );
  const message = "API key not valid. Please pass a valid API key.";
  return json(
    400,
    geminiError(400, message, [
      { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID", domain: "googleapis.com", metadata: { service: "generativelanguage.googleapis.com" } },
      { "@type": "type.googleapis.com/google.rpc.LocalizedMessage", locale: "en-US", message },
    ]),
  );
}

type Usage = Record<string, unknown>;

/** The counts after `done` of `deltas` pieces: the prompt is known at once, candidates grow. */
function usageSoFar(usage: Usage, done: number, deltas: number): Usage {
  if (done >= deltas || typeof usage.candidatesTokenCount !== "number") return usage;
  const candidates = Math.floor((usage.candidatesTokenCount * done) / deltas);
  const total = typeof usage.totalTokenCount === "number" ? usage.totalTokenCount - usage.candidatesTokenCount + candidates : undefined;
  return { ...usage, candidatesTokenCount: candidates, ...(total === undefined ? {} : { totalTokenCount: total }) };
}

function* responses(model: string, deltas: number, usage: Usage, size: number): Generator<Record<string, unknown>> {
  const responseId = randomId("", 24);
  for (let i = 0; i < deltas; i++) {
    const last = i === deltas - 1;
    const candidate = { content: { parts: [{ text: piece(i, size) }], role: "model" }, index: 0, ...(last ? { finishReason: "STOP" } : {}) };
    yield { candidates: [candidate], usageMetadata: usageSoFar(usage, i + 1, deltas), modelVersion: model, responseId };
  }
}

function* sseFrames(model: string, deltas: number, usage: Usage, size: number): Generator<string> {
  for (const response of responses(model, deltas, usage, size)) yield sseFrame(response, undefined, "\r\n");
}

/** Without alt=sse: one pretty-printed JSON array, written element by element. */
function* arrayFrames(model: string, deltas: number, usage: Usage, size: number): Generator<string> {
  let first = true;
  for (const response of responses(model, deltas, usage, size)) {
    yield `${first ? "[" : ",\r\n"}${JSON.stringify(response, null, 2)}`;
    first = false;
  }
  yield first ? "[]" : "]";
}

/** What every succeeded batch request reports. */
export const GEMINI_BATCH_USAGE = { promptTokenCount: 1000, candidatesTokenCount: 400, thoughtsTokenCount: 100, totalTokenCount: 1500 };

/** The input files of file batches, as if uploaded: `{key, request}` lines (the last without contents, so it fails). */
export const GEMINI_INPUT_FILES: Readonly<Record<string, readonly { key: string; request: Record<string, unknown> }[]>> = {
  "files/batch-input-3": [
    { key: "alpha", request: { contents: [{ role: "user", parts: [{ text: "one" }] }] } },
    { key: "beta", request: { contents: [{ role: "user", parts: [{ text: "two" }] }] } },
    { key: "gamma", request: {} },
  ],
};

interface FakeBatch {
  model: string;
  created: string;
  polls: number;
  /** Each request as given, with its metadata (inline) or key (file). */
  requests: { request: Record<string, unknown>; metadata?: unknown; key?: string }[];
  file: boolean;
  /** Pads each response's text (Behaviour.deltaBytes of the create call), for answers of many megabytes. */
  padding: number;
}

const BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch";
const OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatchOutput";

/** One request's result: its GenerateContentResponse, or the error a request without contents gets. */
function batchResult(model: string, request: Record<string, unknown>, padding: number): { response: unknown } | { error: unknown } {
  if (!Array.isArray(request.contents) || request.contents.length === 0)
    return { error: { code: 3, message: "* GenerateContentRequest.contents: contents is not specified\n" } };
  return {
    response: {
      candidates: [{ content: { parts: [{ text: answerText(DEFAULT_DELTAS, padding) }], role: "model" }, finishReason: "STOP", index: 0 }],
      usageMetadata: GEMINI_BATCH_USAGE,
      modelVersion: model,
      responseId: randomId("", 24),
    },
  };
}

/** The batches a fake has been given, by id. */
type Batches = Map<string, FakeBatch>;

function operation(id: string, b: FakeBatch) {
  const done = b.polls > 1;
  const count = String(b.requests.length);
  const results = b.requests.map((r) => batchResult(b.model, r.request, b.padding));
  const failed = results.filter((r) => "error" in r).length;
  const output = b.file
    ? { responsesFile: `files/batch-${id}` }
    : { inlinedResponses: { inlinedResponses: results.map((r, i) => ({ ...r, ...(b.requests[i]!.metadata ? { metadata: b.requests[i]!.metadata } : {}) })) } };
  const stats = done
    ? { requestCount: count, successfulRequestCount: String(results.length - failed), failedRequestCount: String(failed) }
    : { requestCount: count, pendingRequestCount: count };
  const metadata = {
    "@type": BATCH_TYPE,
    model: `models/${b.model}`,
    displayName: `batch-${id}`,
    createTime: b.created,
    updateTime: b.created,
    batchStats: stats,
    state: done ? "BATCH_STATE_SUCCEEDED" : b.polls === 0 ? "BATCH_STATE_PENDING" : "BATCH_STATE_RUNNING",
    name: `batches/${id}`,
    ...(done ? { endTime: b.created, output } : {}),
  };
  return { name: `batches/${id}`, metadata, ...(done ? { done: true, response: { "@type": OUTPUT_TYPE, ...output } } : {}) };
}

function createBatch(batches: Batches, model: string, body: unknown, padding: number): Reply {
  const input = (body as { batch?: { inputConfig?: { requests?: { requests?: unknown }; fileName?: unknown } } } | undefined)?.batch?.inputConfig;
  const inline = input?.requests?.requests;
  const file = typeof input?.fileName === "string" ? GEMINI_INPUT_FILES[input.fileName] : undefined;
  if (!Array.isArray(inline) && !file) return json(400, geminiError(400, "* BatchGenerateContentRequest.batch.input_config: input_config is not specified"));
  const requests = file
    ? file.map(({ key, request }) => ({ request, key }))
    : (inline as { request?: Record<string, unknown>; metadata?: unknown }[]).map((r) => ({ request: r.request ?? {}, metadata: r.metadata }));
  const id = randomId("", 40).toLowerCase();
  batches.set(id, { model, created: new Date().toISOString(), polls: 0, requests, file: file !== undefined, padding });
  return json(200, operation(id, batches.get(id)!));
}

/** A batch's responses file, one JSON object a line, in request order. */
function* responsesFile(b: FakeBatch): Generator<string> {
  for (const { key, request } of b.requests) yield `${JSON.stringify({ key, ...batchResult(b.model, request, b.padding) })}\n`;
}

/** The Batch API's own paths; undefined for any other. */
function batchAnswer(batches: Batches, request: RecordedRequest, url: URL): Reply | undefined {
  if (request.method !== "GET") return undefined;
  // The listing (batches.list, ListOperationsResponse): every batch as a poll would show it, newest
  // first; a listing is a look at each, as a poll is.
  if (url.pathname === "/v1beta/batches") {
    const listed = [...batches].reverse().map(([id, b]) => {
      b.polls++;
      return operation(id, b);
    });
    return json(200, { operations: listed });
  }
  const polled = /^\/v1beta\/batches\/([^/:]+)$/.exec(url.pathname)?.[1];
  if (polled !== undefined) {
    const b = batches.get(polled);
    if (!b) return json(404, geminiError(404, undefined));
    b.polls++;
    return json(200, operation(polled, b));
  }
  const file = /^(?:\/download)?\/v1beta\/files\/batch-([^/:]+):download$/.exec(url.pathname)?.[1];
  if (file === undefined) return undefined;
  const b = batches.get(file);
  if (!b?.file || b.polls < 2 || url.searchParams.get("alt") !== "media") return json(404, geminiError(404, undefined));
  return { kind: "stream", contentType: "application/octet-stream", frames: responsesFile(b) };
}

function answer(batches: Batches, request: RecordedRequest, url: URL, b: Behaviour): Reply {
  const batch = batchAnswer(batches, request, url);
  if (batch) return batch;
  const match = /^\/(?:v1|v1beta)\/models\/([^/:]+):([A-Za-z]+)$/.exec(url.pathname);
  const model = decodeURIComponent(match?.[1] ?? "");
  const action = match?.[2];
  if (request.method !== "POST" || !match) return json(404, geminiError(404, `Not found: ${request.method} ${url.pathname}`));
  const deltas = b.deltas ?? DEFAULT_DELTAS;
  const usage = b.usage ?? GEMINI_USAGE;
  switch (action) {
    case "generateContent":
      return json(200, {
        candidates: [{ content: { parts: [{ text: answerText(deltas, b.deltaBytes) }], role: "model" }, finishReason: "STOP", index: 0 }],
        usageMetadata: usage,
        modelVersion: model,
        responseId: randomId("", 24),
      });
    case "streamGenerateContent":
      return url.searchParams.get("alt") === "sse"
        ? { kind: "stream", contentType: "text/event-stream", frames: sseFrames(model, deltas, usage, b.deltaBytes ?? 0) }
        : { kind: "stream", contentType: "application/json; charset=UTF-8", frames: arrayFrames(model, deltas, usage, b.deltaBytes ?? 0) };
    case "batchGenerateContent":
      return createBatch(batches, model, request.body, b.deltaBytes ?? 0);
    case "countTokens":
      return json(200, { totalTokens: GEMINI_USAGE.promptTokenCount, promptTokensDetails: GEMINI_USAGE.promptTokensDetails });
    default:
      return json(400, geminiError(400, `Invalid JSON payload received. Unknown name "${action}"`));
  }
}

/** A fake Gemini API on a loopback port, accepting `key`. Base URL for the SDK: `url`. */
export function startFakeGemini(key = GEMINI_KEY): Promise<FakeUpstream> {
  const batches: Batches = new Map();
  const contract: ProviderContract = {
    authorise,
    errorBody: (status, message) => geminiError(status, message),
    answer: (request, url, b) => answer(batches, request, url, b),
    commonHeaders: () => ({ "server-timing": "gfet4t7; dur=42" }),
  };
  return startFake(contract, key);
}
