import { z } from "zod";
import { MAX_EVENT_COST_USD, MAX_TOKENS, ServiceTier, type Tokens } from "../ledger/event.ts";
import type { UsageItem } from "./usage-item.ts";

/*
 * The hot path of validation: most posted items are plain, and checking them field by field here
 * costs a fraction of the zod schema's walk. It accepts an item only where UsageItem would, and
 * answers what UsageItem's parse would (test/usage-item-fast.test.ts holds it to that against the
 * schema on generated items); anything it is not sure of (a `usage` object, an unknown key, any
 * bad value) answers undefined and goes through UsageItem, so errors are always the schema's.
 */

/** The one check not redone by hand: zod's own ISO datetime with offset, as the schema has it. */
const Timestamp = z.iso.datetime({ offset: true });
const TIERS = new Set<string>(ServiceTier.options);
const COST_TEXT = /^\d+(\.\d+)?$/;

const isCount = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= MAX_TOKENS;
const isText = (v: unknown, min: number, max: number) => typeof v === "string" && v.length >= min && v.length <= max;

/** UsageItem's label: trimmed, then 1 to 200 characters. */
function label(v: unknown): string | undefined {
  if (typeof v !== "string") return undefined;
  const t = v.trim();
  return t.length >= 1 && t.length <= 200 ? t : undefined;
}

/** UsageItem's tags: a plain object of strings, keys 1 to 100 characters and values up to 500. */
function isTags(v: unknown): boolean {
  if (typeof v !== "object" || v === null || Array.isArray(v) || Object.getPrototypeOf(v) !== Object.prototype) return false;
  for (const k in v) {
    // A key like __proto__ is the schema's business.
    if (!Object.hasOwn(v, k) || k === "__proto__" || !isText(k, 1, 100) || !isText((v as Record<string, unknown>)[k], 0, 500)) return false;
  }
  return true;
}

type Check = (v: unknown) => boolean;
const CHECKS = new Map<string, Check>(Object.entries({
  id: (v) => isText(v, 1, 200),
  timestamp: (v) => typeof v === "string" && Timestamp.safeParse(v).success,
  provider: (v) => isText(v, 0, 100),
  model: (v) => isText(v, 1, 200),
  input_tokens: isCount,
  cached_input_tokens: isCount,
  cache_write_tokens: isCount,
  cache_write_1h_tokens: isCount,
  output_tokens: isCount,
  reasoning_tokens: isCount,
  service_tier: (v) => typeof v === "string" && TIERS.has(v),
  cost_usd: (v) => (typeof v === "number" && v >= 0 && v <= MAX_EVENT_COST_USD) || (typeof v === "string" && COST_TEXT.test(v)),
  latency_ms: (v) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 86_400_000,
  status: (v) => v === "ok" || v === "error",
  request_id: (v) => isText(v, 0, 200),
} satisfies Record<string, Check>));
const LABELS = new Set(["team", "project", "feature", "user", "session"]);

/**
 * The item as UsageItem.parse would give it, or undefined for the schema to decide. Most items are
 * given back as they are, not copied: a plain object (as JSON.parse makes) whose every label is
 * already trimmed is equal to the schema's copy of it. A copy is made only to trim a label or to
 * make a plain object of one that is not. (A copy of every item was ~0.2 kB of garbage per event.)
 */
export function fastUsageItem(value: unknown): UsageItem | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const item = value as Record<string, unknown>;
  if (typeof item.id !== "string" || typeof item.model !== "string") return undefined;
  let asGiven = Object.getPrototypeOf(item) === Object.prototype;
  for (const key in item) {
    if (!Object.hasOwn(item, key)) return undefined;
    const v = item[key];
    // The schema treats a key given as undefined as absent; JSON never gives one.
    if (v === undefined) return undefined;
    if (LABELS.has(key)) {
      const t = label(v);
      if (t === undefined) return undefined;
      if (t !== v) asGiven = false;
    } else if (key === "tags") {
      if (!isTags(v)) return undefined;
    } else if (!CHECKS.get(key)?.(v)) return undefined;
  }
  return (asGiven ? item : trimmedCopy(item)) as UsageItem;
}

/** A plain copy of an item the fast path took, its labels trimmed. */
function trimmedCopy(item: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in item) out[key] = LABELS.has(key) ? (item[key] as string).trim() : item[key];
  return out;
}

/** Tokens.parse of an item's counts (already whole numbers in range), or undefined where the schema must explain. */
export function fastTokens(counts: Partial<Record<keyof Tokens, number>>): Tokens | undefined {
  const t = {
    input: counts.input ?? 0,
    cached_input: counts.cached_input ?? 0,
    cache_write: counts.cache_write ?? 0,
    cache_write_1h: counts.cache_write_1h ?? 0,
    output: counts.output ?? 0,
    reasoning: counts.reasoning ?? 0,
  };
  if (t.cached_input + t.cache_write > t.input || t.cache_write_1h > t.cache_write || t.reasoning > t.output) return undefined;
  return t;
}
