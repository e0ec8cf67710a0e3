import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Writable } from "node:stream";
import { createGzip, gzipSync } from "node:zlib";
import { keepConnections } from "../helpers/wait.ts";

/*
 * The machinery every fake provider shares: a loopback node:http server that records each request,
 * lets a test script the next answers (errors, gzip, slow or large streams, hangs) and writes
 * server-sent events with backpressure. Each provider module supplies only its contract: how it
 * checks the credential, what its answers and errors look like.
 */

export interface RecordedRequest {
  method: string;
  /** Path with query, as received. */
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body; the raw text when it is not JSON; undefined when empty. */
  body: unknown;
  /** The body's bytes exactly as received (what a signature covers). */
  raw: Buffer;
  /** How the fake's answer to this request went, updated while it is being sent. */
  reply: ReplyProgress;
}

/**
 * What the fake has sent of one answer, so a test can see the far side of the gateway: whether
 * backpressure reached the upstream, whether the gateway hung up before the answer was over.
 */
export interface ReplyProgress {
  /** Frames (stream events, or the one whole body) handed to the socket so far. */
  frames: number;
  /** Bytes of those frames, before any compression. */
  bytes: number;
  /** Writes that were refused (write() returned false) and had to wait for 'drain'. */
  blockedWrites: number;
  /** True while the fake is waiting for 'drain', i.e. held back by its reader. */
  blocked: boolean;
  /** The whole answer was written and flushed. */
  finished: boolean;
  /** The connection closed before the whole answer was written (the reader hung up). */
  closedEarly: boolean;
  /** Resolves once the answer is finished or its connection has closed. */
  settled: Promise<void>;
}

/** How the fake answers one request. Unset fields mean a normal, prompt, uncompressed answer. */
export interface Behaviour {
  /** Answer with this status and the provider's own error body. */
  status?: number;
  /** The error message for `status` (the provider's usual wording otherwise). */
  message?: string;
  /** Seconds, sent as `retry-after` with an error. */
  retryAfter?: number;
  /** Compress the answer (`content-encoding: gzip`); streams are flushed after every event. */
  gzip?: boolean;
  /** Milliseconds between stream events, or before a whole answer. */
  delayMs?: number;
  /** Milliseconds before a stream's head (a model slow to its first token). */
  headDelayMs?: number;
  /** Content deltas in a stream (default 4): many for a large stream. */
  deltas?: number;
  /** Read the request and never answer (for timeouts). */
  hang?: boolean;
  /** Replaces the usage object the answer reports, in the provider's own shape. */
  usage?: Record<string, unknown>;
  /** Pads every content delta to about this many bytes (for streams of many megabytes). */
  deltaBytes?: number;
  /** The model the answer names, as providers name a dated snapshot when asked for a family (OpenAI fake). */
  model?: string;
  /** Send a whole answer without content-length, in two writes (chunked), as a server compressing on the fly does. */
  chunked?: boolean;
  /** Write only this many bytes of a whole answer, then cut the connection. */
  cutAfter?: number;
}

export interface FakeUpstream {
  /** Base URL, no trailing slash: `http://127.0.0.1:PORT`. */
  url: string;
  /** The provider key the fake accepts. */
  key: string;
  requests: RecordedRequest[];
  /** Queues behaviours for the next requests, one each, in order; then answers normally again. */
  setNext(...behaviours: Behaviour[]): void;
  close(): Promise<void>;
}

/** An answer a provider contract produces. */
export type Reply =
  | { kind: "json"; status: number; body: unknown; headers?: Record<string, string> }
  /** Frames written one by one: SSE events, the pieces of a JSON-array stream, or binary event-stream messages. */
  | { kind: "stream"; contentType: string; frames: Iterable<string | Uint8Array>; headers?: Record<string, string> };

export interface ProviderContract {
  /** The reply for a missing or wrong credential; undefined lets the request through (a promise where checking takes work, as a signature does). */
  authorise(request: RecordedRequest, url: URL, key: string): Reply | undefined | Promise<Reply | undefined>;
  /** The provider's error body for a status a test asked for. */
  errorBody(status: number, message: string | undefined): unknown;
  /** Headers that go with that error body, where the provider names its errors in a header. */
  errorHeaders?(status: number): Record<string, string>;
  answer(request: RecordedRequest, url: URL, behaviour: Behaviour): Reply;
  /** Headers on every answer (request ids and the like). */
  commonHeaders(): Record<string, string>;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A random id in the style providers use: a prefix and base-62 characters. */
export function randomId(prefix: string, length: number): string {
  return prefix + Array.from(randomBytes(length), (byte) => ALPHABET[byte % ALPHABET.length]).join("");
}

export const DEFAULT_DELTAS = 4;

/** The text of content delta `i`; all fakes answer with the same words, padded with dots to `size` characters if given. */
export const piece = (i: number, size = 0): string => {
  const word = i === 0 ? "Hello" : ` word${i}`;
  return word.length >= size ? word : word + ".".repeat(size - word.length);
};

/** The whole answer text of `deltas` deltas, as the client should reassemble it. */
export const answerText = (deltas = DEFAULT_DELTAS, size = 0): string => Array.from({ length: deltas }, (_, i) => piece(i, size)).join("");

export const unixSeconds = (): number => Math.floor(Date.now() / 1000);

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const json = (status: number, body: unknown, headers?: Record<string, string>): Reply => ({ kind: "json", status, body, headers });

function parseBody(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Progress of the answer on `res`, kept up to date by the writers below and by the response's own events. */
function progressOf(res: ServerResponse): ReplyProgress {
  const progress: ReplyProgress = { frames: 0, bytes: 0, blockedWrites: 0, blocked: false, finished: false, closedEarly: false, settled: Promise.resolve() };
  progress.settled = new Promise<void>((resolve) => {
    res.once("finish", () => {
      progress.finished = true;
    });
    res.once("close", () => {
      progress.closedEarly = !progress.finished;
      progress.blocked = false;
      resolve();
    });
  });
  return progress;
}

async function record(req: IncomingMessage, res: ServerResponse): Promise<RecordedRequest> {
  const reply = progressOf(res);
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  return { method: req.method ?? "GET", path: req.url ?? "/", headers: req.headers, body: parseBody(raw.toString("utf8")), raw, reply };
}

/** Resolves when `stream` can take more, or when the client has gone (so a dead client never stalls the fake). */
function drained(stream: Writable, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      res.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    res.on("close", done);
  });
}

async function writeStream(res: ServerResponse, reply: Extract<Reply, { kind: "stream" }>, behaviour: Behaviour, headers: Record<string, string>, progress: ReplyProgress): Promise<void> {
  if (behaviour.headDelayMs) await sleep(behaviour.headDelayMs);
  res.writeHead(200, { "content-type": reply.contentType, "cache-control": "no-cache", ...headers, ...reply.headers, ...(behaviour.gzip ? { "content-encoding": "gzip", vary: "accept-encoding" } : {}) });
  res.flushHeaders();
  const gzip = behaviour.gzip ? createGzip() : undefined;
  if (gzip) gzip.pipe(res);
  const out: Writable = gzip ?? res;
  let first = true;
  for (const frame of reply.frames) {
    if (res.destroyed) return;
    if (!first && behaviour.delayMs) await sleep(behaviour.delayMs);
    first = false;
    progress.frames++;
    progress.bytes += Buffer.byteLength(frame);
    if (!out.write(frame)) {
      progress.blockedWrites++;
      progress.blocked = true;
      await drained(out, res);
      progress.blocked = false;
    }
    // A compressor holds bytes back until it has a block; flushing per event is what real servers do for SSE.
    if (gzip) await new Promise<void>((resolve) => gzip.flush(() => resolve()));
  }
  out.end();
}

async function send(res: ServerResponse, reply: Reply, behaviour: Behaviour, headers: Record<string, string>, progress: ReplyProgress): Promise<void> {
  if (reply.kind === "stream") return writeStream(res, reply, behaviour, headers, progress);
  if (behaviour.delayMs) await sleep(behaviour.delayMs);
  if (res.destroyed) return;
  const text = Buffer.from(JSON.stringify(reply.body));
  const body = behaviour.gzip ? gzipSync(text) : text;
  res.writeHead(reply.status, {
    "content-type": "application/json",
    ...headers,
    ...reply.headers,
    ...(behaviour.gzip ? { "content-encoding": "gzip", vary: "accept-encoding" } : {}),
    ...(behaviour.chunked ? {} : { "content-length": String(body.length) }),
  });
  progress.frames++;
  progress.bytes += text.length;
  if (behaviour.cutAfter !== undefined) {
    res.write(body.subarray(0, behaviour.cutAfter), () => res.destroy());
    return;
  }
  if (!behaviour.chunked) return void res.end(body);
  const half = body.length >> 1;
  res.write(body.subarray(0, half));
  await sleep(5);
  res.end(body.subarray(half));
}

/** Starts a fake provider on a loopback port. */
export async function startFake(contract: ProviderContract, key: string): Promise<FakeUpstream> {
  const requests: RecordedRequest[] = [];
  const queue: Behaviour[] = [];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const request = await record(req, res);
    requests.push(request);
    const behaviour = queue.shift() ?? {};
    if (behaviour.hang) return;
    const url = new URL(request.path, "http://fake");
    const headers = contract.commonHeaders();
    const denied = await contract.authorise(request, url, key);
    if (denied) return send(res, denied, {}, headers, request.reply);
    if (behaviour.status !== undefined) {
      const retry: Record<string, string> = behaviour.retryAfter === undefined ? {} : { "retry-after": String(behaviour.retryAfter) };
      const named = contract.errorHeaders?.(behaviour.status) ?? {};
      return send(res, json(behaviour.status, contract.errorBody(behaviour.status, behaviour.message), { ...named, ...retry }), behaviour, headers, request.reply);
    }
    return send(res, contract.answer(request, url, behaviour), behaviour, headers, request.reply);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(`fake upstream failed: ${String(err)}`);
    });
  });
  keepConnections(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    key,
    requests,
    setNext: (...behaviours) => void queue.push(...behaviours),
    async close() {
      // Hanging requests keep their sockets open; close() would wait for them for ever.
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** One server-sent event: `event:` only where the API names its events. */
export function sseFrame(data: unknown, event?: string, newline = "\n"): string {
  const body = typeof data === "string" ? data : JSON.stringify(data);
  return `${event === undefined ? "" : `event: ${event}${newline}`}data: ${body}${newline}${newline}`;
}
