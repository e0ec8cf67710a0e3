import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type RollupRow, type RollupSource, rollupRows } from "../src/ledger/rollup-delta.ts";

/**
 * rollupRows finds an event's rollup rows by walking maps per key part. Held here to the plain
 * definition of the grains: every event's key per grain as one string, its sums added row by row.
 */

/** Deterministic pseudo-random numbers, so a failure can be replayed. */
function lcg(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    return s / 2_147_483_648;
  };
}

const DAY = 86_400_000;
/** Events around month, day and hour edges (UTC), with absent, empty and present attribution. */
function events(count: number, seed: number): RollupSource[] {
  const r = lcg(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const edges = [Date.UTC(2025, 0, 31, 23), Date.UTC(2025, 1, 28, 23), Date.UTC(2024, 11, 31, 23), Date.UTC(99, 5, 30, 23)];
  return Array.from({ length: count }, () => ({
    ts: new Date(pick(edges) + Math.floor(r() * 3) * 3_600_000 + Math.floor(r() * 3_600_000) - (r() < 0.1 ? DAY : 0)),
    provider: pick(["openai", "anthropic"]),
    model: pick(["m-a", "m-b"]),
    tokens: { input: Math.floor(r() * 5000), cached_input: Math.floor(r() * 10), cache_write: 0, output: Math.floor(r() * 700), reasoning: Math.floor(r() * 3) },
    cost: BigInt(Math.floor(r() * 1e9)) * 1_000_000n,
    priced: r() < 0.9,
    status: r() < 0.1 ? "error" : "ok",
    team: pick([null, "", "t1", "t2"]),
    project: pick([null, "p1"]),
    feature: pick([null, "f1", "f2"]),
    user: pick([null, "", "u1", "u2", "u3"]),
    api_key_id: pick([null, "k1"]),
  }));
}

/** The four keys of an event, one per grain, as the grains are defined (absent attribution is ''). */
function keysOf(e: RollupSource): string[] {
  const ms = e.ts.getTime();
  const hour = Math.floor(ms / 3_600_000) * 3_600_000;
  const day = Math.floor(ms / DAY) * DAY;
  const d = new Date(ms);
  const month = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  // Date.UTC reads years 0-99 as 1900-1999; set the year back for those.
  const monthStart = new Date(month);
  monthStart.setUTCFullYear(d.getUTCFullYear());
  const attribution = [e.team ?? "", e.project ?? "", e.feature ?? "", e.provider, e.model, e.api_key_id ?? ""].join("|");
  return [`hour ${hour} ${attribution}`, `day ${day} ${attribution}`, `user-day ${day} ${attribution} ${e.user ?? ""}`, `user-month ${monthStart.getTime()} ${e.user ?? ""}`];
}

const keyOfRow = (row: RollupRow) =>
  row.grain === "user-month"
    ? `user-month ${row.bucket} ${row.user}`
    : `${row.grain} ${row.bucket} ${[row.team, row.project, row.feature, row.provider, row.model, row.api_key_id].join("|")}${row.grain === "user-day" ? ` ${row.user}` : ""}`;

describe("rollupRows", () => {
  for (const sign of [1, -1] as const)
    test(`each event in its four rows, each row the sum of its events (sign ${sign})`, () => {
      for (const seed of [1, 2, 3]) {
        const sources = events(400, seed);
        const rows = rollupRows(sources, sign);
        // Every row's key is distinct: one row per key.
        assert.equal(new Set(rows.map(keyOfRow)).size, rows.length);
        const expected = new Map<string, { requests: number; errors: number; unpriced: number; input: number; output: number; reasoning: number; cached: number; cost: bigint }>();
        sources.forEach((e) => {
          const keys = keysOf(e);
          for (let g = 0; g < 4; g++) {
            const sum = expected.get(keys[g]!) ?? { requests: 0, errors: 0, unpriced: 0, input: 0, output: 0, reasoning: 0, cached: 0, cost: 0n };
            sum.requests += sign;
            sum.errors += e.status === "ok" ? 0 : sign;
            sum.unpriced += e.priced ? 0 : sign;
            sum.input += sign * e.tokens.input;
            sum.cached += sign * e.tokens.cached_input;
            sum.output += sign * e.tokens.output;
            sum.reasoning += sign * e.tokens.reasoning;
            sum.cost += BigInt(sign) * e.cost;
            expected.set(keys[g]!, sum);
          }
        });
        assert.equal(rows.length, expected.size);
        for (const row of rows) {
          const sum = expected.get(keyOfRow(row))!;
          assert.deepEqual(
            [row.requests, row.errors, row.unpriced, row.input_tokens, row.cached_input_tokens, row.output_tokens, row.reasoning_tokens, row.cost],
            [sum.requests, sum.errors, sum.unpriced, sum.input, sum.cached, sum.output, sum.reasoning, sum.cost],
          );
        }
      }
    });
});
