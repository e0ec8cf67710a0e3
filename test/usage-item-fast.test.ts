import assert from "node:assert/strict";
import { test } from "node:test";
import { Tokens } from "../src/ledger/event.ts";
import { fastTokens, fastUsageItem } from "../src/ingest/usage-item-fast.ts";
import { UsageItem } from "../src/ingest/usage-item.ts";
import { random } from "./helpers/random.ts";

/*
 * The fast path against the schema it stands in for: on many generated items, valid and broken in
 * every field, whatever the fast path accepts the schema accepts, with the same value.
 */

const text = (n: number) => "x".repeat(n);
const counts = [0, 1, 999, 100_000_000, 100_000_001, -1, 1.5, "10", null, Number.MAX_SAFE_INTEGER, -0];
const labels = ["search", "  padded  ", "", "   ", text(200), text(201), ` ${text(200)} `, 5, null, "a\u0000b", "é"];
/** Values each field may take, good and bad. */
const FIELDS: Record<string, unknown[]> = {
  id: ["e-1", "", text(200), text(201), 7, null],
  timestamp: ["2026-12-05T10:00:00Z", "2026-12-05T10:00:00.123+02:00", "2026-02-30T10:00:00Z", "2026-12-05 10:00:00Z", "2026-12-05T10:00:00", "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2026-12-05T24:00:00Z", 0, ""],
  provider: ["openai", "", text(100), text(101), 3],
  model: ["gpt-4o", "", text(200), text(201), null],
  input_tokens: counts,
  cached_input_tokens: counts,
  cache_write_tokens: counts,
  cache_write_1h_tokens: counts,
  output_tokens: counts,
  reasoning_tokens: counts,
  usage: [{ prompt_tokens: 1 }, "x"],
  service_tier: ["standard", "batch", "flex", "priority", "turbo", ""],
  cost_usd: [0, 0.025, 1_000_000, 1_000_001, -1, "0.025", "9300000", "1e-7", "-1", ".5", "1.", ""],
  latency_ms: [0, 250, 86_400_000, 86_400_001, -1, 2.5, "5"],
  status: ["ok", "error", "aborted", "OK"],
  team: labels,
  project: labels,
  feature: labels,
  user: labels,
  session: labels,
  tags: [{}, { env: "prod" }, { "": "x" }, { [text(100)]: text(500) }, { [text(101)]: "x" }, { k: text(501) }, { k: 1 }, JSON.parse('{"__proto__":"x"}'), [], null, "x"],
  request_id: ["req-1", "", text(200), text(201), 1],
  extra: ["unknown key"],
};
const OPTIONAL = Object.keys(FIELDS).filter((k) => k !== "id" && k !== "model");
const pick = <T>(r: () => number, list: readonly T[]) => list[Math.floor(r() * list.length)]!;

function generate(r: () => number): Record<string, unknown> {
  const item: Record<string, unknown> = {};
  // Mostly good values, so both sides of every field are reached often.
  const good = (k: string) => (r() < 0.8 ? FIELDS[k]![0] : pick(r, FIELDS[k]!));
  if (r() < 0.97) item.id = good("id");
  if (r() < 0.97) item.model = good("model");
  for (const k of OPTIONAL) if (r() < (k === "usage" || k === "extra" ? 0.03 : 0.3)) item[k] = k.endsWith("_tokens") && r() < 0.5 ? Math.floor(r() * 5000) : good(k);
  return item;
}

test("whatever the fast path accepts, UsageItem accepts with the same value", () => {
  const r = random(20261205);
  let fast = 0;
  let schemaOnly = 0;
  for (let i = 0; i < 30_000; i++) {
    const item = generate(r);
    const mine = fastUsageItem(item);
    const theirs = UsageItem.safeParse(item);
    if (mine !== undefined) {
      fast++;
      assert.ok(theirs.success, `the schema refuses what the fast path took: ${JSON.stringify(item)}`);
      assert.deepStrictEqual(mine, theirs.data, JSON.stringify(item));
    } else if (theirs.success) schemaOnly++;
  }
  // The fast path must carry the common case, or it is no fast path.
  assert.ok(fast > 5_000, `fast path took ${fast} of 30,000`);
  assert.ok(schemaOnly < fast / 4, `the schema alone took ${schemaOnly}`);
});

test("fastTokens answers as Tokens.parse wherever it answers, and defers every refusal", () => {
  const r = random(7);
  for (let i = 0; i < 30_000; i++) {
    const c = Object.fromEntries(["input", "cached_input", "cache_write", "cache_write_1h", "output", "reasoning"].flatMap((k) => (r() < 0.7 ? [[k, Math.floor(r() * 50)]] : [])));
    const mine = fastTokens(c);
    const theirs = Tokens.safeParse(c);
    if (mine) assert.deepStrictEqual(mine, theirs.success ? theirs.data : "refused", JSON.stringify(c));
    else assert.ok(!theirs.success, JSON.stringify(c));
  }
});
