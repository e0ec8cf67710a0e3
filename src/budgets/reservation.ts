import { type ServiceTier, type Tokens, ZERO_TOKENS } from "../ledger/event.ts";
import { type PriceCatalog, type PriceSet, type ResolvedPrice, costAt } from "../pricing/index.ts";

/*
 * The most a call can cost, known before it is sent: what a hard budget holds for it while it is
 * in flight. Over-estimating only makes a budget stop early; under-estimating is what lets spend
 * pass a hard budget, so every guess here leans high.
 */

export interface ReservationPolicy {
  /** pico-USD held for a call whose model has no known price (the answer may name one that has). */
  unknownModel: bigint;
  /** Output tokens assumed when neither the request nor the catalog bounds them. */
  defaultOutputTokens: number;
}

export interface CallShape {
  provider: string;
  model: string | undefined;
  /** The request body as JSON, and its size in bytes. */
  body: unknown;
  bodyBytes: number;
}

const record = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;

const count = (v: unknown): number | undefined => (typeof v === "number" && Number.isSafeInteger(v) && v > 0 ? v : undefined);

/** The largest of the counts present. */
const largest = (...values: unknown[]): number | undefined =>
  values.reduce<number | undefined>((max, v) => {
    const n = count(v);
    return n !== undefined && (max === undefined || n > max) ? n : max;
  }, undefined);

/**
 * The output cap a request sets (OpenAI `max_completion_tokens`, `max_tokens`, Responses
 * `max_output_tokens`; Anthropic `max_tokens`; Gemini `generationConfig.maxOutputTokens`; Bedrock
 * Converse `inferenceConfig.maxTokens`), and how many answers it asks for (`n`, `best_of`,
 * `candidateCount`), each billed in full. Reasoning and thinking tokens count within these caps on all these APIs.
 */
export function requestedOutput(body: unknown): { tokens: number | undefined; answers: number } {
  const b = record(body) ?? {};
  const gen = record(b.generationConfig) ?? record(b.generation_config) ?? {};
  const inference = record(b.inferenceConfig) ?? {};
  return {
    tokens: largest(b.max_completion_tokens, b.max_tokens, b.max_output_tokens, gen.maxOutputTokens, gen.max_output_tokens, inference.maxTokens),
    answers: largest(b.n, b.best_of, gen.candidateCount, gen.candidate_count) ?? 1,
  };
}

/** A tier above standard only when the request asks for it; batch and flex cost less than standard. */
const tierOf = (body: unknown): ServiceTier => (record(body)?.service_tier === "priority" ? "priority" : "standard");

/** Every way the input and output tokens could be billed: costs are linear per class, so the worst is one of these. */
const INPUT_CLASSES = (n: number): Partial<Tokens>[] => [
  { input: n },
  { input: n, cached_input: n },
  { input: n, cache_write: n },
  { input: n, cache_write: n, cache_write_1h: n },
];
const OUTPUT_CLASSES = (n: number): Partial<Tokens>[] => [{ output: n }, { output: n, reasoning: n }];

/** The highest cost of `input` and `output` tokens at these prices, whichever class they fall in. */
export function worstCost(found: ResolvedPrice, input: number, output: number, tier: ServiceTier): bigint {
  let worst = 0n;
  for (const i of INPUT_CLASSES(input))
    for (const o of OUTPUT_CLASSES(output)) {
      const cost = costAt(found, { ...ZERO_TOKENS, ...i, ...o }, tier);
      if (cost > worst) worst = cost;
    }
  return worst;
}

/**
 * Input sizes rounded up to one of eight steps per power of two (at most 12.5 % more), and all
 * small bodies to 1 KiB, so the worst cases of recurring request shapes can be remembered.
 */
export function roundedInput(bytes: number): number {
  if (bytes <= 1024) return 1024;
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 3);
  return Math.ceil(bytes / step) * step;
}

// Per price set (each model's own object in the catalog), the worst cost of each request shape;
// bounded, since shapes come from clients.
const remembered = new WeakMap<PriceSet, Map<string, bigint>>();
const REMEMBERED_SHAPES = 1000;

function rememberedWorstCost(found: ResolvedPrice, input: number, output: number, tier: ServiceTier): bigint {
  let shapes = remembered.get(found.prices);
  if (!shapes) remembered.set(found.prices, (shapes = new Map()));
  const shape = `${input} ${output} ${tier}`;
  let cost = shapes.get(shape);
  if (cost === undefined) {
    if (shapes.size >= REMEMBERED_SHAPES) shapes.clear();
    cost = worstCost(found, input, output, tier);
    shapes.set(shape, cost);
  }
  return cost;
}

/**
 * pico-USD to hold for a call. Input tokens are bounded by the body's bytes (a token is at least
 * one byte of text; not by the context window, which long-context options stretch), output tokens
 * by the request's cap, else the model's context window, else the policy's default, and by the
 * context window. A body-less request (a listing, a retrieval) generates nothing.
 */
export function reservationFor(catalog: PriceCatalog, call: CallShape, policy: ReservationPolicy, at: Date): bigint {
  if (call.bodyBytes === 0) return 0n;
  const found = call.model === undefined ? null : catalog.lookup(call.provider, call.model, at);
  if (!found) return policy.unknownModel;
  const window = found.contextWindow ?? Number.POSITIVE_INFINITY;
  const asked = requestedOutput(call.body);
  const input = roundedInput(call.bodyBytes);
  const output = Math.min(asked.tokens ?? found.contextWindow ?? policy.defaultOutputTokens, window) * asked.answers;
  return rememberedWorstCost(found, input, output, tierOf(call.body));
}
