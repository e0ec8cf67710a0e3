import { createRequire } from "node:module";
import type { EventStreamCodec, Message } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";

/*
 * AWS event streams (`application/vnd.amazon.eventstream`): binary messages, each a prelude
 * (total length, headers length, CRC32), headers, a payload and a CRC32 of the whole. Bedrock's
 * streams name each event in the `:event-type` header and put its JSON in the payload. The gateway
 * forwards the bytes exactly as they come; this reader only looks at them on the side.
 */

let codec: EventStreamCodec | undefined;

/**
 * The codec, made at the first Bedrock stream: @smithy's codec and what it loads hold ~1 MB of heap
 * (measured) that a gateway whose calls never stream from Bedrock would keep for nothing.
 */
function theCodec(): EventStreamCodec {
  if (!codec) {
    const { EventStreamCodec } = createRequire(import.meta.url)("@smithy/eventstream-codec") as typeof import("@smithy/eventstream-codec");
    codec = new EventStreamCodec(toUtf8, fromUtf8);
  }
  return codec;
}

/** Prelude and trailing CRC: the smallest message there is. */
const OVERHEAD = 16;
/** The event-stream specification's limit on one message. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** One event: its type (`:event-type`, or `:exception-type` for an error) and its payload as text. */
export interface StreamEvent {
  /** `event`, `exception` or `error`, from `:message-type`. */
  kind: string;
  type: string | undefined;
  payload: string;
}

const header = (message: Message, name: string): string | undefined => {
  const value = message.headers[name];
  return value?.type === "string" ? value.value : undefined;
};

function toEvent(message: Message): StreamEvent {
  const kind = header(message, ":message-type") ?? "event";
  const type = kind === "exception" ? header(message, ":exception-type") : kind === "error" ? header(message, ":error-code") : header(message, ":event-type");
  return { kind, type, payload: toUtf8(message.body) };
}

/**
 * Splits a byte stream into whole messages whatever the chunking, checking each message's CRCs.
 * A stream that breaks the framing (a bad checksum, an impossible length) stops being read: its
 * bytes still reach the client, whose SDK reports the damage; the call is estimated as one cut short.
 */
export class EventStreamReader {
  /**
   * Bytes not yet read, in the pieces they came in: joined once a message's length has arrived, not
   * at every chunk, so a large message in many chunks is copied once (joining at every chunk was
   * quadratic in its size).
   */
  private parts: Buffer[] = [];
  private size = 0;
  private broken = false;

  /** Reading stopped at a message that broke the framing; what followed was not read. */
  get stopped(): boolean {
    return this.broken;
  }

  /** The events this chunk completes, in order. */
  push(chunk: Uint8Array): StreamEvent[] {
    if (this.broken) return [];
    this.parts.push(Buffer.from(chunk));
    this.size += chunk.length;
    const events: StreamEvent[] = [];
    while (this.size >= 4) {
      const length = this.prelude().readUInt32BE(0);
      if (length < OVERHEAD || length > MAX_MESSAGE_BYTES) return this.fail(events);
      if (this.size < length) break;
      const pending = this.joined();
      try {
        events.push(toEvent(theCodec().decode(pending.subarray(0, length))));
      } catch {
        return this.fail(events);
      }
      this.parts = pending.length > length ? [pending.subarray(length)] : [];
      this.size -= length;
    }
    return events;
  }

  /** The first piece, holding at least the 4 bytes of the next message's length. */
  private prelude(): Buffer {
    if (this.parts[0]!.length < 4) this.parts = [this.joined()];
    return this.parts[0]!;
  }

  private joined(): Buffer {
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
  }

  private fail(events: StreamEvent[]): StreamEvent[] {
    this.broken = true;
    this.parts = [];
    this.size = 0;
    return events;
  }
}
