import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { ServiceTier, Tokens } from "../src/ledger/event.ts";
import {
  applyRatio,
  type PriceCatalog,
  createCatalog,
  loadCatalog,
  parseOverrides,
  priceEvent,
  SERVICE_TIER_MULTIPLIERS,
} from "../src/pricing/index.ts";
import { compileMatch } from "../src/pricing/match.ts";
import { PriceError, toRate } from "../src/pricing/rates.ts";

const catalog = loadCatalog();
const AUG_2025 = new Date("2025-08-15T12:00:00Z");
const USD = 1_000_000_000_000n;
const ZERO: Tokens = { input: 0, cached_input: 0, cache_write: 0, cache_write_1h: 0, output: 0, reasoning: 0 };

function cost(
  provider: string,
  model: string,
  tokens: Partial<Tokens>,
  { tier = "standard", ts = AUG_2025, using = catalog }: { tier?: ServiceTier; ts?: Date; using?: PriceCatalog } = {},
) {
  return priceEvent(using, { provider, model, ts, tokens: { ...ZERO, ...tokens }, service_tier: tier });
}

function tempFile(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "tollgate-prices-")), name);
  writeFileSync(path, text);
  return path;
}

const GPT_4O = { input: 10_000, cached_input: 8_000, output: 1_000 };

test("worked example: gpt-4o, 10,000 prompt tokens of which 8,000 cached, 1,000 output = $0.025", () => {
  // 2,000 × $2.50/M + 8,000 × $1.25/M + 1,000 × $10/M
  assert.deepEqual(cost("openai", "gpt-4o", GPT_4O), { cost: 25_000_000_000n, priced: true });
});

test("worked example: claude-sonnet-4-5 with one-hour cache writes = $0.036", () => {
  // 1,000 uncached × $3/M + 5,000 cache reads × $0.30/M + 4,000 one-hour writes × $6/M + 500 × $15/M
  const tokens = { input: 10_000, cached_input: 5_000, cache_write: 4_000, cache_write_1h: 4_000, output: 500 };
  assert.deepEqual(cost("anthropic", "claude-sonnet-4-5", tokens), { cost: 36_000_000_000n, priced: true });
});

test("worked example: gemini-2.5-pro, 250,000 prompt tokens of which 200,000 cached, 1,000 output = $0.19", () => {
  // Over 200k input the whole request is at the long-context rates:
  // 50,000 × $2.50/M + 200,000 × $0.25/M + 1,000 × $15/M
  const tokens = { input: 250_000, cached_input: 200_000, output: 1_000 };
  assert.deepEqual(cost("gemini", "gemini-2.5-pro", tokens), { cost: 190_000_000_000n, priced: true });
});

test("a long-context tier starts strictly above its threshold of total input tokens", () => {
  assert.equal(cost("google", "gemini-2.5-pro", { input: 200_000 }).cost, 250_000_000_000n); // × $1.25/M
  assert.equal(cost("google", "gemini-2.5-pro", { input: 200_001 }).cost, 500_002_500_000n); // × $2.50/M
  // Cached tokens count toward the threshold and output is repriced too: 1,000 × $15/M, not $10/M.
  assert.equal(
    cost("google", "gemini-2.5-pro", { input: 200_001, cached_input: 200_000, output: 1_000 }).cost,
    1n * 2_500_000n + 200_000n * 250_000n + 1_000n * 15_000_000n,
  );
});

test("batch and flex halve the standard cost; priority doubles it without operator prices", () => {
  assert.equal(cost("openai", "gpt-4o", GPT_4O, { tier: "batch" }).cost, 12_500_000_000n);
  assert.equal(cost("openai", "gpt-4o", GPT_4O, { tier: "flex" }).cost, 12_500_000_000n);
  assert.equal(cost("openai", "gpt-4o", GPT_4O, { tier: "priority" }).cost, 50_000_000_000n);
  assert.deepEqual(SERVICE_TIER_MULTIPLIERS.batch, { num: 1n, den: 2n });
});

test("multipliers round half up to a whole pico-USD", () => {
  assert.equal(applyRatio(3n, { num: 1n, den: 2n }), 2n);
  assert.equal(applyRatio(5n, { num: 1n, den: 2n }), 3n);
  assert.equal(applyRatio(4n, { num: 1n, den: 2n }), 2n);
  assert.equal(applyRatio(10n, { num: 17n, den: 10n }), 17n);
  assert.equal(applyRatio(1n, { num: 1n, den: 3n }), 0n);
  // End to end: one pico-USD per token, three tokens in batch is 1.5 → 2.
  const oddPrices = createCatalog(parseOverrides("- {provider: tiny, model: m, prices: {input_mtok: '0.000001', output_mtok: 0}}", "inline"));
  assert.equal(cost("tiny", "m", { input: 3 }, { tier: "batch", using: oddPrices }).cost, 2n);
});

test("an operator's priority prices replace the multiplier", () => {
  const file = tempFile(
    "prices.yaml",
    ["- provider: openai", "  model: gpt-4o", "  prices:", "    input_mtok: 2.5", "    cache_read_mtok: 1.25", "    output_mtok: 10",
      "    priority: {input_mtok: 4.25, cached_input_mtok: 2.125, output_mtok: 17}"].join("\n"),
  );
  const withPriority = loadCatalog({ overrideFile: file });
  // 2,000 × $4.25/M + 8,000 × $2.125/M + 1,000 × $17/M = $0.0425 (1.7×, not the 2× fallback)
  assert.equal(cost("openai", "gpt-4o", GPT_4O, { tier: "priority", using: withPriority }).cost, 42_500_000_000n);
  assert.equal(cost("openai", "gpt-4o", GPT_4O, { tier: "batch", using: withPriority }).cost, 12_500_000_000n);
});

test("reasoning tokens are output, at the reasoning rate where a model has one", () => {
  // gpt-4o has no reasoning rate: 400 reasoning tokens of 1,000 output cost the same as plain output.
  assert.equal(cost("openai", "gpt-4o", { ...GPT_4O, reasoning: 400 }).cost, 25_000_000_000n);
  // sonar-deep-research: input $2/M, output $8/M, reasoning $3/M.
  // 1,000 × $2/M + 400 × $8/M + 600 × $3/M = $0.002 + $0.0032 + $0.0018
  assert.equal(cost("perplexity", "sonar-deep-research", { input: 1_000, output: 1_000, reasoning: 600 }).cost, 7_000_000_000n);
});

test("the price in force at the event's time: bundled start_date constraint (o3 price cut on 2025-06-10)", () => {
  const million = { input: 1_000_000 };
  assert.equal(cost("openai", "o3", million, { ts: new Date("2025-06-09T23:59:59.999Z") }).cost, 10n * USD);
  assert.equal(cost("openai", "o3", million, { ts: new Date("2025-06-10T00:00:00Z") }).cost, 2n * USD);
});

test("the price in force at the event's time: DeepSeek's daily off-peak window", () => {
  const million = { input: 1_000_000 };
  assert.equal(cost("deepseek", "deepseek-chat", million, { ts: new Date("2025-06-11T10:00:00Z") }).cost, 270_000_000_000n);
  assert.equal(cost("deepseek", "deepseek-chat", million, { ts: new Date("2025-06-11T20:00:00Z") }).cost, 135_000_000_000n);
});

test("a YAML override wins over bundled data from its effective_from on", () => {
  const file = tempFile(
    "prices.yaml",
    `# gpt-4o renegotiated
- provider: openai
  model: gpt-4o
  effective_from: 2026-01-01
  prices: {input_mtok: 2, cached_input_mtok: 0.5, output_mtok: 8}
`,
  );
  const overridden = loadCatalog({ overrideFile: file });
  assert.equal(cost("openai", "gpt-4o", GPT_4O, { ts: new Date("2025-12-31T23:59:59Z"), using: overridden }).cost, 25_000_000_000n);
  // 2,000 × $2/M + 8,000 × $0.50/M + 1,000 × $8/M = $0.016
  assert.equal(cost("openai", "gpt-4o", GPT_4O, { ts: new Date("2026-01-01T00:00:00Z"), using: overridden }).cost, 16_000_000_000n);
  assert.deepEqual(overridden.source.overrides, { file, entries: 1 });
});

test("a JSON override adds a model, with match objects, tiers and successive prices", () => {
  const file = tempFile(
    "prices.json",
    JSON.stringify([
      { provider: "mycorp", model: { regex: "^house-(small|large)$" }, prices: { input_mtok: "0.10", output_mtok: "0.40" } },
      {
        provider: "mycorp",
        model: { regex: "^house-(small|large)$" },
        effective_from: "2025-07-01T00:00:00Z",
        prices: { input_mtok: { base: 0.2, tiers: [{ start: 1000, price: 0.3 }] }, output_mtok: 0.8 },
      },
    ]),
  );
  const custom = loadCatalog({ overrideFile: file });
  assert.equal(cost("mycorp", "House-Large", { input: 1_000, output: 1_000 }, { ts: new Date("2025-06-01"), using: custom }).cost, 500_000_000n);
  assert.equal(cost("mycorp", "house-small", { input: 1_000, output: 1_000 }, { using: custom }).cost, 1_000_000_000n);
  assert.equal(cost("mycorp", "house-small", { input: 1_001, output: 1_000 }, { using: custom }).cost, 1_001n * 300_000n + 800_000_000n);
  assert.equal(cost("mycorp", "house-medium", { input: 1_000 }, { using: custom }).priced, false);
});

test("a bad override file is refused with the file, entry index and field path", () => {
  const file = tempFile(
    "prices.yaml",
    `- provider: openai
  model: gpt-4o
  prices: {input_mtok: 2.5, output_mtok: 10}
- provider: openai
  model: gpt-4o-mini
  prices: {input_mtok: 0.15, ouput_mtok: 0.6}
- provider: openai
  model: gpt-x
  effective_from: next tuesday
  prices: {input_mtok: 0.0000001, output_mtok: 1}
`,
  );
  assert.throws(
    () => loadCatalog({ overrideFile: file }),
    (error: Error) => {
      assert.ok(error.message.includes(file), error.message);
      assert.match(error.message, /entry 1, prices\.output_mtok: required/);
      assert.match(error.message, /entry 1, prices: Unrecognized key: "ouput_mtok"/);
      assert.match(error.message, /entry 2, effective_from: expected an ISO 8601 date/);
      assert.match(error.message, /entry 2, prices\.input_mtok: 1e-7 is not a whole number of pico-USD/);
      return true;
    },
  );
  assert.throws(() => parseOverrides("[{provider: a, model: b", "broken.yaml"), /broken\.yaml is not valid YAML or JSON/);
  assert.throws(() => parseOverrides("provider: a", "map.yaml"), /map\.yaml is invalid:\n {2}top level: expected a list/);
  assert.throws(() => loadCatalog({ overrideFile: "/nonexistent/prices.yaml" }), /cannot read price override file \/nonexistent\/prices\.yaml/);
  assert.deepEqual(parseOverrides("", "empty.yaml"), []);
});

test("an unknown model is unpriced, never a silent $0", () => {
  assert.deepEqual(cost("openai", "gpt-nonexistent-9", GPT_4O), { cost: 0n, priced: false });
  assert.deepEqual(cost("", "totally-unknown-model", GPT_4O), { cost: 0n, priced: false });
  assert.deepEqual(cost("openai", "", GPT_4O), { cost: 0n, priced: false });
  // Bundled entries Tollgate cannot charge exactly are unpriced too, and listed as catalog problems.
  assert.equal(cost("openai", "whisper-1", { input: 1_000 }).priced, false);
  assert.equal(cost("openrouter", "google/gemini-2.5-flash-lite", { input: 1_000 }).priced, false);
  assert.ok(catalog.problems.some((p) => p.provider === "openrouter" && /0\.08333333333333334 is not a whole number/.test(p.reason)));
});

test("provider aliases map to the same prices; an empty or unknown provider searches every provider", () => {
  const gemini = { input: 250_000, cached_input: 200_000, output: 1_000 };
  for (const provider of ["gemini", "google", "vertex_ai", "google-vertex", "GCP.Gemini", "", "some-gateway"])
    assert.equal(cost(provider, "gemini-2.5-pro", gemini).cost, 190_000_000_000n, provider);
  for (const provider of ["xai", "x-ai", "grok"]) assert.equal(cost(provider, "grok-4", { input: 1_000_000 }).cost, 3n * USD, provider);
  for (const provider of ["bedrock", "aws", "aws.bedrock"])
    assert.ok(cost(provider, "anthropic.claude-3-5-sonnet-20240620-v1:0", { input: 1_000 }).priced, provider);
  assert.equal(cost("", "claude-sonnet-4-5", { input: 1_000 }).cost, cost("anthropic", "claude-sonnet-4-5", { input: 1_000 }).cost);
  // Azure has no gpt-4o entry of its own and falls back to OpenAI's, as genai-prices does.
  assert.equal(cost("azure", "gpt-4o", GPT_4O).cost, 25_000_000_000n);
  assert.equal(catalog.lookup("azure", "gpt-4o", AUG_2025)?.provider, "openai");
  // Model ids match case-insensitively, and compact dates are retried hyphenated.
  assert.equal(cost("OpenAI", " GPT-4o ", GPT_4O).cost, 25_000_000_000n);
  assert.equal(cost("openai", "gpt-4o-20240806", GPT_4O).cost, 25_000_000_000n);
});

test("5-minute and 1-hour cache writes are priced differently", () => {
  const writes = { input: 4_000, cache_write: 4_000 };
  assert.equal(cost("anthropic", "claude-sonnet-4-5", writes).cost, 15_000_000_000n); // × $3.75/M
  assert.equal(cost("anthropic", "claude-sonnet-4-5", { ...writes, cache_write_1h: 4_000 }).cost, 24_000_000_000n); // × $6/M
  assert.equal(cost("anthropic", "claude-sonnet-4-5", { ...writes, cache_write_1h: 1_000 }).cost, 3_000n * 3_750_000n + 1_000n * 6_000_000n);
  // claude-2 lists no cache prices: 5-minute writes fall back to input ($8/M), one-hour ones to 2× input.
  assert.equal(cost("anthropic", "claude-2", { input: 1_000, cache_write: 1_000 }).cost, 8_000_000_000n);
  assert.equal(cost("anthropic", "claude-2", { input: 1_000, cache_write: 1_000, cache_write_1h: 1_000 }).cost, 16_000_000_000n);
  // Elsewhere a missing one-hour rate falls back to the cache-write rate.
  const custom = createCatalog(parseOverrides("- {provider: mycorp, model: m, prices: {input_mtok: 1, cache_write_mtok: 1.25, output_mtok: 2}}", "inline"));
  assert.equal(cost("mycorp", "m", { input: 1_000, cache_write: 1_000, cache_write_1h: 1_000 }, { using: custom }).cost, 1_250_000_000n);
});

test("token counts whose parts exceed their wholes are refused, not priced", () => {
  assert.throws(() => cost("openai", "gpt-4o", { input: 10, cached_input: 11 }), RangeError);
  assert.throws(() => cost("openai", "gpt-4o", { output: 10, reasoning: 11 }), RangeError);
});

test("prices convert exactly from their decimal text, and an inexact one is refused", () => {
  assert.equal(toRate(0.075, 6), 75_000n);
  assert.equal(toRate(2.5, 6), 2_500_000n);
  assert.equal(toRate("0.000001", 6), 1n);
  assert.equal(toRate(12, 9), 12_000_000_000n);
  assert.deepEqual(toRate({ base: 3, tiers: [{ start: 200_000, price: 6 }, { start: 100_000, price: 4.5 }] }, 6), {
    base: 3_000_000n,
    tiers: [{ start: 100_000, rate: 4_500_000n }, { start: 200_000, rate: 6_000_000n }],
  });
  assert.throws(() => toRate(0.18000000000000002, 6), PriceError);
  assert.throws(() => toRate(1 / 12, 6), PriceError);
  assert.throws(() => toRate(-1, 6), PriceError);
});

test("model matching follows genai-prices: case-insensitive text tests, regex, and/or", () => {
  const m = compileMatch({ and: [{ starts_with: "Gemini-2.5-pro" }, { regex: "^(?!.*-tts)" }] });
  assert.equal(m("gemini-2.5-pro-preview"), true);
  assert.equal(m("gemini-2.5-pro-preview-tts"), false);
  const n = compileMatch({ or: [{ equals: "a" }, { ends_with: "-b" }, { contains: "mid" }] });
  assert.deepEqual(["a", "x-b", "amidst", "ab"].map(n), [true, true, true, false]);
});

test("the catalog names its data source and version", () => {
  assert.equal(catalog.source.bundled.name, "@pydantic/genai-prices");
  assert.match(catalog.source.bundled.version, /^\d+\.\d+\.\d+/);
  assert.equal(catalog.source.overrides, null);
});
