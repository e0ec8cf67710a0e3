import { z } from "zod";

/** Largest token count one call can plausibly report; anything above is a sender bug, not usage. */
export const MAX_TOKENS = 100_000_000;

const count = z.number().int().min(0).max(MAX_TOKENS);

/**
 * Most one call can cost, in pico-USD (a million USD): anything above is a sender's bug, and a
 * stored cost must stay far inside bigint (which overflows at ~9.2 M USD) for sums to be safe.
 */
export const MAX_EVENT_COST_USD = 1_000_000;
export const MAX_EVENT_COST_PICO = BigInt(MAX_EVENT_COST_USD) * 1_000_000_000_000n;

/**
 * Token classes of one call, normalised so every door means the same thing:
 * `input` is all input (cache reads and writes included), `cached_input` and `cache_write` are
 * parts of it, `cache_write_1h` is the part of `cache_write` kept for an hour; `output` includes
 * `reasoning`.
 */
export const Tokens = z
  .object({
    input: count.default(0),
    cached_input: count.default(0),
    cache_write: count.default(0),
    cache_write_1h: count.default(0),
    output: count.default(0),
    reasoning: count.default(0),
  })
  .superRefine((t, ctx) => {
    if (t.cached_input + t.cache_write > t.input)
      ctx.addIssue({ code: "custom", path: ["cached_input"], message: "cached and cache-write tokens cannot exceed input tokens" });
    if (t.cache_write_1h > t.cache_write)
      ctx.addIssue({ code: "custom", path: ["cache_write_1h"], message: "one-hour cache writes cannot exceed cache writes" });
    if (t.reasoning > t.output)
      ctx.addIssue({ code: "custom", path: ["reasoning"], message: "reasoning tokens cannot exceed output tokens" });
  });
export type Tokens = z.infer<typeof Tokens>;

export const ZERO_TOKENS: Tokens = { input: 0, cached_input: 0, cache_write: 0, cache_write_1h: 0, output: 0, reasoning: 0 };

export const ServiceTier = z.enum(["standard", "batch", "flex", "priority"]);
export type ServiceTier = z.infer<typeof ServiceTier>;

export const CallStatus = z.enum(["ok", "error", "aborted"]);

/** Attribution dimensions, in the order reports list them. */
export const DIMENSIONS = ["team", "project", "feature", "user", "model", "provider", "key"] as const;
export type Dimension = (typeof DIMENSIONS)[number];

const label = z.string().min(1).max(200);

/** The one shape every door produces: one LLM call, before pricing. */
export const UsageEvent = z.object({
  source: z.string().min(1).max(200),
  id: z.string().min(1).max(200),
  ts: z.date(),
  provider: z.string().max(100).default(""),
  model: z.string().max(200).default(""),
  tokens: Tokens,
  service_tier: ServiceTier.default("standard"),
  /** The sender's own cost figure in pico-USD, kept beside ours, never used for reports. */
  reported_cost: z.bigint().nullable().default(null),
  latency_ms: z.number().int().min(0).max(86_400_000).nullable().default(null),
  status: CallStatus.default("ok"),
  team: label.nullable().default(null),
  project: label.nullable().default(null),
  feature: label.nullable().default(null),
  user: label.nullable().default(null),
  session: label.nullable().default(null),
  api_key_id: z.string().nullable().default(null),
  tags: z.record(z.string(), z.string()).default({}),
  request_id: z.string().max(200).nullable().default(null),
  /**
   * The provider answered but its usage could not be read (a stream cut short before its usage
   * chunk, an answer that carries none): the cost is unknown, so the call is recorded unpriced
   * rather than as a silent $0.
   */
  usage_unknown: z.boolean().optional(),
  /**
   * The token counts are the gateway's estimate, not the provider's report: a stream the gateway
   * stopped reading (or that ended) before its usage came is priced at the estimate, never at $0.
   */
  estimated: z.boolean().optional(),
});
export type UsageEvent = z.infer<typeof UsageEvent>;

/** Who a call is charged to: the one attribution shape every door fills in and every part reads. */
export type Attribution = Pick<UsageEvent, "team" | "project" | "feature" | "user" | "session" | "api_key_id" | "tags">;
export type UsageEventInput = z.input<typeof UsageEvent>;

/** An event with its price: cost in pico-USD (1e-12 USD); `priced` is false for unknown models and unread usage. */
export type PricedEvent = UsageEvent & { cost: bigint; priced: boolean };
