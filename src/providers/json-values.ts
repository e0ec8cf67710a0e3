import { MAX_LINE } from "./batch.ts";

/*
 * Picks values out of one JSON document as it streams past, without parsing or holding the rest:
 * a done Gemini batch answers its poll with every inline response in one JSON object, tens of
 * megabytes at most, and only the responses matter. Targets are paths of object keys, `*` for any
 * array element (`/response/inlinedResponses/inlinedResponses/*`). Each object, array or string
 * found at a target is handed over as its JSON text; one longer than MAX_LINE comes as its first
 * HEAD characters, `whole` false, and memory stays at one value.
 */

const HEAD = 4096;

/**
 * One value found: the target it matched (its place in the list), its text, its index in its array
 * (0 when not in one), and the index in every array on its path, outermost first (for a response
 * in a listing's `operations`: the operation's index, then the response's).
 */
export type ValueReader = (target: number, text: string, index: number, whole: boolean, indices: readonly number[]) => void;

interface Frame {
  array: boolean;
  /** Its path, while it can still lead to a target; undefined below that. */
  path: string | undefined;
  /** The key being read or whose value is being read (objects). */
  key: string | undefined;
  expectKey: boolean;
  /** The element being read (arrays). */
  index: number;
}

interface Capture {
  target: number;
  index: number;
  indices: number[];
  /** How many frames are open outside the value: it ends when that many are again. */
  depth: number;
  string: boolean;
  parts: string[];
  length: number;
  head: string | undefined;
  /** Where the value starts in the text being scanned now. */
  from: number;
}

/** What ends or escapes inside a string. */
const STRING_STOP = /["\\]/g;
const QUOTE = 34;
const BACKSLASH = 92;

/** A scanner of one JSON document: `push` its text in order, as it arrives. */
export function jsonValues(targets: readonly string[], read: ValueReader): { push(text: string): void } {
  const frames: Frame[] = [];
  let inString = false;
  let escaped = false;
  let readingKey = false;
  let key = "";
  let capture: Capture | undefined;

  const leads = (path: string) => targets.some((t) => t === path || t.startsWith(`${path}/`));
  /** The path of a value starting now, where it can matter; undefined otherwise. */
  const pathHere = (): string | undefined => {
    const parent = frames.at(-1);
    if (!parent) return "";
    if (parent.path === undefined) return undefined;
    const path = parent.array ? `${parent.path}/*` : parent.key === undefined ? undefined : `${parent.path}/${parent.key}`;
    return path !== undefined && leads(path) ? path : undefined;
  };
  const begin = (path: string | undefined, at: number, string: boolean) => {
    if (capture || path === undefined) return;
    const target = targets.indexOf(path);
    if (target === -1) return;
    const parent = frames.at(-1);
    const indices = frames.filter((f) => f.array).map((f) => f.index);
    capture = { target, index: parent?.array ? parent.index : 0, indices, depth: frames.length, string, parts: [], length: 0, head: undefined, from: at };
  };
  /** Keeps what the capture has in `text` up to `end`, or only its head once it is too long. */
  const keep = (text: string, end: number) => {
    if (!capture) return;
    const piece = text.slice(capture.from, end);
    capture.from = 0;
    if (capture.head !== undefined) return;
    capture.parts.push(piece);
    capture.length += piece.length;
    if (capture.length > MAX_LINE) {
      capture.head = capture.parts.join("").slice(0, HEAD);
      capture.parts = [];
    }
  };
  const end = (text: string, at: number) => {
    keep(text, at + 1);
    const done = capture!;
    capture = undefined;
    read(done.target, done.head ?? done.parts.join(""), done.index, done.head === undefined, done.indices);
  };

  return {
    push(text) {
      for (let i = 0; i < text.length; i++) {
        if (inString) {
          if (escaped) {
            escaped = false;
            if (readingKey && key.length <= 256) key += text[i];
            continue;
          }
          // A value's string (most of the bytes: the responses' text) is skipped to its next quote or escape at native speed.
          if (!readingKey) {
            STRING_STOP.lastIndex = i;
            const stop = STRING_STOP.exec(text);
            if (stop === null) break;
            i = stop.index;
          }
          const c = text.charCodeAt(i);
          if (c === QUOTE) {
            inString = false;
            if (readingKey) {
              frames.at(-1)!.key = key;
              readingKey = false;
            } else if (capture?.string && capture.depth === frames.length) end(text, i);
            continue;
          }
          if (c === BACKSLASH) escaped = true;
          if (readingKey && key.length <= 256) key += text[i];
          continue;
        }
        switch (text[i]) {
          case '"': {
            inString = true;
            const top = frames.at(-1);
            readingKey = top !== undefined && !top.array && top.expectKey;
            if (readingKey) {
              key = "";
              top!.expectKey = false;
            } else begin(pathHere(), i, true);
            break;
          }
          case "{":
          case "[": {
            const path = pathHere();
            begin(path, i, false);
            frames.push({ array: text[i] === "[", path, key: undefined, expectKey: text[i] === "{", index: 0 });
            break;
          }
          case "}":
          case "]":
            frames.pop();
            if (capture && !capture.string && capture.depth === frames.length) end(text, i);
            break;
          case ",": {
            const top = frames.at(-1);
            if (top?.array) top.index++;
            else if (top) {
              top.expectKey = true;
              top.key = undefined;
            }
            break;
          }
        }
      }
      keep(text, text.length);
    },
  };
}
