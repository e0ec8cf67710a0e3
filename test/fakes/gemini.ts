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

function answer(request: RecordedRequest, url: URL, b: Behaviour): Reply {
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
    case "countTokens":
      return json(200, { totalTokens: GEMINI_USAGE.promptTokenCount, promptTokensDetails: GEMINI_USAGE.promptTokensDetails });
    default:
      return json(400, geminiError(400, `Invalid JSON payload received. Unknown name "${action}"`));
  }
}

const contract: ProviderContract = {
  authorise,
  errorBody: (status, message) => geminiError(status, message),
  answer,
  commonHeaders: () => ({ "server-timing": "gfet4t7; dur=42" }),
};

/** A fake Gemini API on a loopback port, accepting `key`. Base URL for the SDK: `url`. */
export function startFakeGemini(key = GEMINI_KEY): Promise<FakeUpstream> {
  return startFake(contract, key);
}
