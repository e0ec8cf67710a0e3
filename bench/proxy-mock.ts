import { type IncomingMessage, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { MOCK_KEY, MOCK_MODEL } from "./proxy-shared.ts";

/**
 * The proxy bench's upstream: OpenAI Chat Completions answered at once, in a process of its own so
 * it never shares an event loop with the load generator or the gateway. Every answer is built
 * once at start-up; per request it only reads the body, checks the key and writes bytes, so what
 * the bench measures on top of it is the network hop and whoever sits in the middle.
 *
 * Forked by bench/proxy.ts; reports `{ port }` over IPC once it listens on loopback.
 */

const USAGE = {
  prompt_tokens: 1200,
  completion_tokens: 300,
  total_tokens: 1500,
  prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
};
const BASE = { id: "chatcmpl-bench0123456789", created: 1_760_000_000, model: MOCK_MODEL, system_fingerprint: "fp_bench" };
const PIECES = ["Hello", " there,", " how", " are", " you?"];

const COMPLETION = Buffer.from(
  JSON.stringify({
    ...BASE,
    object: "chat.completion",
    choices: [{ index: 0, message: { role: "assistant", content: PIECES.join(""), refusal: null }, logprobs: null, finish_reason: "stop" }],
    usage: USAGE,
  }),
);

const frame = (data: unknown) => `data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`;

/** Chat stream frames as OpenAI sends them: with include_usage every chunk says `"usage": null` and a last one carries it. */
function chunks(includeUsage: boolean): { first: Buffer; rest: Buffer } {
  const tail = includeUsage ? { usage: null } : {};
  const chunk = (delta: object, finish: string | null) => ({ ...BASE, object: "chat.completion.chunk", choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...tail });
  const rest = [
    ...PIECES.map((content) => frame(chunk({ content }, null))),
    frame(chunk({}, "stop")),
    ...(includeUsage ? [frame({ ...BASE, object: "chat.completion.chunk", choices: [], usage: USAGE })] : []),
    frame("[DONE]"),
  ];
  return { first: Buffer.from(frame(chunk({ role: "assistant", content: "", refusal: null }, null))), rest: Buffer.from(rest.join("")) };
}

const STREAMS = { withUsage: chunks(true), withoutUsage: chunks(false) };
const JSON_HEADERS = { "content-type": "application/json", "content-length": String(COMPLETION.length), "x-request-id": "req_bench" };
const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-request-id": "req_bench" };

function reply(res: ServerResponse, status: number, message: string): void {
  const body = JSON.stringify({ error: { message, type: "invalid_request_error", param: null, code: null } });
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function answer(req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
  if (req.method !== "POST" || req.url !== "/v1/chat/completions") return reply(res, 404, `no route for ${req.method} ${req.url}`);
  // The gateway must have swapped the client's Tollgate key for this one.
  if (req.headers.authorization !== `Bearer ${MOCK_KEY}`) return reply(res, 401, "Incorrect API key provided.");
  let body: { stream?: unknown; stream_options?: { include_usage?: unknown } | null };
  try {
    body = JSON.parse(raw.toString("utf8"));
  } catch {
    return reply(res, 400, "the body is not JSON");
  }
  if (body.stream !== true) {
    res.writeHead(200, JSON_HEADERS);
    res.end(COMPLETION);
    return;
  }
  const { first, rest } = body.stream_options?.include_usage === true ? STREAMS.withUsage : STREAMS.withoutUsage;
  res.writeHead(200, SSE_HEADERS);
  res.write(first);
  // The rest a turn later, so the first chunk leaves on its own and time to first byte means something.
  setImmediate(() => res.end(rest));
}

const server = createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on("data", (chunk: Buffer) => parts.push(chunk));
  req.on("end", () => answer(req, res, Buffer.concat(parts)));
});
server.keepAliveTimeout = 120_000;
server.listen(0, "127.0.0.1", () => process.send?.({ port: (server.address() as AddressInfo).port }));
process.on("disconnect", () => process.exit(0));
