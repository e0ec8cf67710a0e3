import { StringDecoder } from "node:string_decoder";
import type { CallUsage, StreamTap } from "./types.ts";

/*
 * What the providers' batch readers share. A batch request's usage is recorded under its own ledger
 * id (`batch:...`), at the batch tier, so that reading the batch again finds it recorded already.
 *
 * A batch's results file is read as it is relayed: JSONL, one result a line. The file passes to the
 * client unchanged; each line is handed to the provider's reader, which says what that result
 * bills. The file is never held whole: memory is one line, and of a line longer than MAX_LINE
 * (checked as chunks arrive, so at most one chunk more is ever held) only its head is kept, for the
 * reader to tell what it was.
 */

/**
 * A batch request's usage under its ledger id `key`, at the batch tier. Usage that could not be
 * read stays undefined: the proxy records the request as unpriced (never as $0), still at the
 * batch tier, so that the row says what it was.
 */
export function batchResult(seen: CallUsage, key: string): CallUsage {
  return { usage: seen.usage && { ...seen.usage, service_tier: "batch" }, model: seen.model, key, tier: "batch" };
}

/** Longest line read for usage; a response's JSON is far below it, and longer ones are not held. */
export const MAX_LINE = 4 * 1024 * 1024;

/** What is kept of a line too long to read: enough to tell what kind of line it was. */
const HEAD = 4096;

/**
 * Reads one result line, `index` counting the file's non-blank lines from 0; returns what the
 * result bills, or undefined when it bills nothing. A line too long to read comes as its first
 * HEAD characters, `whole` false.
 */
export type LineReader = (line: string, index: number, whole: boolean) => CallUsage | undefined;

/** Reads a JSONL file as it passes, unchanged, and reports the usage of each line `read` bills. */
export function jsonlTap(read: LineReader): StreamTap {
  const decoder = new StringDecoder("utf8");
  const results: CallUsage[] = [];
  let line = "";
  /** The head of the line being skipped, while one is. */
  let skipped: string | undefined;
  let index = 0;
  const finish = (text: string, whole: boolean) => {
    if (whole && text.trim() === "") return;
    const seen = read(text, index++, whole);
    if (seen) results.push(seen);
  };
  const take = (text: string) => {
    let start = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
      if (skipped === undefined) finish(line + text.slice(start, nl), true);
      else finish(skipped, false);
      line = "";
      skipped = undefined;
      start = nl + 1;
    }
    if (skipped !== undefined) return;
    line += text.slice(start);
    if (line.length > MAX_LINE) {
      skipped = line.slice(0, HEAD);
      line = "";
    }
  };
  return {
    push(chunk) {
      take(decoder.write(chunk));
      return chunk;
    },
    end() {
      take(`${decoder.end()}\n`);
      return undefined;
    },
    result: () => ({ usage: undefined, model: undefined, results }),
  };
}
