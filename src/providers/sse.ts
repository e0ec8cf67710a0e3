import { StringDecoder } from "node:string_decoder";
import type { CallUsage, StreamTap } from "./types.ts";

/** One server-sent event: its `event:` name (if any) and its data lines joined by "\n". */
export interface SseEvent {
  event: string | undefined;
  data: string;
}

/**
 * Incremental server-sent-events reader: feed it chunks as they arrive, split anywhere, and it
 * hands back each whole event once its blank line has been seen. It also keeps the raw text of
 * each event so a caller can forward, or leave out, exactly the bytes the upstream sent.
 */
export class SseReader {
  /**
   * Text of an event not yet ended, in the pieces it came in: joined only once its blank line
   * comes, so a large event (a whole response in its last event) arriving in many chunks is copied
   * once, not once per chunk.
   */
  private held: string[] = [];
  private heldChars = 0;
  /** The held text's last 3 characters: a blank line ending in the next chunk may begin in them. */
  private heldEnd = "";

  /** `maxEventChars`: the most of one unfinished event held; see spill(). */
  constructor(private readonly maxEventChars = MAX_EVENT_CHARS) {}

  /** No part of an event is waiting for the rest of it. */
  get empty(): boolean {
    return this.held.length === 0;
  }

  /** The events completed by this chunk, each with its raw text (blank line included). */
  push(chunk: string): { event: SseEvent; raw: string }[] {
    // The held text has no blank line, so the first one can begin at most 3 characters before the
    // chunk ("\r\n\r" + "\n"): it is looked for there, without joining what is held.
    const seam = this.heldEnd + chunk;
    BLANK_LINE.lastIndex = 0;
    const first = BLANK_LINE.exec(seam);
    if (!first) {
      if (chunk !== "") this.hold(chunk);
      return [];
    }
    const text = this.take() + chunk;
    const out: { event: SseEvent; raw: string }[] = [];
    // Read on from each event's end rather than cutting the text after each: a chunk often holds
    // many events, and a long stream has one per token.
    let start = 0;
    let at = text.length - seam.length + first.index;
    let length = first[0].length;
    for (;;) {
      const end = at + length;
      const event = parseEvent(text.slice(start, at));
      out.push({ event: event ?? { event: undefined, data: "" }, raw: text.slice(start, end) });
      start = end;
      BLANK_LINE.lastIndex = end;
      const next = BLANK_LINE.exec(text);
      if (!next) break;
      at = next.index;
      length = next[0].length;
    }
    if (start < text.length) this.hold(text.slice(start));
    return out;
  }

  /** Whatever is left after the stream ended without a final blank line. */
  rest(): { event: SseEvent; raw: string } | undefined {
    const raw = this.take();
    if (raw.trim() === "") return undefined;
    const event = parseEvent(raw);
    return event ? { event, raw } : undefined;
  }

  /**
   * The unfinished event's text when it has grown past maxEventChars, taken out of the reader;
   * undefined while it is within. An upstream that never ends an event must not grow the gateway's
   * memory without end: the caller stops reading the stream there.
   */
  spill(): string | undefined {
    return this.heldChars > this.maxEventChars ? this.take() : undefined;
  }

  private hold(text: string): void {
    this.held.push(text);
    this.heldChars += text.length;
    this.heldEnd = text.length >= 3 ? text.slice(-3) : (this.heldEnd + text).slice(-3);
  }

  /** The held text, whole; nothing is held after. */
  private take(): string {
    if (this.held.length === 0) return "";
    const text = this.held.length === 1 ? this.held[0]! : this.held.join("");
    this.held = [];
    this.heldChars = 0;
    this.heldEnd = "";
    return text;
  }
}

/**
 * The most of one event read whole, in characters: far past any event a provider documents (a
 * Responses API `response.completed` carries the whole response; an image's is a few MB of base64),
 * as Bedrock's reader allows 16 MB per message.
 */
const MAX_EVENT_CHARS = 16 * 1024 * 1024;

/** The blank line that ends an event, in any of the line endings the format allows. */
const BLANK_LINE = /\r?\n\r?\n/g;

function parseEvent(block: string): SseEvent | undefined {
  // Nearly every event is one `data:` line: read without splitting it into lines.
  if (block.startsWith("data:") && !block.includes("\n") && !block.includes("\r")) return { event: undefined, data: block.slice(block.charCodeAt(5) === 32 ? 6 : 5) };
  let name: string | undefined;
  const data: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  }
  if (name === undefined && data.length === 0) return undefined;
  return { event: name, data: data.join("\n") };
}

/** Whether a content type is a server-sent-events stream. */
export const isEventStream = (contentType: string): boolean => contentType.includes("text/event-stream");

/** A stream tap that sees whole server-sent events: each once, in order, and says whether the client gets it. */
export interface SseTap {
  onEvent(event: SseEvent): "forward" | "drop";
  result(): CallUsage;
}

/**
 * A byte-level StreamTap over an event-level one. Unless `filtering`, every chunk goes on exactly as
 * it came and the events are only read; when filtering, events are forwarded one by one so the
 * ones the tap drops can be left out. An event that grows past what the reader holds
 * (`maxEventChars`) ends the reading: it and the rest of the stream go on unread, and the result is
 * marked `partial` (the call is then estimated from what was read and relayed).
 */
export function sseStreamTap(tap: SseTap, filtering: boolean, maxEventChars?: number): StreamTap {
  const reader = new SseReader(maxEventChars);
  const decoder = new StringDecoder("utf8");
  /** The bytes so far ended where an event did: nothing is held, in the reader or the decoder. */
  let atBoundary = true;
  /** The stream is no longer read. Filtering, its text still passes the decoder, which holds a character cut between chunks. */
  let unread = false;
  const bytesOf = (decoded: string) => (decoded === "" ? undefined : Buffer.from(decoded));
  return {
    push(chunk) {
      if (unread) return filtering ? bytesOf(decoder.write(chunk)) : chunk;
      const startsAtBoundary = atBoundary;
      const events = reader.push(decoder.write(chunk));
      const spilled = reader.spill();
      if (spilled !== undefined) unread = true;
      // A last byte of "\n" leaves no character half-decoded; an empty reader, no event half-read.
      atBoundary = reader.empty && chunk[chunk.length - 1] === 0x0a;
      if (!filtering) {
        for (const { event } of events) tap.onEvent(event);
        return chunk;
      }
      const kept: string[] = [];
      for (const { event, raw } of events) if (tap.onEvent(event) === "forward") kept.push(raw);
      if (spilled !== undefined) return bytesOf(kept.join("") + spilled);
      // Whole events, all kept (as every chunk but the one with the usage is): the chunk as it came, not re-encoded.
      if (kept.length === events.length && startsAtBoundary && atBoundary) return kept.length > 0 ? chunk : undefined;
      return bytesOf(kept.join(""));
    },
    end() {
      const last = reader.rest();
      if (!last) return undefined;
      const keep = tap.onEvent(last.event) === "forward";
      // Without filtering the raw bytes already went out; only re-sent events need writing here.
      return filtering && keep ? Buffer.from(last.raw) : undefined;
    },
    result: () => (unread ? { ...tap.result(), partial: true } : tap.result()),
  };
}
