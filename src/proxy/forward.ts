import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { type Readable, type Transform, pipeline } from "node:stream";
import { brotliDecompressSync, createBrotliDecompress, createGunzip, createInflate, gunzipSync, inflateSync } from "node:zlib";
import type { Dispatcher } from "undici";
import type { Built, EventBuilder } from "../ledger/build-event.ts";
import { type Attribution, type UsageEvent, ZERO_TOKENS } from "../ledger/event.ts";
import { picoToDecimalString } from "../pricing/money.ts";
import type { CallUsage, Provider, RequestFacts, UpstreamRequest } from "../providers/types.ts";
import { ATTRIBUTION_HEADERS } from "./attribution.ts";
import type { Upstream } from "./router.ts";
import { upstreamPath } from "./upstream-path.ts";
import { type HeldAnswer, type UpstreamAnswer, callUpstream, isHeld } from "./upstream-call.ts";
import { type Held, holdBody, joined } from "../http/hold.ts";
import { StreamMeter, streamUsage } from "./estimate.ts";
import { isEventStream } from "../providers/sse.ts";

/** Headers that describe one connection, not the message: never passed through (RFC 9110 §7.6.1). */
export const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length"]);
/** Non-streamed JSON answers up to this size are held to put their cost in a header; larger ones stream. */
const HOLD_LIMIT = 8 * 1024 * 1024;

/** One call on its way through: everything known before the upstream answers. */
export interface Call {
  id: string;
  provider: Provider;
  path: string;
  facts: RequestFacts;
  attribution: Attribution;
  started: number;
  startedAt: Date;
  /** The `x-request-id` an answer carries when the upstream sends none: the client's own (when sane), else the call's id. */
  replyId: string;
  /** The provider key to authorise with (stored, from the environment, or the client's own); undefined when none is configured. */
  credential: string | undefined;
  /**
   * Takes the call's built events (or why one could not be built), all at once: settles its hold
   * with them and hands them to the ledger. One, or one per result of a batch read back.
   */
  record: (built: readonly Built[]) => void;
  /**
   * Runs `send` once what the call recorded is journaled (written with the other calls recorded in
   * the same turn of the event loop): whatever sends an answer's last bytes after a record goes here.
   */
  whenRecorded: (send: () => void) => void;
}

/** What every call through one gateway shares: made once, not per request. */
export interface ForwardOptions {
  builder: EventBuilder;
  onDisconnect: "drain" | "cancel";
  drainTimeoutMs: number;
  /** Shared count of answers still being read after their client left, bounded by maxDrains. */
  drains: { active: number; max: number };
  upstreamTimeoutMs: number;
}

/** Where a call goes: its route's upstream and the provider's settings, for its `authorize`. */
export interface Target {
  upstream: Upstream;
  settings: unknown;
}

/**
 * Per provider, the request headers never sent upstream: hop-by-hop, its credentials, and Tollgate's
 * own; and `expect`, since the gateway answers a `100-continue` itself and sends the whole body it
 * holds (undici refuses the header).
 */
const droppedHeaders = new WeakMap<Provider, ReadonlySet<string>>();
function dropped(provider: Provider): ReadonlySet<string> {
  let names = droppedHeaders.get(provider);
  if (!names) droppedHeaders.set(provider, (names = new Set([...HOP_BY_HOP, "expect", ...provider.credentialHeaders, ...ATTRIBUTION_HEADERS])));
  return names;
}

/** The content codings the gateway decodes (an answer is read for its usage), each as a stream and whole. */
const DECODERS: Record<string, { stream: () => Transform; whole: (bytes: Buffer) => Buffer }> = {
  gzip: { stream: createGunzip, whole: gunzipSync },
  "x-gzip": { stream: createGunzip, whole: gunzipSync },
  deflate: { stream: createInflate, whole: inflateSync },
  br: { stream: createBrotliDecompress, whole: brotliDecompressSync },
};

/**
 * The client's `accept-encoding` without the codings the gateway cannot decode (zstd, `*`): an
 * answer in one of those could not be read for its usage, nor passed on decoded. Undefined when
 * none is left, so the upstream answers uncompressed.
 */
function decodableCodings(value: string): string | undefined {
  const kept: string[] = [];
  for (const coding of value.split(",")) {
    const name = coding.split(";", 1)[0]!.trim().toLowerCase();
    if (Object.hasOwn(DECODERS, name) || name === "identity") kept.push(coding.trim());
  }
  return kept.length > 0 ? kept.join(", ") : undefined;
}

/** The header names a request's `connection` header lists (hop-by-hop too); none for the usual `keep-alive` or `close`. */
function listedByConnection(connection: string | undefined): ReadonlySet<string> | undefined {
  if (connection === undefined) return undefined;
  const lower = connection.toLowerCase();
  return lower === "keep-alive" || lower === "close" ? undefined : new Set(lower.split(",").map((token) => token.trim()));
}

/**
 * Headers for the upstream, before the provider authorises them: the client's, minus hop-by-hop
 * ones (and any its `connection` header names), its credentials and our own.
 */
export function upstreamHeaders(headers: IncomingHttpHeaders, provider: Provider, body: Buffer | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const drop = dropped(provider);
  const listed = listedByConnection(headers.connection);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || drop.has(name) || listed?.has(name)) continue;
    const text = Array.isArray(value) ? value.join(", ") : value;
    if (name !== "accept-encoding") out[name] = text;
    else {
      const codings = decodableCodings(text);
      if (codings !== undefined) out[name] = codings;
    }
  }
  if (body) out["content-length"] = String(body.length);
  return out;
}

/** The upstream's answer headers for the client, minus hop-by-hop ones and `without`, plus the call's ids. */
function clientHeaders(call: Call, headers: Dispatcher.ResponseData["headers"], without?: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || name === without) continue;
    out[name] = value;
  }
  out["x-request-id"] ??= call.replyId;
  out["x-tollgate-request-id"] = call.id;
  return out;
}

function decompressor(encoding: string | undefined): Transform | undefined {
  return encoding !== undefined && Object.hasOwn(DECODERS, encoding) ? DECODERS[encoding]!.stream() : undefined;
}

function decompressSync(encoding: string | undefined, bytes: Buffer): Buffer {
  return encoding !== undefined && Object.hasOwn(DECODERS, encoding) ? DECODERS[encoding]!.whole(bytes) : bytes;
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    return undefined;
  }
}

/**
 * What the proxy saw of a call, whatever became of it, for the ledger's builder. `answerCode` is the
 * upstream's HTTP status, when it answered: a success whose usage was not read may still be billed.
 */
export function callEvent(call: Call, outcome: CallUsage, status: UsageEvent["status"], upstreamRequestId: string | undefined, answerCode?: number): UsageEvent {
  const usage = outcome.usage;
  return {
    source: "proxy",
    id: outcome.key ?? call.id,
    ts: call.startedAt,
    provider: call.provider.name,
    model: outcome.model ?? usage?.model ?? call.facts.model ?? "",
    tokens: usage?.tokens ?? ZERO_TOKENS,
    service_tier: usage?.service_tier ?? outcome.tier ?? "standard",
    reported_cost: null,
    latency_ms: Math.round(performance.now() - call.started),
    status,
    ...call.attribution,
    request_id: upstreamRequestId ?? usage?.request_id ?? null,
    ...(!usage && answerCode !== undefined && answerCode < 400 ? { usage_unknown: true } : {}),
    ...(outcome.estimated ? { estimated: true } : {}),
  };
}

/** What an answer without readable usage reports. */
const NO_USAGE: CallUsage = { usage: undefined, model: undefined };

/** Builds the call's event (or, for an answer reporting `results`, one per result), once, and hands it on. */
function recordCall(opts: ForwardOptions, ...seen: Parameters<typeof callEvent>): void {
  const [call, outcome, ...rest] = seen;
  call.record((outcome.results ?? [outcome]).map((one) => opts.builder.build(callEvent(call, one, ...rest))));
}

const upstreamRequestId = (headers: Dispatcher.ResponseData["headers"]) => {
  const id = headers["x-request-id"] ?? headers["request-id"] ?? headers["x-amzn-requestid"];
  return typeof id === "string" ? id.slice(0, 200) : undefined;
};

/** The request as the provider authorises it; the whole URL is built only if it asks (SigV4 signs it). */
function upstreamRequest(method: string, origin: string, path: string, headers: Record<string, string>, body: Buffer | undefined): UpstreamRequest {
  let url: URL | undefined;
  return {
    method,
    get url() {
      return (url ??= new URL(path, origin));
    },
    headers,
    body,
  };
}

/** Sends a call upstream and its answer back, recording it once the answer is over. */
export async function forward(call: Call, target: Target, req: IncomingMessage, res: ServerResponse, body: Buffer | undefined, query: string, opts: ForwardOptions): Promise<void> {
  const sent = call.facts.rewritten ?? body;
  const { upstream } = target;
  const path = upstreamPath(upstream.basePath, call.path) + query;
  const method = req.method ?? "GET";
  const headers = upstreamHeaders(req.headers, call.provider, sent);
  const authorizing = call.provider.authorize(upstreamRequest(method, upstream.origin, path, headers, sent), call.credential, target.settings);
  const authorization = authorizing instanceof Promise ? await authorizing : authorizing;
  if (authorization === undefined)
    return sendProviderError(res, call, 503, "provider_not_configured", `no ${call.provider.name} API key is configured on the gateway`);
  // The provider has seen (and, for SigV4, signed) these headers: its own are added, none changed.
  for (const name in authorization) headers[name] = authorization[name]!;
  // A non-streamed JSON answer is held whole (its cost goes in a header): gathered without a body stream when its length is known.
  const holdable = (answer: Dispatcher.ResponseData["headers"]) => {
    const type = String(answer["content-type"] ?? "");
    return type.includes("json") && !call.provider.isStream(type, call.path);
  };
  let answer: UpstreamAnswer;
  try {
    answer = await callUpstream(
      upstream.dispatcher,
      { path, method: method as Dispatcher.HttpMethod, headers, body: sent, headersTimeout: opts.upstreamTimeoutMs, bodyTimeout: opts.upstreamTimeoutMs },
      holdable,
      HOLD_LIMIT,
    );
  } catch (err) {
    const timedOut = (err as { code?: string }).code === "UND_ERR_HEADERS_TIMEOUT";
    const status = timedOut ? 504 : 502;
    recordCall(opts, call, NO_USAGE, "error", undefined);
    call.whenRecorded(() => sendProviderError(res, call, status, timedOut ? "upstream_timeout" : "upstream_unreachable", timedOut ? "the provider did not answer in time" : "the provider could not be reached"));
    return;
  }
  const requestId = upstreamRequestId(answer.headers);
  if (isHeld(answer)) return sendHeld(call, res, answer, requestId, opts);
  const contentType = String(answer.headers["content-type"] ?? "");
  if (call.provider.isStream(contentType, call.path)) return relayStream(call, res, answer, requestId, opts, sent);
  if (contentType.includes("json")) return relayJson(call, res, answer, requestId, opts, sent);
  res.writeHead(answer.statusCode, clientHeaders(call, answer.headers));
  await relayAndRecord(call, res, answer.body, identity, nothing, noUsage, requestId, answer.statusCode, opts);
}

const identity = (chunk: Buffer): Buffer => chunk;
const nothing = (): undefined => undefined;
const noUsage = (): CallUsage => NO_USAGE;

/**
 * How a relayed answer ended: sent whole; the client left but the answer was read to its end
 * (drained); the client left and the gateway stopped reading (`cancel`, no drain slot, the drain
 * timed out); or broken off by the upstream.
 */
type Delivery = "whole" | "client_gone" | "cut" | "upstream_broke";

function statusOf(code: number, delivery: Delivery): UsageEvent["status"] {
  if (delivery === "client_gone" || delivery === "cut") return "aborted";
  return code < 400 && delivery === "whole" ? "ok" : "error";
}


/**
 * A JSON answer of unknown length: held (up to a limit) so its cost can ride in a header; too big,
 * streamed on without one, and settled at an estimate (its usage is not read), never at $0: the
 * request's text and the answer's bytes/4, which over-counts its JSON framing (a compressed
 * answer is counted by its compressed bytes, which under-counts).
 */
async function relayJson(call: Call, res: ServerResponse, answer: Dispatcher.ResponseData, requestId: string | undefined, opts: ForwardOptions, request: Buffer | undefined): Promise<void> {
  let held: Held;
  try {
    held = await holdBody(answer.body, HOLD_LIMIT);
  } catch {
    return sendHeld(call, res, { statusCode: answer.statusCode, headers: answer.headers, bytes: undefined }, requestId, opts);
  }
  if (!held.whole) {
    res.writeHead(answer.statusCode, clientHeaders(call, answer.headers));
    const meter = new StreamMeter(false);
    const counted = (chunk: Buffer) => {
      meter.push(chunk);
      return chunk;
    };
    for (const chunk of held.chunks) res.write(counted(chunk));
    const usage = () => (answer.statusCode < 400 ? streamUsage(NO_USAGE, true, request, meter) : NO_USAGE);
    await relayAndRecord(call, res, answer.body, counted, nothing, usage, requestId, answer.statusCode, opts);
    return;
  }
  sendHeld(call, res, { statusCode: answer.statusCode, headers: answer.headers, bytes: joined(held) }, requestId, opts);
}

/** A whole JSON answer, read for its usage and sent as it came (its cost in a header) in one write; one that broke off is a 502. */
function sendHeld(call: Call, res: ServerResponse, answer: HeldAnswer, requestId: string | undefined, opts: ForwardOptions): void {
  if (answer.bytes === undefined) {
    recordCall(opts, call, NO_USAGE, "error", requestId, answer.statusCode);
    call.whenRecorded(() => sendProviderError(res, call, 502, "upstream_interrupted", "the provider's answer broke off"));
    return;
  }
  const headers = clientHeaders(call, answer.headers);
  let bytes = answer.bytes;
  const encoding = answer.headers["content-encoding"] as string | undefined;
  let outcome = NO_USAGE;
  if (answer.statusCode < 400) {
    let parsed: unknown;
    try {
      parsed = parseJson(decompressSync(encoding, bytes));
    } catch {
      parsed = undefined;
    }
    outcome = call.provider.usageOf(call.path, parsed);
    const rewritten = call.provider.rewriteAnswer?.(call.path, parsed);
    if (rewritten !== undefined) {
      bytes = Buffer.from(JSON.stringify(rewritten));
      delete headers["content-encoding"];
    }
  }
  // A client that left before its answer came is still charged the provider's usage, as `aborted`.
  const status = res.destroyed ? "aborted" : answer.statusCode < 400 ? "ok" : "error";
  const built = opts.builder.build(callEvent(call, outcome, status, requestId, answer.statusCode));
  if (answer.statusCode < 400 && built.ok && built.event.priced && outcome.usage) headers["x-tollgate-cost-usd"] = picoToDecimalString(built.event.cost);
  headers["content-length"] = String(bytes.length);
  // Head and body leave together: end() corks the socket around both.
  res.writeHead(answer.statusCode, headers);
  // Journaled before the answer leaves: a client that got its answer has its call recorded.
  call.record([built]);
  call.whenRecorded(() => res.end(bytes));
}

/**
 * A stream: bytes go to the client as they arrive while the provider's tap reads them for usage
 * (and, when the gateway itself asked for usage, leaves out what the client did not ask for).
 * Compressed streams are decompressed: the tap reads plain bytes, and streams are never compressed by us.
 */
async function relayStream(call: Call, res: ServerResponse, answer: Dispatcher.ResponseData, requestId: string | undefined, opts: ForwardOptions, request: Buffer | undefined): Promise<void> {
  const encoding = answer.headers["content-encoding"] as string | undefined;
  const inflate = decompressor(encoding);
  // pipeline, not pipe: an upstream that breaks off must fail the decompressor too, and a cancelled
  // decompressor must close the upstream body (and with it the upstream request).
  const source: Readable = inflate ? pipeline(answer.body, inflate, () => {}) : answer.body;
  const injected = call.facts.rewritten !== undefined && call.facts.stream;
  const tap = call.provider.tap(call.path, injected);
  const headers = clientHeaders(call, answer.headers, "content-encoding");
  headers["cache-control"] = "no-cache";
  // The head goes at once (pump flushes it): the client sees the answer begin before the first
  // event, and each event after reaches it as the upstream sent it (a client that stops after one
  // event gets just that one).
  res.writeHead(answer.statusCode, headers);
  const sse = isEventStream(String(answer.headers["content-type"] ?? ""));
  const meter = new StreamMeter(sse);
  const push = (chunk: Buffer) => {
    meter.push(chunk);
    return tap.push(chunk);
  };
  // A stream cut short, one the tap stopped reading before its end, or a server-sent-events stream
  // that never reported usage, is settled at an estimate, never $0 (a whole stream in a format
  // Tollgate does not read stays unpriced).
  const usage = (delivery: Delivery) => {
    const read = tap.result();
    const cut = delivery === "cut" || delivery === "upstream_broke" || read.partial === true;
    return answer.statusCode < 400 && (cut || sse) ? streamUsage(read, cut, request, meter) : read;
  };
  await relayAndRecord(call, res, source, push, () => tap.end(), usage, requestId, answer.statusCode, opts, true);
}

/**
 * Relays the rest of an answer and records the call once: a whole answer before its last bytes
 * leave (so a client that got all of it has its call journaled), a cut one when it is over.
 */
async function relayAndRecord(
  call: Call,
  res: ServerResponse,
  source: Readable,
  transform: (chunk: Buffer) => Buffer | undefined,
  atEnd: () => Buffer | undefined,
  usage: (delivery: Delivery) => CallUsage,
  requestId: string | undefined,
  code: number,
  opts: ForwardOptions,
  /** Send the head at once, not with the first chunk (a stream: the client sees it begin). */
  flushHead = false,
): Promise<void> {
  let recorded = false;
  const record = (delivery: Delivery) => {
    if (recorded) return;
    recorded = true;
    recordCall(opts, call, usage(delivery), statusOf(code, delivery), requestId, code);
  };
  const lastBytes = (send: () => void) => {
    record("whole");
    call.whenRecorded(send);
  };
  record(await pump(source, res, transform, opts, atEnd, lastBytes, flushHead));
}

/**
 * Copies upstream chunks to the client with backpressure both ways. If the client goes away, the
 * answer is either read on to its end for its usage (drain, bounded in time and in how many run at
 * once) or cut off (cancel). Says whether the client got the whole answer, left first, or the
 * upstream broke off (an error, a timeout) and the client's answer was cut short.
 */
function pump(
  source: Readable,
  res: ServerResponse,
  transform: (chunk: Buffer) => Buffer | undefined,
  opts: ForwardOptions,
  atEnd: () => Buffer | undefined,
  /** Records the whole answer and sends its last bytes (`send`) once that is journaled. */
  lastBytes: (send: () => void) => void,
  flushHead: boolean,
): Promise<Delivery> {
  return new Promise((resolve) => {
    let clientGone = false;
    let draining = false;
    let settled = false;
    let drainTimer: NodeJS.Timeout | undefined;
    const settle = (delivery: Delivery) => {
      if (settled) return;
      settled = true;
      source.off("data", onData);
      source.off("end", onEnd);
      source.off("error", onBroken);
      source.off("close", onBroken);
      res.off("close", onClose);
      res.off("drain", onDrain);
      clearTimeout(drainTimer);
      if (draining) opts.drains.active--;
      resolve(delivery);
    };
    const onClose = () => {
      if (res.writableFinished) return;
      clientGone = true;
      res.off("drain", onDrain);
      if (opts.onDisconnect === "drain" && opts.drains.active < opts.drains.max) {
        draining = true;
        opts.drains.active++;
        drainTimer = setTimeout(() => source.destroy(), opts.drainTimeoutMs);
        source.resume();
      } else source.destroy();
    };
    const onDrain = () => source.resume();
    const onData = (chunk: Buffer) => {
      let out: Buffer | undefined;
      try {
        out = transform(chunk);
      } catch (err) {
        source.destroy(err as Error);
        return;
      }
      if (clientGone || out === undefined || out.length === 0) return;
      coalesceWrites(res);
      if (!res.write(out)) {
        source.pause();
        res.once("drain", onDrain);
      }
    };
    const onEnd = () => {
      let tail: Buffer | undefined;
      try {
        tail = atEnd();
      } catch {
        tail = undefined;
      }
      if (!clientGone) {
        // Corked until the journal has the call (res.end uncorks fully): what came in this turn
        // and the end still leave in one write.
        res.socket?.cork();
        lastBytes(() => res.end(tail && tail.length > 0 ? tail : undefined));
      }
      settle(clientGone ? "client_gone" : "whole");
    };
    // The upstream broke off, or the gateway stopped reading after the client left (or it closed without
    // ending): the client's answer ends here, the call is still recorded.
    const onBroken = () => {
      if (clientGone) return settle("cut");
      res.destroy();
      settle("upstream_broke");
    };
    source.on("data", onData);
    source.once("end", onEnd);
    source.once("error", onBroken);
    source.once("close", onBroken);
    // A client that left while the upstream was still to answer (its head not yet come, a large
    // answer being held) closed the response before this listener: its 'close' will not come again,
    // and a write to it would wait for a 'drain' that never comes, the call never recorded.
    if (res.destroyed) onClose();
    else res.on("close", onClose);
    source.resume();
    // Corked only now, after resume() queued the reading of what has come already: the head, that
    // data and an end that came with it (its 'end' is queued by that reading) leave in one write.
    coalesceWrites(res);
    if (flushHead && !clientGone) res.flushHeaders();
  });
}

/**
 * Keeps the client's socket corked while the work already queued behind the current callback
 * runs (two rounds of process.nextTick), so what is written meanwhile leaves in one system call:
 * our head with the chunks that came with the upstream's, a last chunk with the terminator
 * `res.end` writes when the upstream's end came with it (a stream emits 'end' a tick after its
 * last data; `end` uncorks at once). Each write on loopback costs the reader's TCP work too.
 * Nothing waits for I/O or a timer: the socket is uncorked before the event loop turns, so every
 * chunk leaves in the turn it came.
 */
function coalesceWrites(res: ServerResponse): void {
  const socket = res.socket;
  // Already corked: by us earlier in this turn, or by node's own write, which uncorks on the next tick.
  if (!socket || socket.writableCorked > 0) return;
  socket.cork();
  process.nextTick(() => process.nextTick(() => socket.uncork()));
}

/** An error the gateway itself answers, in the provider's own shape. */
export function sendProviderError(
  res: ServerResponse,
  call: Pick<Call, "provider" | "id"> & Partial<Pick<Call, "replyId">>,
  status: number,
  code: string,
  message: string,
  details?: Record<string, unknown>,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(call.provider.error(status, code, message, details));
  // The gateway's own 4xx (a bad key, a limit, a body too large) is not fixed by sending it again.
  const all = status >= 400 && status < 500 ? { "x-should-retry": "false", ...headers } : headers;
  const own = call.provider.errorHeaders?.(status, all) ?? all;
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...(call.replyId ? { "x-request-id": call.replyId } : {}),
    "x-tollgate-request-id": call.id,
    ...own,
  });
  res.end(body);
}

export const newCallId = () => randomUUID();
