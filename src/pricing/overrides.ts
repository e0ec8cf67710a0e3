import { createRequire } from "node:module";
import { z } from "zod";
import { MatchLogicSchema } from "./match.ts";
import { type PriceSet, PriceError, type RawPrice, toPriceSet } from "./rates.ts";

/*
 * The operator's price file (TOLLGATE_PRICES): a YAML or JSON list of entries that add models or
 * replace bundled prices from a date on. Prices use genai-prices' keys and units (USD per million
 * tokens, `requests_kcount` per thousand calls, tiers as `{base, tiers: [{start, price}]}`); decimal
 * strings are accepted beside numbers.
 */

const AMOUNT = "expected a non-negative number or decimal string";
const Amount = z.union([z.number().min(0, AMOUNT), z.string().regex(/^\s*\d+(\.\d+)?\s*$/, AMOUNT)], { error: AMOUNT });
const Price = z.union(
  [
    Amount,
    z.strictObject({
      base: Amount,
      tiers: z.array(z.strictObject({ start: z.number().int().min(0), price: Amount })).min(1),
    }),
  ],
  {
    error: (issue) =>
      issue.input === undefined ? "required" : "expected a price in USD per unit: a number, a decimal string or {base, tiers}",
  },
);

const tokenPriceShape = {
  input_mtok: Price,
  output_mtok: Price,
  /** Tollgate's name for the cache-read rate; `cache_read_mtok` is genai-prices' name. */
  cached_input_mtok: Price.optional(),
  cache_read_mtok: Price.optional(),
  cache_write_mtok: Price.optional(),
  cache_write_1h_mtok: Price.optional(),
  output_reasoning_mtok: Price.optional(),
  requests_kcount: Price.optional(),
};

const RawTokenPrices = z.strictObject(tokenPriceShape);
type RawTokenPrices = z.output<typeof RawTokenPrices>;

/** Exact rates from validated raw prices; a price finer than a pico-USD becomes an issue at its own path. */
function exactPrices(raw: RawTokenPrices, ctx: z.RefinementCtx): PriceSet {
  const { cached_input_mtok, ...rest } = raw;
  if (cached_input_mtok !== undefined && rest.cache_read_mtok !== undefined) {
    ctx.addIssue({ code: "custom", path: ["cached_input_mtok"], message: "give cached_input_mtok or cache_read_mtok, not both" });
    return z.NEVER;
  }
  const genaiShaped: Record<string, RawPrice | undefined> = { ...rest, cache_read_mtok: rest.cache_read_mtok ?? cached_input_mtok };
  try {
    return toPriceSet(genaiShaped).prices;
  } catch (error) {
    if (!(error instanceof PriceError)) throw error;
    const [key = "", ...path] = error.path;
    // Name the field as the operator wrote it.
    const field = key === "cache_read_mtok" && cached_input_mtok !== undefined ? "cached_input_mtok" : key;
    ctx.addIssue({ code: "custom", path: [field, ...path], message: error.message });
    return z.NEVER;
  }
}

const ServiceTierPrices = RawTokenPrices.transform(exactPrices);

/**
 * An entry's prices: the standard rates, and optionally the operator's own rates for a service tier,
 * which then replace that tier's multiplier (see SERVICE_TIER_MULTIPLIERS).
 */
const EntryPrices = z
  .strictObject({ ...tokenPriceShape, batch: ServiceTierPrices.optional(), flex: ServiceTierPrices.optional(), priority: ServiceTierPrices.optional() })
  .transform(({ batch, flex, priority, ...standard }, ctx) => ({
    standard: exactPrices(standard, ctx),
    tiers: { batch, flex, priority },
  }));

const EffectiveFrom = z
  .union([z.iso.date(), z.iso.datetime({ offset: true })], { error: "expected an ISO 8601 date or date-time" })
  // A bare date means midnight UTC, as genai-prices reads its own start dates.
  .transform((text) => new Date(text));

export const PriceOverrideEntry = z.strictObject({
  provider: z.string().trim().min(1),
  /** An exact model id (case-insensitive, as genai-prices' `equals`) or a genai-prices match object. */
  model: z.union([z.string().trim().min(1), MatchLogicSchema]),
  effective_from: EffectiveFrom.optional(),
  prices: EntryPrices,
});
export type PriceOverride = z.output<typeof PriceOverrideEntry>;

const PriceOverrideFile = z.array(PriceOverrideEntry, { error: "expected a list of price entries" });

function describe(issue: z.core.$ZodIssue): string {
  const [entry, ...path] = issue.path;
  if (entry === undefined) return `  top level: ${issue.message}`;
  return `  entry ${String(entry)}${path.length ? `, ${path.map(String).join(".")}` : ""}: ${issue.message}`;
}

/**
 * The YAML parser, loaded only when a price file is read: most gateways have none, and it holds
 * ~0.7 MB of heap (measured) a gateway would otherwise keep for nothing.
 */
const parseYaml = (text: string): unknown => (createRequire(import.meta.url)("yaml") as typeof import("yaml")).parse(text);

/** Parses an override file's text; `file` names it in errors. An empty file holds no overrides. */
export function parseOverrides(text: string, file: string): PriceOverride[] {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new Error(`price override file ${file} is not valid YAML or JSON: ${(error as Error).message}`);
  }
  const result = PriceOverrideFile.safeParse(document ?? []);
  if (!result.success)
    throw new Error(`price override file ${file} is invalid:\n${result.error.issues.map(describe).join("\n")}`);
  return result.data;
}
