import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MAX_LINE, jsonlTap } from "../src/providers/batch.ts";

/*
 * The tap batch results files are read with (Anthropic's results, Gemini's responses files): the
 * file reaches the client byte for byte, every non-blank line is read once with its index however
 * the file is cut (a character split across chunks included), and of a line too long to hold only
 * its head is kept.
 */

function readAll(file: Buffer, size: number) {
  const lines: [string | number, number, boolean][] = [];
  const tap = jsonlTap((line, index, whole) => {
    lines.push([whole ? line : line.length, index, whole]);
    return { usage: undefined, model: undefined, key: `k${index}` };
  });
  const relayed: Buffer[] = [];
  for (let at = 0; at < file.length; at += size) relayed.push(tap.push(file.subarray(at, at + size))!);
  tap.end();
  return { lines, relayed: Buffer.concat(relayed), keys: tap.result().results?.map((r) => r.key) };
}

describe("jsonlTap", () => {
  test("reads every non-blank line once, in order, however the file is cut", () => {
    const file = Buffer.from('{"a":"é🙂"}\n\n{"b":2}\r\n   \n{"c":3}');
    for (let size = 1; size <= file.length; size++) {
      const { lines, relayed, keys } = readAll(file, size);
      assert.deepEqual(lines, [['{"a":"é🙂"}', 0, true], ['{"b":2}\r', 1, true], ['{"c":3}', 2, true]], `in chunks of ${size}`);
      assert.ok(relayed.equals(file));
      assert.deepEqual(keys, ["k0", "k1", "k2"]);
    }
  });

  test("hands over a line too long to hold as its head, and goes on after it", () => {
    const file = Buffer.from(`{"x":"${"y".repeat(MAX_LINE + 100_000)}"}\n{"after":1}\n`);
    assert.deepEqual(readAll(file, 65_536).lines, [[4096, 0, false], ['{"after":1}', 1, true]]);
  });
});
