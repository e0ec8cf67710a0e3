import { StringDecoder } from "node:string_decoder";
import { ZERO_TOKENS } from "../ledger/event.ts";
import type { CallUsage } from "../providers/types.ts";
import { SseReader } from "../providers/sse.ts";
import { isRecord } from "../providers/usage.ts";
import { loadTokenCounter } from "./tokenizer.ts";

/*
 * The gateway's own count of a streamed call's tokens, for a stream whose usage never came (the
 * client left and the gateway stopped reading: drain slots full, drain timeout, `cancel` mode; or
 * the upstream broke off). Such a call is settled at this estimate, marked `estimated`, never at $0.
 *
 * Text is counted with gpt-tokenizer (OpenAI's o200k_base encoding): exact for current OpenAI
 * models, an approximation for Claude and Gemini, whose tokenizers are not published for Node.
 * Bytes/4 is used instead where the tokenizer is not: until it has loaded (it loads in the
 * background at a process's first estimate, so no record waits for it), text beyond
 * TOKENIZED_CHARS, text the tokenizer refuses, and streams that are not server-sent events
 * (Bedrock's binary event stream, counted by its bytes, which over-counts its framing).
 */

/** Characters handed to the tokenizer per estimate; the rest is counted at 4 characters a token. */
const TOKENIZED_CHARS = 1_000_000;
/** Stream bytes kept to read the answer's text from; beyond them, the text is scaled by the bytes that followed. */
const HELD_BYTES = 64 * 1024;

/** Request fields that are not text the model reads (ids, switches, binary data). */
const NOT_TEXT = new Set(["model", "role", "type", "stream", "user", "id", "tool_call_id", "mime_type", "mimeType", "data", "encoding_format", "service_tier", "store"]);
/** Answer fields that carry generated text, in any provider's stream events. */
const GENERATED = new Set(["content", "text", "delta", "partial_json", "thinking", "arguments", "reasoning_content", "refusal"]);
/** Stream events that repeat text already sent as deltas (Responses API `*.done`, terminal events). */
const REPEATS = /(\.done|^response\.(created|in_progress|completed|incomplete|failed)|^message_start)$/;

// Loaded at the first estimate, not at start-up: its tables take about 35 MB resident and seconds
// to load on a busy machine, which a gateway whose streams all finish never needs.
let tokenizer: ((text: string) => number) | undefined;
let loading: Promise<void> | undefined;
const loadTokenizer = () =>
  (loading ??= loadTokenCounter().then(
    (counter) => void (tokenizer = counter),
    () => undefined,
  ));

/** Tokens in `text`: the tokenizer's count, or bytes/4 beyond its share, where it refuses, or before it has loaded. */
function count(text: string): number {
  if (text === "") return 0;
  const quarter = (t: string) => Math.ceil(Buffer.byteLength(t) / 4);
  if (!tokenizer) {
    void loadTokenizer();
    return quarter(text);
  }
  try {
    return tokenizer(text.slice(0, TOKENIZED_CHARS)) + quarter(text.slice(TOKENIZED_CHARS));
  } catch {
    return quarter(text);
  }
}

/** Loads the tokenizer now (tests, and a caller that wants the next estimate tokenized). */
export const tokenizerReady = (): Promise<void> => loadTokenizer();

/** String leaves of a JSON value, those under `skip` keys left out; data URLs (images) are not text. */
function strings(value: unknown, keep: (key: string) => boolean, out: string[], key = ""): void {
  if (typeof value === "string") {
    if (keep(key) && !value.startsWith("data:")) out.push(value);
  } else if (Array.isArray(value)) for (const item of value) strings(item, keep, out, key);
  else if (isRecord(value)) for (const [k, v] of Object.entries(value)) strings(v, keep, out, k);
}

/** Input tokens of a request body (its text fields), or bytes/4 of a body that is not JSON. */
export function estimateInput(body: Buffer | undefined): number {
  if (!body || body.length === 0) return 0;
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    return Math.ceil(body.length / 4);
  }
  const texts: string[] = [];
  strings(json, (key) => !NOT_TEXT.has(key), texts);
  return count(texts.join("\n"));
}

/** Reads what a stream relayed, cheaply: its first bytes are kept, the rest only counted. */
export class StreamMeter {
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  private total = 0;

  constructor(private readonly sse: boolean) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.heldBytes >= HELD_BYTES) return;
    this.held.push(chunk);
    this.heldBytes += chunk.length;
  }

  /**
   * Output tokens in what was relayed: the generated text of the events seen, scaled to every byte
   * read. When most of the bytes held are one event not yet ended (an event larger than what is
   * held), no text can be picked out of them, and the stream counts at bytes/4, as one that is not
   * server-sent events does.
   */
  outputTokens(): number {
    if (this.total === 0) return 0;
    if (!this.sse) return Math.ceil(this.total / 4);
    const reader = new SseReader();
    const decoder = new StringDecoder("utf8");
    const texts: string[] = [];
    const heldText = decoder.write(Buffer.concat(this.held));
    const events = reader.push(heldText);
    const readChars = events.reduce((sum, { raw }) => sum + raw.length, 0);
    if (heldText.length - readChars > readChars) return Math.ceil(this.total / 4);
    for (const { event } of events) {
      let json: unknown;
      try {
        json = JSON.parse(event.data);
      } catch {
        continue;
      }
      const type = event.event ?? (isRecord(json) && typeof json.type === "string" ? json.type : "");
      if (!REPEATS.test(type)) strings(json, (key) => GENERATED.has(key), texts);
    }
    const tokens = count(texts.join(""));
    return this.total > this.heldBytes ? Math.ceil((tokens * this.total) / this.heldBytes) : tokens;
  }
}

/**
 * What a stream answer is recorded with. Usage it reported whole stands. Without usage, or cut
 * short (`cut`), it is estimated: input from the request unless the stream reported it (Anthropic
 * does at the start, exactly), output from what was relayed where that is more than was reported
 * (Anthropic reports output only at the end; OpenAI chat reports nothing until then).
 */
export function streamUsage(seen: CallUsage, cut: boolean, request: Buffer | undefined, meter: StreamMeter): CallUsage {
  if (seen.usage && !cut) return seen;
  const reported = seen.usage?.tokens;
  const input = reported ? reported.input : estimateInput(request);
  const output = Math.max(reported?.output ?? 0, meter.outputTokens());
  if (reported && output === reported.output) return seen;
  const tokens = { ...(reported ?? ZERO_TOKENS), input, output };
  return { ...seen, usage: { ...seen.usage, tokens }, estimated: true };
}
