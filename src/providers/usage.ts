import { z } from "zod";
import { MAX_TOKENS, ServiceTier, Tokens } from "../ledger/event.ts";

/** A token count as a provider reports it. */
export const tokenCount = z.number().int().min(0).max(MAX_TOKENS);

/** A provider's usage in our token classes, plus what the same payload says about tier, model and price. */
export const NormalisedUsage = z.object({
  tokens: Tokens,
  service_tier: ServiceTier.optional(),
  model: z.string().min(1).max(200).optional(),
  /** The provider's own price in USD, as an exact decimal string. */
  cost_usd: z.string().regex(/^\d+(\.\d+)?$/).optional(),
  /** The provider's id of the answer where it travels in the body rather than a header (Gemini's `responseId`). */
  request_id: z.string().min(1).max(200).optional(),
});
export type NormalisedUsage = z.infer<typeof NormalisedUsage>;

/** Where a usage object was wrong: a dotted path relative to what was handed in ("" for the whole). */
export interface UsageError {
  path: string;
  message: string;
}

export type ExtractResult = { ok: true; usage: NormalisedUsage } | { ok: false; error: UsageError };

/** One provider's usage format. Pure: the proxy, webhooks and tests all call the same code. */
export interface UsageExtractor {
  /** What this format's usage object looks like, for the error when no format fits. */
  expects: string;
  /** Whether `raw` looks like this provider's usage object (or a response carrying one). */
  detect(raw: unknown): boolean;
  extract(raw: unknown): ExtractResult;
}

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Extractors take either the bare usage object (webhooks) or the response that carries it (the
 * proxy), because only the response says which model answered and on which tier.
 */
export interface Located {
  usage: unknown;
  envelope: Record<string, unknown> | undefined;
  prefix: string;
}

export function locate(raw: unknown, usageKey: string): Located {
  if (isRecord(raw) && isRecord(raw[usageKey])) return { usage: raw[usageKey], envelope: raw, prefix: `${usageKey}.` };
  return { usage: raw, envelope: undefined, prefix: "" };
}

export function hasAnyKey(value: unknown, keys: readonly string[]): boolean {
  return isRecord(value) && keys.some((key) => key in value);
}

function firstIssue(error: z.ZodError, prefix: string): UsageError {
  const issue = error.issues[0];
  const path = issue?.path.map(String).join(".") ?? "";
  return { path: path ? prefix + path : prefix.replace(/\.$/, ""), message: issue?.message ?? "invalid usage object" };
}

/**
 * A usage schema with a hand-written check in front of it: answers look alike call after call, and
 * checking the fields an extractor reads by hand costs a fraction of zod's walk. `accepts` must say
 * yes only to values the schema accepts and gives back equal (test/usage-fast.test.ts holds every
 * check to that against its schema on generated values); anything else, errors included, is the
 * schema's to answer.
 */
export interface Checked<T extends z.ZodType> {
  schema: T;
  accepts(value: unknown): boolean;
}

export const checked = <T extends z.ZodType>(schema: T, accepts: (value: unknown) => boolean): Checked<T> => ({ schema, accepts });

/** A plain object, as JSON.parse makes them (others are the schema's to judge). */
export const isPlain = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype;

/** What tokenCount accepts. */
export const isCount = (value: unknown): value is number => typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= MAX_TOKENS;
export const isNullishCount = (value: unknown): boolean => value == null || isCount(value);
export const isNullishText = (value: unknown, min = 0): boolean => value == null || (typeof value === "string" && value.length >= min);

/** Parses with `schema` (after its hand check, when it has one), reporting the first problem at its path under `prefix`. */
export function parseAt<T extends z.ZodType>(
  schema: T | Checked<T>,
  value: unknown,
  prefix: string,
): { ok: true; data: z.infer<T> } | { ok: false; error: UsageError } {
  if ("accepts" in schema) {
    if (schema.accepts(value)) return { ok: true, data: value as z.infer<T> };
    schema = schema.schema;
  }
  const parsed = schema.safeParse(value);
  return parsed.success ? { ok: true, data: parsed.data } : { ok: false, error: firstIssue(parsed.error, prefix) };
}

const TIERS = new Set<string>(ServiceTier.options);
/** The tier when it is one we price, else undefined (as ServiceTier.safeParse(value).data). */
export const knownTier = (value: unknown): ServiceTier | undefined => (typeof value === "string" && TIERS.has(value) ? (value as ServiceTier) : undefined);
const COST_TEXT = /^\d+(\.\d+)?$/;
const TOKEN_KEYS = ["input", "cached_input", "cache_write", "cache_write_1h", "output", "reasoning"] as const;
const isText = (value: unknown, max: number): value is string => typeof value === "string" && value.length >= 1 && value.length <= max;

/**
 * The candidate as NormalisedUsage would give it (absent fields dropped, absent token counts 0),
 * or undefined for the schema to decide: the check of every extractor's result, by hand.
 */
export function fastNormalised(candidate: z.input<typeof NormalisedUsage>): NormalisedUsage | undefined {
  const given = candidate.tokens;
  if (!isPlain(given)) return undefined;
  let keys = 0;
  for (const _ in given) keys++;
  const tokens = {} as Tokens;
  for (const k of TOKEN_KEYS) {
    const v = given[k];
    if (v === undefined) continue;
    if (!isCount(v)) return undefined;
    keys--;
    tokens[k] = v;
  }
  if (keys !== 0) return undefined; // a key Tokens does not know, or one given as undefined
  for (const k of TOKEN_KEYS) tokens[k] ??= 0;
  if (tokens.cached_input + tokens.cache_write > tokens.input || tokens.cache_write_1h > tokens.cache_write || tokens.reasoning > tokens.output) return undefined;
  const usage: NormalisedUsage = { tokens };
  const { service_tier, model, cost_usd, request_id } = candidate;
  if (service_tier !== undefined) {
    if (!TIERS.has(service_tier)) return undefined;
    usage.service_tier = service_tier;
  }
  if (model !== undefined) {
    if (!isText(model, 200)) return undefined;
    usage.model = model;
  }
  if (cost_usd !== undefined) {
    if (typeof cost_usd !== "string" || !COST_TEXT.test(cost_usd)) return undefined;
    usage.cost_usd = cost_usd;
  }
  if (request_id !== undefined) {
    if (!isText(request_id, 200)) return undefined;
    usage.request_id = request_id;
  }
  return usage;
}

/**
 * Every extractor ends here, so the token-class invariants (cached ⊆ input, …) hold for all of
 * them. Absent optional fields are dropped rather than kept as `undefined`, so results compare cleanly.
 */
export function finish(candidate: z.input<typeof NormalisedUsage>): ExtractResult {
  const fast = fastNormalised(candidate);
  if (fast) return { ok: true, usage: fast };
  const present = Object.fromEntries(Object.entries(candidate).filter(([, v]) => v !== undefined));
  const parsed = parseAt(NormalisedUsage, present, "");
  return parsed.ok ? { ok: true, usage: parsed.data } : parsed;
}
