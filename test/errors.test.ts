import assert from "node:assert/strict";
import { test } from "node:test";
import { ERROR_KINDS } from "../src/errors.ts";

test("every error kind has its own stable code and an HTTP error status", () => {
  const entries = Object.entries(ERROR_KINDS);
  const codes = entries.map(([, e]) => e.code);
  assert.equal(new Set(codes).size, codes.length, `codes are told apart: ${codes.join(", ")}`);
  for (const [kind, e] of entries) {
    assert.ok(e.status >= 400 && e.status <= 599, `${kind}: ${e.status}`);
    assert.match(e.code, /^[a-z][a-z_]*$/, kind);
  }
});
