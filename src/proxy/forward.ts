import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { type Readable, pipeline } from "node:stream";
import { brotliDecompressSync, createBrotliDecompress, createGunzip, createInflate, gunzipSync, inflateSync } from "node:zlib";
import type { Dispatcher } from "undici";
import type { Built, EventBuilder } from "../ledger/build-event.ts";
import { type Attribution, type UsageEvent, ZERO_TOKENS } from "../ledger/event.ts";
import { picoToDecimalString } from "../pricing/money.ts";
import type { CallUsage, Provider, RequestFacts } from "../providers/types.ts";
import { ATTRIBUTION_HEADERS } from "./attribution.ts";
import type { Upstream } from "./router.ts";

/** Headers that describe one connection, not the message: never passed through (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length"]);
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
}

export interface ForwardOptions {
  upstream: Upstream;
  /** The provider key to authorise with (stored, from the environment, or the client's own); undefined when none is configured. */
  credential: string | undefined;
  /** The provider's own settings, for its `authorize`. */
  settings: unknown;
  builder: EventBuilder;
  /** Takes the call's built event (or why it could not be built): settles its hold and hands it to the ledger. */
  record: (built: Built) => void;
  onDisconnect: "drain" | "cancel";
  drainTimeoutMs: number;
  /** Shared count of answers still being read after their client left, bounded by maxDrains. */
  drains: { active: number; max: number };
  upstreamTimeoutMs: number;
}

/** Headers for the upstream, before the provider authorises them: the client's, minus hop-by-hop, its credentials and our own. */
export function upstreamHeaders(headers: IncomingHttpHeaders, provider: Provider, body: Buffer | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const drop = new Set([...provider.credentialHeaders, ...ATTRIBUTION_HEADERS]);
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || drop.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  if (body) out["content-length"] = String(body.length);
  return out;
}

function clientHeaders(headers: Dispatcher.ResponseData["headers"], without: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || without.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

function decompressor(encoding: string | undefined) {
  if (encoding === "gzip" || encoding === "x-gzip") return createGunzip();
  if (encoding === "deflate") return createInflate();
  if (encoding === "br") return createBrotliDecompress();
  return undefined;
}

function decompressSync(encoding: string | undefined, bytes: Buffer): Buffer {
  if (encoding === "gzip" || encoding === "x-gzip") return gunzipSync(bytes);
  if (encoding === "deflate") return inflateSync(bytes);
  if (encoding === "br") return brotliDecompressSync(bytes);
  return bytes;
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
    id: call.id,
    ts: call.startedAt,
    provider: call.provider.name,
    model: outcome.model ?? usage?.model ?? call.facts.model ?? "",
    tokens: usage?.tokens ?? ZERO_TOKENS,
    service_tier: usage?.service_tier ?? "standard",
    reported_cost: null,
    latency_ms: Math.round(performance.now() - call.started),
    status,
    ...call.attribution,
    request_id: upstreamRequestId ?? usage?.request_id ?? null,
    ...(!usage && answerCode !== undefined && answerCode < 400 ? { usage_unknown: true } : {}),
  };
}

/** What an answer without readable usage reports. */
const NO_USAGE: CallUsage = { usage: undefined, model: undefined };

/** Builds the call's event, once, and hands it on. */
function recordCall(opts: ForwardOptions, ...seen: Parameters<typeof callEvent>): void {
  opts.record(opts.builder.build(callEvent(...seen)));
}

const upstreamRequestId = (headers: Dispatcher.ResponseData["headers"]) => {
  const id = headers["x-request-id"] ?? headers["request-id"] ?? headers["x-amzn-requestid"];
  return typeof id === "string" ? id.slice(0, 200) : undefined;
};

/** Sends a call upstream and its answer back, recording it once the answer is over. */
export async function forward(call: Call, req: IncomingMessage, res: ServerResponse, body: Buffer | undefined, query: string, opts: ForwardOptions): Promise<void> {
  const sent = call.facts.rewritten ?? body;
  const path = opts.upstream.basePath + call.path + query;
  const method = req.method ?? "GET";
  const headers = upstreamHeaders(req.headers, call.provider, sent);
  const authorization = await call.provider.authorize({ method, url: new URL(path, opts.upstream.origin), headers, body: sent }, opts.credential, opts.settings);
  if (authorization === undefined)
    return sendProviderError(res, call, 503, "provider_not_configured", `no ${call.provider.name} API key is configured on the gateway`);
  let answer: Dispatcher.ResponseData;
  try {
    answer = await opts.upstream.dispatcher.request({
      path,
      method: method as Dispatcher.HttpMethod,
      headers: { ...headers, ...authorization },
      body: sent,
      headersTimeout: opts.upstreamTimeoutMs,
      bodyTimeout: opts.upstreamTimeoutMs,
    });
  } catch (err) {
    const timedOut = (err as { code?: string }).code === "UND_ERR_HEADERS_TIMEOUT";
    const status = timedOut ? 504 : 502;
    sendProviderError(res, call, status, timedOut ? "upstream_timeout" : "upstream_unreachable", timedOut ? "the provider did not answer in time" : "the provider could not be reached");
    recordCall(opts, call, NO_USAGE, "error", undefined);
    return;
  }
  const requestId = upstreamRequestId(answer.headers);
  const contentType = String(answer.headers["content-type"] ?? "");
  if (call.provider.isStream(contentType)) return relayStream(call, res, answer, requestId, opts);
  if (contentType.includes("json")) return relayJson(call, res, answer, requestId, opts);
  res.writeHead(answer.statusCode, { ...clientHeaders(answer.headers, []), "x-tollgate-request-id": call.id });
  const delivery = await pump(answer.body, res, (chunk) => chunk, opts, () => undefined);
  recordCall(opts, call, NO_USAGE, statusOf(answer.statusCode, delivery), requestId, answer.statusCode);
}

/** How a relayed answer ended: sent whole, cut short by the client leaving, or broken off by the upstream. */
type Delivery = "whole" | "client_gone" | "upstream_broke";

function statusOf(code: number, delivery: Delivery): UsageEvent["status"] {
  if (delivery === "client_gone") return "aborted";
  return code < 400 && delivery === "whole" ? "ok" : "error";
}

/** A whole JSON answer: held (up to a limit) so its cost can ride in a header, then sent as it came. */
async function relayJson(call: Call, res: ServerResponse, answer: Dispatcher.ResponseData, requestId: string | undefined, opts: ForwardOptions): Promise<void> {
  const chunks: Buffer[] = [];
  let size = 0;
  const iterator = answer.body[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      chunks.push(next.value as Buffer);
      size += (next.value as Buffer).length;
      if (size > HOLD_LIMIT) break;
    }
  } catch {
    sendProviderError(res, call, 502, "upstream_interrupted", "the provider's answer broke off");
    recordCall(opts, call, NO_USAGE, "error", requestId, answer.statusCode);
    return;
  }
  const headers: Record<string, string | string[]> = { ...clientHeaders(answer.headers, []), "x-tollgate-request-id": call.id };
  if (size > HOLD_LIMIT) {
    // Too big to hold: stream it on, without a cost header and without usage.
    res.writeHead(answer.statusCode, headers);
    for (const chunk of chunks) res.write(chunk);
    const delivery = await pump(answer.body, res, (chunk) => chunk, opts, () => undefined);
    recordCall(opts, call, NO_USAGE, statusOf(answer.statusCode, delivery), requestId, answer.statusCode);
    return;
  }
  const bytes = Buffer.concat(chunks);
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
  }
  // A client that left before its answer came is still charged the provider's usage, as `aborted`.
  const status = res.destroyed ? "aborted" : answer.statusCode < 400 ? "ok" : "error";
  const built = opts.builder.build(callEvent(call, outcome, status, requestId, answer.statusCode));
  if (answer.statusCode < 400 && built.ok && built.event.priced && outcome.usage) headers["x-tollgate-cost-usd"] = picoToDecimalString(built.event.cost);
  headers["content-length"] = String(bytes.length);
  res.writeHead(answer.statusCode, headers);
  res.end(bytes);
  opts.record(built);
}

/**
 * A stream: bytes go to the client as they arrive while the provider's tap reads them for usage
 * (and, when the gateway itself asked for usage, leaves out what the client did not ask for).
 * Compressed streams are decompressed: the tap reads plain bytes, and streams are never compressed by us.
 */
async function relayStream(call: Call, res: ServerResponse, answer: Dispatcher.ResponseData, requestId: string | undefined, opts: ForwardOptions): Promise<void> {
  const encoding = answer.headers["content-encoding"] as string | undefined;
  const inflate = decompressor(encoding);
  // pipeline, not pipe: an upstream that breaks off must fail the decompressor too, and a cancelled
  // decompressor must close the upstream body (and with it the upstream request).
  const source: Readable = inflate ? pipeline(answer.body, inflate, () => {}) : answer.body;
  const injected = call.facts.rewritten !== undefined && call.facts.stream;
  const tap = call.provider.tap(call.path, injected);
  res.writeHead(answer.statusCode, { ...clientHeaders(answer.headers, ["content-encoding"]), "x-tollgate-request-id": call.id, "cache-control": "no-cache" });
  res.flushHeaders();
  const delivery = await pump(source, res, (chunk) => tap.push(chunk), opts, () => tap.end());
  recordCall(opts, call, tap.result(), statusOf(answer.statusCode, delivery), requestId, answer.statusCode);
}

/**
 * Copies upstream chunks to the client with backpressure both ways. If the client goes away, the
 * answer is either read on to its end for its usage (drain, bounded in time and in how many run at
 * once) or cut off (cancel). Says whether the client got the whole answer, left first, or the
 * upstream broke off (an error, a timeout) and the client's answer was cut short.
 */
async function pump(
  source: Readable,
  res: ServerResponse,
  transform: (chunk: Buffer) => Buffer | undefined,
  opts: ForwardOptions,
  atEnd: () => Buffer | undefined,
): Promise<Delivery> {
  let clientGone = false;
  let upstreamBroke = false;
  let draining = false;
  let drainTimer: NodeJS.Timeout | undefined;
  const onClose = () => {
    if (res.writableFinished) return;
    clientGone = true;
    if (opts.onDisconnect === "drain" && opts.drains.active < opts.drains.max) {
      draining = true;
      opts.drains.active++;
      drainTimer = setTimeout(() => source.destroy(), opts.drainTimeoutMs);
    } else source.destroy();
  };
  res.on("close", onClose);
  try {
    for await (const chunk of source) {
      const out = transform(chunk as Buffer);
      if (clientGone || out === undefined || out.length === 0) continue;
      if (!res.write(out)) await new Promise<void>((resolve) => {
        const done = () => {
          res.off("drain", done);
          res.off("close", done);
          resolve();
        };
        res.on("drain", done);
        res.on("close", done);
      });
    }
    const tail = atEnd();
    if (!clientGone) res.end(tail && tail.length > 0 ? tail : undefined);
  } catch {
    // The upstream broke off or was cut: the client's answer ends here, the call is still recorded.
    if (!clientGone) {
      upstreamBroke = true;
      res.destroy();
    }
  } finally {
    res.off("close", onClose);
    clearTimeout(drainTimer);
    if (draining) opts.drains.active--;
  }
  return clientGone ? "client_gone" : upstreamBroke ? "upstream_broke" : "whole";
}

/** An error the gateway itself answers, in the provider's own shape. */
export function sendProviderError(res: ServerResponse, call: Pick<Call, "provider" | "id">, status: number, code: string, message: string, details?: Record<string, unknown>, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(call.provider.error(status, code, message, details));
  // The gateway's own 4xx (a bad key, a limit, a body too large) is not fixed by sending it again.
  const all = status >= 400 && status < 500 ? { "x-should-retry": "false", ...headers } : headers;
  const own = call.provider.errorHeaders?.(status, all) ?? all;
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-tollgate-request-id": call.id, ...own });
  res.end(body);
}

export const newCallId = () => randomUUID();
