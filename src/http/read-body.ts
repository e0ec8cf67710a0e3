import type { IncomingMessage } from "node:http";
import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";
import type { Failure } from "../errors.ts";

/**
 * Bytes held for requests whose sender is not yet known, summed over every connection. A body
 * signed rather than sent with a key must be read before it can be checked; without a shared
 * bound, a hundred anonymous slow bodies of 5 MB each held hundreds of megabytes (issue 14).
 */
export class ByteBudget {
  private used = 0;
  constructor(readonly limit: number) {}

  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }

  get held(): number {
    return this.used;
  }
}

export type BodyFailure = Failure<"too_large" | "unsupported_media_type" | "invalid" | "unavailable"> | { ok: false; kind: "aborted"; message: string };

export interface ReadBody {
  ok: true;
  body: Buffer;
  /** Gives what the body holds of the budget back; call it once the sender is known (or refused). */
  release(): void;
}

const DECODERS: Readonly<Record<string, (b: Buffer, opts: { maxOutputLength: number }) => Buffer>> = {
  gzip: gunzipSync,
  "x-gzip": gunzipSync,
  deflate: inflateSync,
  br: brotliDecompressSync,
};

const tooLarge = (limit: number): BodyFailure => ({ ok: false, kind: "too_large", message: `the body is over the ${limit / 1024 / 1024} MB limit` });
const busy: BodyFailure = {
  ok: false,
  kind: "unavailable",
  message: "too many unauthenticated bodies are being read at once; send again shortly, or authenticate with an ingest key in the Authorization header",
};

/**
 * Reads a request body into memory, at most `limit` bytes before and after decompression
 * (gzip, deflate or br, as exporters and webhooks send them). With a `budget`, every byte is
 * first taken from it: a body that does not fit is refused as soon as it stops fitting, and its
 * bytes are let go at once.
 */
export function readBody(req: IncomingMessage, opts: { limit: number; budget?: ByteBudget }): Promise<ReadBody | BodyFailure> {
  const { limit, budget } = opts;
  const encoding = (req.headers["content-encoding"] ?? "identity").trim().toLowerCase();
  const decode = DECODERS[encoding];
  if (!decode && encoding !== "identity")
    return Promise.resolve({ ok: false, kind: "unsupported_media_type", message: `content-encoding must be gzip, deflate, br or identity, not "${encoding}"` });
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > limit) return Promise.resolve(tooLarge(limit));
  if (budget && declared > budget.limit - budget.held) return Promise.resolve(busy);

  let taken = 0;
  const release = () => {
    budget?.give(taken);
    taken = 0;
  };
  return new Promise((resolve) => {
    let chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (result: ReadBody | BodyFailure) => {
      if (settled) return;
      settled = true;
      req.off("data", onData).off("end", onEnd).off("error", onGone).off("close", onGone);
      if (!result.ok) {
        chunks = [];
        release();
        // Not read any further: the rest is discarded, not held.
        req.resume();
      }
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return finish(tooLarge(limit));
      if (budget) {
        if (!budget.take(chunk.length)) return finish(busy);
        taken += chunk.length;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      const raw = Buffer.concat(chunks, size);
      chunks = [];
      if (!decode) return finish({ ok: true, body: raw, release });
      let body: Buffer;
      try {
        body = decode(raw, { maxOutputLength: limit });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        return finish(code === "ERR_BUFFER_TOO_LARGE" ? tooLarge(limit) : { ok: false, kind: "invalid", message: `the body is not valid ${encoding}` });
      }
      if (budget) {
        if (!budget.take(body.length)) return finish(busy);
        taken += body.length;
      }
      finish({ ok: true, body, release });
    };
    const onGone = () => finish({ ok: false, kind: "aborted", message: "the client went away before its body arrived" });
    req.on("data", onData).on("end", onEnd).on("error", onGone).on("close", onGone);
  });
}
