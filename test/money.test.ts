import assert from "node:assert/strict";
import { test } from "node:test";
import { decimalUsdToPico, formatUsd, PICO_PER_USD, picoToDecimalString } from "../src/pricing/money.ts";

test("picoToDecimalString writes exact USD with no trailing zeros", () => {
  assert.equal(picoToDecimalString(25_000_000_000n), "0.025");
  assert.equal(picoToDecimalString(0n), "0");
  assert.equal(picoToDecimalString(1n), "0.000000000001");
  assert.equal(picoToDecimalString(1234n * PICO_PER_USD), "1234");
  assert.equal(picoToDecimalString(-1_500_000_000_000n), "-1.5");
  assert.equal(picoToDecimalString(123_456_789_012_345_678_901n), "123456789.012345678901");
});

test("decimalUsdToPico parses exact decimals and returns an Error value otherwise", () => {
  assert.equal(decimalUsdToPico("0.025"), 25_000_000_000n);
  assert.equal(decimalUsdToPico("0"), 0n);
  assert.equal(decimalUsdToPico("-3"), -3_000_000_000_000n);
  assert.equal(decimalUsdToPico("0.000000000001"), 1n);
  assert.equal(decimalUsdToPico("12.500000000000000"), 12_500_000_000_000n, "trailing zeros past 12 places are still exact");
  // String(number) gives exponent form for small numbers; it is still an exact decimal.
  assert.equal(decimalUsdToPico(String(0.0000001)), 100_000n);
  for (const bad of ["0.0000000000001", "abc", "", "1,000", "1.", ".5", "NaN", "Infinity"]) {
    const result = decimalUsdToPico(bad);
    assert.ok(result instanceof Error, `${JSON.stringify(bad)} should be rejected`);
  }
  for (const pico of [0n, 1n, 25_000_000_000n, -987_654_321_000n, 10n ** 20n + 7n])
    assert.equal(decimalUsdToPico(picoToDecimalString(pico)), pico, "round trip");
});

test("formatUsd groups thousands and rounds half away from zero", () => {
  assert.equal(formatUsd(1_234_567_000_000_000n), "$1,234.57");
  assert.equal(formatUsd(1_000_000n * PICO_PER_USD), "$1,000,000.00");
  assert.equal(formatUsd(0n), "$0.00");
  assert.equal(formatUsd(5_000_000_000n), "$0.01", "half a cent rounds up");
  assert.equal(formatUsd(-5_000_000_000n), "-$0.01", "and away from zero when negative");
  assert.equal(formatUsd(4_999_999_999n), "$0.00");
  assert.equal(formatUsd(-1n), "$0.00", "no negative zero");
  assert.equal(formatUsd(-1_234_567_000_000_000n), "-$1,234.57");
  assert.equal(formatUsd(1_500_000_000_000n, 0), "$2");
  assert.equal(formatUsd(25_000_000_000n, 4), "$0.0250");
  assert.equal(formatUsd(1n, 12), "$0.000000000001");
  assert.throws(() => formatUsd(1n, 13), RangeError);
});
