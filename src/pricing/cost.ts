import type { ServiceTier, Tokens } from "../ledger/event.ts";
import type { PriceCatalog, ResolvedPrice } from "./catalog.ts";
import { type PriceSet, type Rate, rateAt } from "./rates.ts";

/** An exact rational multiplier num/den. */
export interface Ratio {
  readonly num: bigint;
  readonly den: bigint;
}

/**
 * What each service tier costs against standard rates, unless the operator's override file gives
 * that tier its own prices. No bundled data prices tiers, so these are the whole policy.
 */
export const SERVICE_TIER_MULTIPLIERS: Readonly<Record<ServiceTier, Ratio>> = {
  standard: { num: 1n, den: 1n },
  // OpenAI, Anthropic, Gemini and Groq batch APIs all bill half the standard rates.
  batch: { num: 1n, den: 2n },
  // OpenAI's flex processing is priced at its batch rates; Gemini's Flex tier is 50 % too.
  flex: { num: 1n, den: 2n },
  // OpenAI publishes priority at 1.7–2× standard (Gemini 1.8×): the upper bound, so spend is never under-reported.
  priority: { num: 2n, den: 1n },
};

/** amount × num / den, rounded half up to a whole pico-USD (amounts are never negative). */
export function applyRatio(amount: bigint, ratio: Ratio): bigint {
  return (2n * amount * ratio.num + ratio.den) / (2n * ratio.den);
}

/**
 * Anthropic documents one-hour cache writes at 2× the base input rate; Claude served through
 * Bedrock or Vertex is billed the same way, hence the model-name test.
 */
function writesOneHourAtDoubleInput(found: ResolvedPrice): boolean {
  return found.provider === "anthropic" || found.model.toLowerCase().includes("claude");
}

function assertConsistent(t: Tokens): void {
  if (t.cached_input + t.cache_write > t.input || t.cache_write_1h > t.cache_write || t.reasoning > t.output)
    throw new RangeError(`inconsistent token counts ${JSON.stringify(t)}: parts exceed their wholes`);
}

/** sum + count × rate; a count of zero adds nothing and makes no BigInt (each product and sum is a heap object). */
const plus = (sum: bigint, count: number, rate: bigint): bigint => (count === 0 ? sum : sum + BigInt(count) * rate);

/**
 * The cost of one call's tokens at one price set, in pico-USD, before any service-tier multiplier.
 * Only the parts with tokens are priced: most calls have no cache writes or reasoning, and the
 * ledger prices every event it ingests.
 */
export function tokensCost(prices: PriceSet, tokens: Tokens, oneHourAtDoubleInput: boolean): bigint {
  assertConsistent(tokens);
  // Long-context tiers compare the request's total input (cache reads and writes included) with the
  // tier start, and the tier reached prices the whole request, output included.
  const at = (rate: Rate | undefined) => (rate === undefined ? undefined : rateAt(rate, tokens.input));
  const input = at(prices.input) ?? 0n;
  const output = at(prices.output) ?? 0n;
  let cost = at(prices.request) ?? 0n;
  cost = plus(cost, tokens.input - tokens.cached_input - tokens.cache_write, input);
  cost = plus(cost, tokens.output - tokens.reasoning, output);
  if (tokens.cached_input !== 0) cost = plus(cost, tokens.cached_input, at(prices.cache_read) ?? input);
  if (tokens.cache_write !== 0) {
    const cacheWrite = at(prices.cache_write) ?? input;
    cost = plus(cost, tokens.cache_write - tokens.cache_write_1h, cacheWrite);
    if (tokens.cache_write_1h !== 0) cost = plus(cost, tokens.cache_write_1h, at(prices.cache_write_1h) ?? (oneHourAtDoubleInput ? 2n * input : cacheWrite));
  }
  if (tokens.reasoning !== 0) cost = plus(cost, tokens.reasoning, at(prices.output_reasoning) ?? output);
  return cost;
}

/** The cost of one call at resolved prices and a service tier, in pico-USD. */
export function costAt(found: ResolvedPrice, tokens: Tokens, tier: ServiceTier): bigint {
  // Only one-hour cache writes depend on it, and reading it lowercases the model's name.
  const oneHourAtDoubleInput = tokens.cache_write_1h !== 0 && writesOneHourAtDoubleInput(found);
  const own = tier === "standard" ? undefined : found.tierPrices[tier];
  if (own) return tokensCost(own, tokens, oneHourAtDoubleInput);
  return applyRatio(tokensCost(found.prices, tokens, oneHourAtDoubleInput), SERVICE_TIER_MULTIPLIERS[tier]);
}

export interface PricingInput {
  readonly provider: string;
  readonly model: string;
  readonly ts: Date;
  readonly tokens: Tokens;
  readonly service_tier: ServiceTier;
  readonly usage_unknown?: boolean;
}

/** `priced: false` means the model or the usage is unknown: the caller records it as unpriced, never as a $0 call. */
export interface PriceResult {
  readonly cost: bigint;
  readonly priced: boolean;
}

/** Prices one call with the rates in force at its time. */
export function priceEvent(catalog: PriceCatalog, event: PricingInput): PriceResult {
  if (event.usage_unknown) return { cost: 0n, priced: false };
  const found = catalog.lookup(event.provider, event.model, event.ts);
  if (!found) return { cost: 0n, priced: false };
  return { cost: costAt(found, event.tokens, event.service_tier), priced: true };
}
