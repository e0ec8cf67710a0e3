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

/** Parses with `schema`, reporting the first problem at its path under `prefix`. */
export function parseAt<T extends z.ZodType>(
  schema: T,
  value: unknown,
  prefix: string,
): { ok: true; data: z.infer<T> } | { ok: false; error: UsageError } {
  const parsed = schema.safeParse(value);
  return parsed.success ? { ok: true, data: parsed.data } : { ok: false, error: firstIssue(parsed.error, prefix) };
}

/**
 * Every extractor ends here, so the token-class invariants (cached ⊆ input, …) hold for all of
 * them. Absent optional fields are dropped rather than kept as `undefined`, so results compare cleanly.
 */
export function finish(candidate: z.input<typeof NormalisedUsage>): ExtractResult {
  const present = Object.fromEntries(Object.entries(candidate).filter(([, v]) => v !== undefined));
  const parsed = parseAt(NormalisedUsage, present, "");
  return parsed.ok ? { ok: true, usage: parsed.data } : parsed;
}
