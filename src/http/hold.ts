import type { Readable } from "node:stream";

/*
 * Holding a body in memory up to a limit, for the proxy: a request before it goes upstream, an
 * answer so its cost can ride in a header. Read by events rather than async iteration (cheaper on
 * the hot path); reading pauses just past the limit, so at most one chunk over it is held.
 */

/** A body's first bytes, up to just past `limit`; `whole` when that was all of it. */
export interface Held {
  chunks: Buffer[];
  size: number;
  whole: boolean;
}

/** Reads a body up to its end or just past `limit`, whichever comes first; rejects if it breaks off. */
export function holdBody(body: Readable, limit: number): Promise<Held> {
  return new Promise((resolve, reject) => {
    const held: Held = { chunks: [], size: 0, whole: false };
    const off = () => {
      body.off("data", onData);
      body.off("end", onEnd);
      body.off("error", onBroken);
      body.off("close", onBroken);
    };
    const onData = (chunk: Buffer) => {
      held.chunks.push(chunk);
      held.size += chunk.length;
      if (held.size <= limit) return;
      body.pause();
      off();
      resolve(held);
    };
    const onEnd = () => {
      off();
      held.whole = true;
      resolve(held);
    };
    const onBroken = (err?: Error) => {
      off();
      reject(err ?? new Error("the body closed before its end"));
    };
    body.on("data", onData);
    body.once("end", onEnd);
    body.once("error", onBroken);
    body.once("close", onBroken);
  });
}

/** The held bytes as one buffer (the one chunk itself when there is only one). */
export const joined = (held: Held): Buffer => (held.chunks.length === 1 ? held.chunks[0]! : Buffer.concat(held.chunks, held.size));
