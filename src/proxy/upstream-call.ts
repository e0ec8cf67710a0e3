import { createRequire } from "node:module";
import type { Dispatcher } from "undici";

/*
 * One call upstream through the pool. undici's `request` wraps every answer's body in a Readable
 * stream; an answer the proxy holds whole anyway (a JSON answer of a known length under the hold
 * limit, where its cost goes in a header) is instead gathered straight from the connection's
 * chunks, with no stream, its listeners or their ticks in between (bench/RESULTS.md, the proxy's
 * CPU profile against the floor's). Any other answer (a stream, one of unknown length, one too big
 * to hold) is handed, from its head on, to undici's own request handler and comes as `request`
 * gives it: a Readable.
 */

const require = createRequire(import.meta.url);
/** undici's handler interface as `request`'s own handler implements it (the one undici 7 still takes). */
interface Handler {
  onConnect(abort: (err?: Error) => void, context?: object): void;
  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(trailers: string[] | null): void;
  onError(err: Error): void;
}
const { RequestHandler } = require("undici/lib/api/api-request.js") as {
  RequestHandler: new (opts: Dispatcher.RequestOptions, callback: (err: Error | null, data: Dispatcher.ResponseData) => void) => Handler;
};
const { parseHeaders } = require("undici/lib/core/util.js") as { parseHeaders: (raw: Buffer[]) => Dispatcher.ResponseData["headers"] };

/** An answer read whole as it came; `bytes` is undefined when it broke off before its end. */
export interface HeldAnswer {
  statusCode: number;
  headers: Dispatcher.ResponseData["headers"];
  bytes: Buffer | undefined;
}

export type UpstreamAnswer = Dispatcher.ResponseData | HeldAnswer;

export const isHeld = (answer: UpstreamAnswer): answer is HeldAnswer => !("body" in answer);

/** Whether an answer with these headers is held whole: asked once its head has come. */
export type Holdable = (headers: Dispatcher.ResponseData["headers"]) => boolean;

/**
 * Sends the request; resolves with the answer once its head has come (a stream) or once all of it
 * has (held), rejects when no answer came (unreachable, a timeout before the head), as `request`.
 */
export function callUpstream(dispatcher: Dispatcher, opts: Dispatcher.RequestOptions, holdable: Holdable, limit: number): Promise<UpstreamAnswer> {
  return new Promise((resolve, reject) => {
    dispatcher.dispatch(opts, new UpstreamCall(opts, holdable, limit, resolve, reject) as Dispatcher.DispatchHandler);
  });
}

class UpstreamCall implements Handler {
  private readonly inner: Handler;
  private held: { statusCode: number; headers: Dispatcher.ResponseData["headers"]; chunks: Buffer[]; size: number } | undefined;

  constructor(
    opts: Dispatcher.RequestOptions,
    private readonly holdable: Holdable,
    private readonly limit: number,
    private readonly resolve: (answer: UpstreamAnswer) => void,
    reject: (err: Error) => void,
  ) {
    this.inner = new RequestHandler(opts, (err, data) => (err ? reject(err) : resolve(data)));
  }

  onConnect(abort: (err?: Error) => void, context?: object): void {
    this.inner.onConnect(abort, context);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // Informational answers (1xx) come before the real one: undici's handler passes them by.
    if (statusCode >= 200) {
      const headers = parseHeaders(rawHeaders);
      if (Number(headers["content-length"]) <= this.limit && this.holdable(headers)) {
        this.held = { statusCode, headers, chunks: [], size: 0 };
        return true;
      }
    }
    return this.inner.onHeaders(statusCode, rawHeaders, resume, statusText);
  }

  onData(chunk: Buffer): boolean {
    if (!this.held) return this.inner.onData(chunk);
    this.held.chunks.push(chunk);
    this.held.size += chunk.length;
    return true;
  }

  onComplete(trailers: string[] | null): void {
    const held = this.held;
    if (!held) return this.inner.onComplete(trailers);
    const bytes = held.chunks.length === 1 ? held.chunks[0]! : Buffer.concat(held.chunks, held.size);
    this.resolve({ statusCode: held.statusCode, headers: held.headers, bytes });
  }

  onError(err: Error): void {
    const held = this.held;
    if (!held) return this.inner.onError(err);
    this.resolve({ statusCode: held.statusCode, headers: held.headers, bytes: undefined });
  }
}
