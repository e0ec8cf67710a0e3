import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MAX_LINE } from "../src/providers/batch.ts";
import { jsonValues } from "../src/providers/json-values.ts";

/*
 * The streaming picker a Gemini batch poll is read with: whatever the chunking, it finds exactly the
 * values at its targets (and none that only look like them inside strings or deeper down), and of a
 * value too long to hold it keeps only the head.
 */

const document = {
  name: "batches/x",
  metadata: {
    model: "models/gemini-2.5-flash",
    note: 'a "response": {"inlinedResponses": [1, 2]} inside a string, with \\ and \u00e9 and 🙂',
    output: { inlinedResponses: { inlinedResponses: [{ response: { text: "}]{[" }, metadata: { key: 'k"1' } }, { error: { code: 3 } }] } },
  },
  done: true,
  "we\"ird": { inlinedResponses: { inlinedResponses: [{ decoy: true }] } },
  response: { inlinedResponses: { inlinedResponses: [{ response: { nested: [[], {}, "x"] } }, [], "text", 7, null] } },
};
const TARGETS = ["/response/inlinedResponses/inlinedResponses/*", "/metadata/output/inlinedResponses/inlinedResponses/*", "/metadata/model"];

function pick(text: string, size: number): [number, unknown, number, boolean][] {
  const found: [number, unknown, number, boolean][] = [];
  const scanner = jsonValues(TARGETS, (target, value, index, whole) => found.push([target, whole ? JSON.parse(value) : value.length, index, whole]));
  for (let at = 0; at < text.length; at += size) scanner.push(text.slice(at, at + size));
  return found;
}

describe("jsonValues", () => {
  test("finds exactly the values at its targets, however the document is cut", () => {
    const text = JSON.stringify(document, null, 1);
    const expected = [
      [2, "models/gemini-2.5-flash", 0, true],
      [1, document.metadata.output.inlinedResponses.inlinedResponses[0], 0, true],
      [1, document.metadata.output.inlinedResponses.inlinedResponses[1], 1, true],
      [0, document.response.inlinedResponses.inlinedResponses[0], 0, true],
      [0, [], 1, true],
      [0, "text", 2, true],
    ];
    for (let size = 1; size <= text.length; size++) assert.deepEqual(pick(text, size), expected, `in chunks of ${size}`);
  });

  test("keeps only the head of a value too long to hold", () => {
    const big = { response: { inlinedResponses: { inlinedResponses: [{ response: { text: "y".repeat(MAX_LINE + 100_000) } }, { response: {} }] } } };
    assert.deepEqual(pick(JSON.stringify(big), 65_536), [
      [0, 4096, 0, false],
      [0, { response: {} }, 1, true],
    ]);
  });
});
