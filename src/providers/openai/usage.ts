import { z } from "zod";
import type { ServiceTier } from "../../ledger/event.ts";
import type { OtlpQuirks } from "../types.ts";
import { type ExtractResult, type UsageExtractor, type Checked, checked, finish, hasAnyKey, isNullishCount, isNullishText, isPlain, locate, parseAt, tokenCount } from "../usage.ts";

/*
 * OpenAI's usage, and that of the providers copying its API (xAI, Mistral, Groq, DeepSeek, OpenRouter,
 * Azure). Input totals include cached tokens; output totals include reasoning tokens — except on xAI,
 * whose reasoning tokens sit beside completion tokens (total = prompt + completion + reasoning).
 * Compatible APIs send `null` for what they do not report, so every optional count is nullish.
 */

const inputDetails = z
  .looseObject({
    cached_tokens: tokenCount.nullish(),
    /** OpenRouter (and OpenAI models that bill cache writes) report writes as part of the input. */
    cache_write_tokens: tokenCount.nullish(),
  })
  .nullish();
const outputDetails = z.looseObject({ reasoning_tokens: tokenCount.nullish() }).nullish();
/** OpenRouter's price of the call, in USD (its credits are dollars). */
const cost = z.number().min(0).nullish();

const inputDetailsFit = (v: unknown) => v == null || (isPlain(v) && isNullishCount(v.cached_tokens) && isNullishCount(v.cache_write_tokens));
const outputDetailsFit = (v: unknown) => v == null || (isPlain(v) && isNullishCount(v.reasoning_tokens));
const costFits = (v: unknown) => v == null || (typeof v === "number" && Number.isFinite(v) && v >= 0);

/** Chat Completions (and Completions, Embeddings: no completion tokens there). */
const ChatUsage = checked(
  z.looseObject({
    prompt_tokens: tokenCount,
    completion_tokens: tokenCount.nullish(),
    total_tokens: tokenCount.nullish(),
    prompt_tokens_details: inputDetails,
    completion_tokens_details: outputDetails,
    /** DeepSeek's older spelling of cached prompt tokens. */
    prompt_cache_hit_tokens: tokenCount.nullish(),
    cost,
  }),
  (u) =>
    isPlain(u) &&
    isNullishCount(u.prompt_tokens) &&
    u.prompt_tokens != null &&
    isNullishCount(u.completion_tokens) &&
    isNullishCount(u.total_tokens) &&
    inputDetailsFit(u.prompt_tokens_details) &&
    outputDetailsFit(u.completion_tokens_details) &&
    isNullishCount(u.prompt_cache_hit_tokens) &&
    costFits(u.cost),
);

/** Responses API. */
const ResponsesUsage = checked(
  z.looseObject({
    input_tokens: tokenCount,
    output_tokens: tokenCount.nullish(),
    total_tokens: tokenCount.nullish(),
    input_tokens_details: inputDetails,
    output_tokens_details: outputDetails,
    cost,
  }),
  (u) =>
    isPlain(u) &&
    isNullishCount(u.input_tokens) &&
    u.input_tokens != null &&
    isNullishCount(u.output_tokens) &&
    isNullishCount(u.total_tokens) &&
    inputDetailsFit(u.input_tokens_details) &&
    outputDetailsFit(u.output_tokens_details) &&
    costFits(u.cost),
);

const Envelope = checked(
  z.looseObject({ model: z.string().min(1).nullish(), service_tier: z.string().nullish() }),
  (e) => isPlain(e) && isNullishText(e.model, 1) && isNullishText(e.service_tier),
);

/** The checked schemas, for the test holding each check to its schema. */
export const OPENAI_CHECKED = { ChatUsage, ResponsesUsage, Envelope };

/** Keys only OpenAI-shaped usage has; Anthropic's also has `input_tokens` but none of these. */
export const OPENAI_ONLY_KEYS = ["prompt_tokens", "input_tokens_details", "output_tokens_details", "total_tokens"];

interface Counts {
  input: number;
  cached: number;
  cacheWrite: number;
  output: number;
  reasoning: number;
  total: number | null | undefined;
  cost: number | null | undefined;
}

const fromChat = (u: z.infer<typeof ChatUsage.schema>): Counts => ({
  input: u.prompt_tokens,
  cached: u.prompt_tokens_details?.cached_tokens ?? u.prompt_cache_hit_tokens ?? 0,
  cacheWrite: u.prompt_tokens_details?.cache_write_tokens ?? 0,
  output: u.completion_tokens ?? 0,
  reasoning: u.completion_tokens_details?.reasoning_tokens ?? 0,
  total: u.total_tokens,
  cost: u.cost,
});

const fromResponses = (u: z.infer<typeof ResponsesUsage.schema>): Counts => ({
  input: u.input_tokens,
  cached: u.input_tokens_details?.cached_tokens ?? 0,
  cacheWrite: u.input_tokens_details?.cache_write_tokens ?? 0,
  output: u.output_tokens ?? 0,
  reasoning: u.output_tokens_details?.reasoning_tokens ?? 0,
  total: u.total_tokens,
  cost: u.cost,
});

/**
 * Reasoning is billed as output either way; it is outside the output count when the total says so
 * (xAI) or when it could not fit inside it.
 */
function outputOf(c: Counts): number {
  const besideOutput = c.reasoning > c.output || (c.reasoning > 0 && c.total === c.input + c.output + c.reasoning);
  return besideOutput ? c.output + c.reasoning : c.output;
}

/** The tier a response says it was served on (`default`, `flex`, `priority`); others are not priced differently. */
export function openAIServiceTier(value: unknown): ServiceTier | undefined {
  const tiers: Record<string, ServiceTier> = { default: "standard", flex: "flex", priority: "priority" };
  return typeof value === "string" ? tiers[value] : undefined;
}

/**
 * JSON numbers arrive as doubles; their shortest round-trip form is the decimal the sender wrote,
 * spelled out here without exponent notation (1.5e-7 → "0.00000015").
 */
export function decimalString(value: number): string {
  const [mantissa = "0", exponent = "0"] = value.toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const point = Number(exponent) + 1;
  if (point <= 0) return `0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return digits + "0".repeat(point - digits.length);
  return `${digits.slice(0, point)}.${digits.slice(point)}`;
}

function countsOf<T extends z.ZodType>(schema: Checked<T>, toCounts: (usage: z.infer<T>) => Counts, usage: unknown, prefix: string) {
  const parsed = parseAt(schema, usage, prefix);
  return parsed.ok ? { ok: true as const, counts: toCounts(parsed.data) } : parsed;
}

function extract(raw: unknown): ExtractResult {
  const { usage, envelope, prefix } = locate(raw, "usage");
  const isChat = hasAnyKey(usage, ["prompt_tokens"]) || !hasAnyKey(usage, ["input_tokens"]);
  const read = isChat ? countsOf(ChatUsage, fromChat, usage, prefix) : countsOf(ResponsesUsage, fromResponses, usage, prefix);
  if (!read.ok) return read;
  const meta = parseAt(Envelope, envelope ?? {}, "");
  if (!meta.ok) return meta;
  const c = read.counts;
  return finish({
    tokens: { input: c.input, cached_input: c.cached, cache_write: c.cacheWrite, output: outputOf(c), reasoning: c.reasoning },
    service_tier: openAIServiceTier(meta.data.service_tier),
    model: meta.data.model ?? undefined,
    cost_usd: c.cost == null ? undefined : decimalString(c.cost),
  });
}

export const openAIUsage: UsageExtractor = {
  expects: "OpenAI (prompt_tokens, or input_tokens with total_tokens)",
  detect: (raw) => {
    const { usage } = locate(raw, "usage");
    return hasAnyKey(usage, OPENAI_ONLY_KEYS) && hasAnyKey(usage, ["prompt_tokens", "input_tokens"]);
  },
  extract,
};

/** OpenAI's service tier as OTel instrumentations record it on a span. */
export const openAIOtlp: OtlpQuirks = {
  serviceTier: { keys: ["openai.response.service_tier", "gen_ai.openai.response.service_tier"], read: openAIServiceTier },
};
