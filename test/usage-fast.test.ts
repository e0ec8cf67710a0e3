import assert from "node:assert/strict";
import { test } from "node:test";
import type { z } from "zod";
import { ANTHROPIC_CHECKED, anthropicUsage } from "../src/providers/anthropic/usage.ts";
import { OPENAI_CHECKED, openAIUsage } from "../src/providers/openai/usage.ts";
import { type Checked, NormalisedUsage, fastNormalised } from "../src/providers/usage.ts";
import { random } from "./helpers/random.ts";

/*
 * The hand checks in front of the usage schemas, against those schemas: on many generated values,
 * valid and broken in every field, whatever a check accepts its schema accepts and gives back
 * equal, and whatever fastNormalised answers is what NormalisedUsage makes of the same candidate.
 */

const pick = <T>(r: () => number, list: readonly T[]) => list[Math.floor(r() * list.length)]!;
/** Mostly a good count, else any value from the list (good or bad). */
const count = (r: () => number, max = 3000) => (r() < 0.8 ? Math.floor(r() * max) : pick(r, counts));

const counts = [0, 1, 1200, 100_000_000, 100_000_001, -1, 1.5, "10", null, undefined, Number.NaN, Number.POSITIVE_INFINITY, -0, true];
const texts = ["gpt-4o", "claude-sonnet-4-5", "", "x".repeat(200), "x".repeat(201), null, undefined, 5, {}];
const weird = ["x", 3, [], [1], true, Object.create(null) as object, new Date(0)];
const detail = (keys: string[]) => (r: () => number): unknown => {
  if (r() < 0.2) return pick(r, [null, undefined, ...weird]);
  const o: Record<string, unknown> = {};
  for (const k of keys) if (r() < 0.7) o[k] = r() < 0.6 ? Math.floor(r() * 3000) : pick(r, counts);
  if (r() < 0.2) o.audio_tokens = pick(r, counts);
  return o;
};

/** Field generators per checked schema; any other key may appear too. */
const FIELDS: Record<string, Record<string, (r: () => number) => unknown>> = {
  ChatUsage: {
    prompt_tokens: (r) => (r() < 0.8 ? Math.floor(r() * 5000) : pick(r, counts)),
    completion_tokens: (r) => count(r),
    total_tokens: (r) => count(r),
    prompt_tokens_details: detail(["cached_tokens", "cache_write_tokens"]),
    completion_tokens_details: detail(["reasoning_tokens"]),
    prompt_cache_hit_tokens: (r) => count(r),
    cost: (r) => pick(r, [0, 0.00015, 1e-7, -1, "0.1", null, undefined, Number.NaN, Number.POSITIVE_INFINITY]),
  },
  ResponsesUsage: {
    input_tokens: (r) => (r() < 0.8 ? Math.floor(r() * 5000) : pick(r, counts)),
    output_tokens: (r) => count(r),
    total_tokens: (r) => count(r),
    input_tokens_details: detail(["cached_tokens", "cache_write_tokens"]),
    output_tokens_details: detail(["reasoning_tokens"]),
    cost: (r) => pick(r, [0, 0.25, -1, null, undefined]),
  },
  Envelope: {
    model: (r) => pick(r, texts),
    service_tier: (r) => pick(r, ["default", "flex", "priority", "", null, undefined, 7]),
    modelVersion: (r) => pick(r, texts),
  },
  AnthropicUsage: {
    input_tokens: (r) => (r() < 0.8 ? Math.floor(r() * 5000) : pick(r, counts)),
    output_tokens: (r) => count(r),
    cache_read_input_tokens: (r) => count(r),
    // Small values, so the split often adds up to the total and often does not.
    cache_creation_input_tokens: (r) => (r() < 0.7 ? Math.floor(r() * 3) : pick(r, counts)),
    cache_creation: (r) => {
      if (r() < 0.2) return pick(r, [null, undefined, ...weird]);
      const o: Record<string, unknown> = {};
      if (r() < 0.8) o.ephemeral_5m_input_tokens = r() < 0.8 ? Math.floor(r() * 2) : pick(r, counts);
      if (r() < 0.8) o.ephemeral_1h_input_tokens = r() < 0.8 ? Math.floor(r() * 2) : pick(r, counts);
      return o;
    },
    service_tier: (r) => pick(r, ["standard", "priority", "batch", "", null, undefined, 1]),
  },
};

function generate(r: () => number, fields: Record<string, (r: () => number) => unknown>): unknown {
  if (r() < 0.03) return pick(r, [null, undefined, ...weird]);
  const value: Record<string, unknown> = {};
  for (const [k, make] of Object.entries(fields)) if (r() < 0.85) value[k] = make(r);
  if (r() < 0.1) value.extra = { nested: [1, 2] };
  return value;
}

const CHECKED: [string, Checked<z.ZodType>][] = [
  ...Object.entries(OPENAI_CHECKED).map(([name, c]) => [`openai ${name}`, c] as [string, Checked<z.ZodType>]),
  ...Object.entries(ANTHROPIC_CHECKED).map(([name, c]) => [`anthropic ${name}`, c] as [string, Checked<z.ZodType>]),
];

for (const [name, check] of CHECKED) {
  test(`${name}: whatever the hand check accepts, the schema accepts and gives back equal`, () => {
    const r = random(20261206);
    const fields = FIELDS[name.split(" ")[1]!]!;
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const value = generate(r, fields);
      if (!check.accepts(value)) continue;
      accepted++;
      const parsed = check.schema.safeParse(value);
      assert.ok(parsed.success, `the schema refuses what the check took: ${JSON.stringify(value)}`);
      assert.deepStrictEqual(parsed.data, value, JSON.stringify(value));
    }
    // The check must carry the common case, or it is no fast path.
    assert.ok(accepted > 1_000, `the check took ${accepted} of 20,000`);
  });
}

test("fastNormalised answers what NormalisedUsage makes of the same candidate", () => {
  const r = random(7);
  let fast = 0;
  for (let i = 0; i < 30_000; i++) {
    const tokens: Record<string, unknown> = {};
    for (const k of ["input", "cached_input", "cache_write", "cache_write_1h", "output", "reasoning"])
      if (r() < 0.85) tokens[k] = r() < 0.9 ? Math.floor(r() * (k === "input" || k === "output" ? 5000 : 1500)) : pick(r, counts);
    if (r() < 0.05) tokens.extra = 1;
    const candidate: Record<string, unknown> = { tokens: r() < 0.03 ? pick(r, weird) : tokens };
    if (r() < 0.7) candidate.service_tier = pick(r, ["standard", "batch", "flex", "priority", "turbo", undefined]);
    if (r() < 0.7) candidate.model = pick(r, texts);
    if (r() < 0.5) candidate.cost_usd = pick(r, ["0.25", "1", "0.00000015", "1e-7", "-1", ".5", "", undefined, 0.5]);
    if (r() < 0.5) candidate.request_id = pick(r, ["req-1", "", "r".repeat(200), "r".repeat(201), undefined, 3]);
    const mine = fastNormalised(candidate as never);
    const present = Object.fromEntries(Object.entries(candidate).filter(([, v]) => v !== undefined));
    const theirs = NormalisedUsage.safeParse(present);
    if (mine === undefined) continue;
    fast++;
    assert.ok(theirs.success, `the schema refuses what the fast path took: ${JSON.stringify(candidate)}`);
    assert.deepStrictEqual(mine, theirs.data, JSON.stringify(candidate));
  }
  assert.ok(fast > 1_000, `the fast path took ${fast} of 30,000`);
});

test("the extractors read the bench's and the docs' answers through the checks, as before", () => {
  // A realistic answer of each API: the fast path's answer (the checks accept these) is the schema's.
  const chat = {
    model: "gpt-4o-mini-2024-07-18",
    service_tier: "default",
    usage: { prompt_tokens: 1200, completion_tokens: 300, total_tokens: 1500, prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0 } },
  };
  assert.ok(OPENAI_CHECKED.ChatUsage.accepts(chat.usage) && OPENAI_CHECKED.Envelope.accepts(chat));
  assert.deepStrictEqual(openAIUsage.extract(chat), {
    ok: true,
    usage: { tokens: { input: 1200, cached_input: 1024, cache_write: 0, cache_write_1h: 0, output: 300, reasoning: 0 }, service_tier: "standard", model: "gpt-4o-mini-2024-07-18" },
  });
  const message = {
    model: "claude-sonnet-4-5",
    usage: { input_tokens: 10, output_tokens: 20, cache_read_input_tokens: 5, cache_creation_input_tokens: 3, cache_creation: { ephemeral_5m_input_tokens: 1, ephemeral_1h_input_tokens: 2 }, service_tier: "standard" },
  };
  assert.ok(ANTHROPIC_CHECKED.AnthropicUsage.accepts(message.usage));
  assert.deepStrictEqual(anthropicUsage.extract(message), {
    ok: true,
    usage: { tokens: { input: 18, cached_input: 5, cache_write: 3, cache_write_1h: 2, output: 20, reasoning: 0 }, service_tier: "standard", model: "claude-sonnet-4-5" },
  });
  // A split that does not add up is the schema's error, at its path.
  const off = { ...message, usage: { ...message.usage, cache_creation_input_tokens: 4 } };
  assert.ok(!ANTHROPIC_CHECKED.AnthropicUsage.accepts(off.usage));
  const result = anthropicUsage.extract(off);
  assert.ok(!result.ok && result.error.path === "usage.cache_creation");
});
