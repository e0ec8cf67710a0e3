import { parseDecimal, scaleExact } from "./money.ts";

/**
 * An exact rate in pico-USD per unit, or long-context tiers of them. Tiers are sorted by `start`;
 * as in genai-prices, a tier applies when the request's total input tokens are greater than its
 * start, and it then prices the whole request.
 */
export type Rate = bigint | TieredRate;
export interface TieredRate {
  readonly base: bigint;
  readonly tiers: readonly { readonly start: number; readonly rate: bigint }[];
}

/** The rates Tollgate charges: pico-USD per token, and `request` in pico-USD per call. */
export interface PriceSet {
  readonly input?: Rate;
  readonly cache_read?: Rate;
  readonly cache_write?: Rate;
  readonly cache_write_1h?: Rate;
  readonly output?: Rate;
  readonly output_reasoning?: Rate;
  readonly request?: Rate;
}

/**
 * The genai-prices price keys Tollgate charges, the field each fills, and the decimal places that
 * turn the published unit into pico-USD per unit: USD per million tokens × 1e12 / 1e6 is a shift
 * of 6 places, USD per thousand requests a shift of 9. Other keys (audio, image, web searches…)
 * have no token class in a usage event, so they are not charged; audio and image tokens still count
 * in `input` and `output`, and so are charged at the text rates.
 */
export const PRICE_KEYS = {
  input_mtok: { field: "input", places: 6 },
  cache_read_mtok: { field: "cache_read", places: 6 },
  cache_write_mtok: { field: "cache_write", places: 6 },
  cache_write_1h_mtok: { field: "cache_write_1h", places: 6 },
  output_mtok: { field: "output", places: 6 },
  output_reasoning_mtok: { field: "output_reasoning", places: 6 },
  requests_kcount: { field: "request", places: 9 },
} as const satisfies Record<string, { field: keyof PriceSet; places: number }>;
export type PriceKey = keyof typeof PRICE_KEYS;

/** A price that cannot be held exactly; `path` locates it inside the price object. */
export class PriceError extends Error {
  constructor(
    message: string,
    readonly path: readonly (string | number)[],
  ) {
    super(message);
  }
}

type Amount = number | string;
/** A price as genai-prices and the override file write it: a number, or `{base, tiers}`. */
export type RawPrice = Amount | { readonly base: Amount; readonly tiers: readonly { readonly start: number; readonly price: Amount }[] };

function exactAmount(value: Amount, places: number, path: (string | number)[]): bigint {
  // String(number) is the shortest text that reads back as the same double: "0.075", not 0.07499…
  const text = typeof value === "number" ? String(value) : value.trim();
  const decimal = parseDecimal(text);
  if (!decimal || decimal.mantissa < 0n) throw new PriceError(`${text} is not a non-negative decimal price`, path);
  const scaled = scaleExact(decimal, places);
  if (scaled === undefined) throw new PriceError(`${text} is not a whole number of pico-USD per unit`, path);
  return scaled;
}

/** Converts one published price to exact rates; throws PriceError for anything it cannot hold exactly. */
export function toRate(raw: RawPrice, places: number): Rate {
  if (typeof raw !== "object") return exactAmount(raw, places, []);
  const tiers = raw.tiers.map((tier, i) => {
    if (!Number.isSafeInteger(tier.start) || tier.start < 0)
      throw new PriceError(`tier start ${tier.start} is not a whole number of tokens`, ["tiers", i, "start"]);
    return { start: tier.start, rate: exactAmount(tier.price, places, ["tiers", i, "price"]) };
  });
  return { base: exactAmount(raw.base, places, ["base"]), tiers: tiers.sort((a, b) => a.start - b.start) };
}

/** The rate for a request with `inputTokens` in all: the highest tier whose start it exceeds. */
export function rateAt(rate: Rate, inputTokens: number): bigint {
  if (typeof rate === "bigint") return rate;
  let chosen = rate.base;
  for (const tier of rate.tiers) if (inputTokens > tier.start) chosen = tier.rate;
  return chosen;
}

function isPriceKey(key: string): key is PriceKey {
  return Object.hasOwn(PRICE_KEYS, key);
}

/**
 * Converts a genai-prices price object. Returns the keys it does not charge beside the rates, so a
 * caller can tell a model priced only in units Tollgate does not record from a free one.
 */
export function toPriceSet(raw: Readonly<Record<string, RawPrice | undefined>>): { prices: PriceSet; uncharged: string[] } {
  const prices: Partial<Record<keyof PriceSet, Rate>> = {};
  const uncharged: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    if (!isPriceKey(key)) {
      uncharged.push(key);
      continue;
    }
    const { field, places } = PRICE_KEYS[key];
    try {
      prices[field] = toRate(value, places);
    } catch (error) {
      if (error instanceof PriceError) throw new PriceError(error.message, [key, ...error.path]);
      throw error;
    }
  }
  return { prices, uncharged };
}
