import { readFileSync } from "node:fs";
import type { ConditionalPrice, ModelInfo, ModelPrice } from "@pydantic/genai-prices";
import type { ServiceTier } from "../ledger/event.ts";
import { COMPACT_DATE } from "../ledger/model-family.ts";
import { catalogIdOf } from "../providers/registry.ts";
import { bundledPackage, bundledProviders } from "./bundled-data.ts";
import { compileMatch, type ModelMatcher, normaliseModelId } from "./match.ts";
import { parseOverrides, type PriceOverride } from "./overrides.ts";
import { PriceError, type PriceSet, toPriceSet } from "./rates.ts";

/*
 * The price catalog: genai-prices' bundled data (read through `findProvider` only; its remote
 * `updatePrices` is never called, so pricing needs no network and cannot change under a running
 * gateway), converted once to exact rates, with the operator's overrides laid over it.
 */

/** When an event names no known provider, these are searched first: they serve most traffic. */
const PREFERRED_PROVIDERS = ["openai", "anthropic", "google"];

/** Operator rates for a non-standard service tier; where present they replace the tier's multiplier. */
export type TierPrices = Readonly<Partial<Record<Exclude<ServiceTier, "standard">, PriceSet>>>;

/** The prices in force for one model at one moment. */
export interface ResolvedPrice {
  /** The catalog provider whose entry priced it, e.g. "openai" for an Azure deployment of gpt-4o. */
  readonly provider: string;
  /** The catalog's model id, or the override's model as written. */
  readonly model: string;
  readonly origin: "bundled" | "override";
  readonly prices: PriceSet;
  readonly tierPrices: TierPrices;
  /** Input and output tokens one call may hold together, when the bundled data says. */
  readonly contextWindow?: number | undefined;
}

/** A bundled entry Tollgate cannot price exactly; events for it are recorded as unpriced. */
export interface CatalogProblem {
  readonly provider: string;
  readonly model: string;
  readonly reason: string;
}

export interface CatalogSource {
  readonly bundled: { readonly name: string; readonly version: string; readonly url: string; readonly license: string };
  readonly overrides: { readonly file: string; readonly entries: number } | null;
}

export interface PriceCatalog {
  readonly source: CatalogSource;
  readonly problems: readonly CatalogProblem[];
  /** The prices in force at `at`, or null when the model is unknown or cannot be priced exactly. */
  lookup(provider: string, model: string, at: Date): ResolvedPrice | null;
}

/** A start date, or a daily window in milliseconds after midnight UTC (end before start wraps midnight). */
type Constraint = { readonly kind: "from"; readonly at: number } | { readonly kind: "daily"; readonly start: number; readonly end: number };

interface PricePeriod {
  readonly when: Constraint | undefined;
  /** null when the published price cannot be charged exactly from a usage event. */
  readonly prices: PriceSet | null;
}

interface BundledModel {
  readonly provider: string;
  readonly id: string;
  readonly matches: ModelMatcher;
  readonly periods: readonly PricePeriod[];
  readonly contextWindow: number | undefined;
}

interface BundledProvider {
  readonly id: string;
  readonly modelMatch: ModelMatcher | undefined;
  readonly providerMatch: ModelMatcher | undefined;
  readonly fallbacks: readonly string[];
  readonly models: readonly BundledModel[];
}

interface Bundled {
  readonly byId: ReadonlyMap<string, BundledProvider>;
  /** Every provider, preferred ones first, then in bundled order. */
  readonly searchOrder: readonly BundledProvider[];
  readonly problems: readonly CatalogProblem[];
  readonly source: CatalogSource["bundled"];
}

interface CompiledOverride {
  readonly provider: string;
  readonly model: string;
  readonly matches: ModelMatcher;
  readonly from: number;
  readonly prices: PriceSet;
  readonly tierPrices: TierPrices;
}

/** One provider on the way to a model: its overrides that match (newest first), and its bundled entry. */
interface Step {
  readonly overrides: readonly CompiledOverride[];
  readonly model: BundledModel | undefined;
}

const DAY_MS = 86_400_000;
const TIME_OF_DAY = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3})\d*)?(?:Z|([+-])(\d{2}):(\d{2}))$/;

/** "16:30:00Z" → milliseconds after midnight UTC, the way genai-prices reads its time-of-day windows. */
function timeOfDayMs(text: string): number {
  const m = TIME_OF_DAY.exec(text);
  if (!m) throw new Error(`invalid time-of-day price constraint ${text}`);
  const [, h = "0", min = "0", s = "0", ms = "0", sign, offH = "0", offM = "0"] = m;
  const local = ((Number(h) * 60 + Number(min)) * 60 + Number(s)) * 1000 + Number(ms.padEnd(3, "0"));
  const offset = (Number(offH) * 60 + Number(offM)) * 60_000 * (sign === "-" ? -1 : 1);
  return (((local - offset) % DAY_MS) + DAY_MS) % DAY_MS;
}

function compileConstraint(constraint: NonNullable<ConditionalPrice["constraint"]>): Constraint {
  if (constraint.type === "start_date") return { kind: "from", at: Date.parse(constraint.start_date) };
  // Handled rather than ignored: DeepSeek's off-peak prices (half or less of peak) are daily windows.
  if (constraint.type === "time_of_date")
    return { kind: "daily", start: timeOfDayMs(constraint.start_time), end: timeOfDayMs(constraint.end_time) };
  throw new Error(`unknown price constraint ${JSON.stringify(constraint)}`);
}

function inForce(when: Constraint, at: number): boolean {
  if (when.kind === "from") return at >= when.at;
  const ms = ((at % DAY_MS) + DAY_MS) % DAY_MS;
  return when.end < when.start ? ms >= when.start || ms < when.end : ms >= when.start && ms < when.end;
}

/** genai-prices' rule: the last entry whose constraint holds wins; an unconstrained entry always holds. */
function pricesAt(periods: readonly PricePeriod[], at: number): PriceSet | null {
  for (let i = periods.length - 1; i >= 0; i--) {
    const period = periods[i];
    if (period && (period.when === undefined || inForce(period.when, at))) return period.prices;
  }
  return periods[0]?.prices ?? null;
}

function exactOrNull(raw: ModelPrice, report: (reason: string) => void): PriceSet | null {
  try {
    const { prices, uncharged } = toPriceSet(raw);
    // An empty price object is the data saying "free" (":free" models, subscription-included ones);
    // one priced only in audio hours or pages cannot be charged from token counts: unpriced, not $0.
    if (Object.keys(prices).length === 0 && uncharged.length > 0) {
      report(`priced only in units a usage event does not carry: ${uncharged.join(", ")}`);
      return null;
    }
    return prices;
  } catch (error) {
    if (!(error instanceof PriceError)) throw error;
    report(`${error.path.join(".")}: ${error.message}`);
    return null;
  }
}

function compileModel(provider: string, info: ModelInfo, problems: CatalogProblem[]): BundledModel {
  const entries: ConditionalPrice[] = Array.isArray(info.prices) ? info.prices : [{ prices: info.prices }];
  const report = (reason: string) => {
    // Several periods of one model (or two entries with one id) often share a problem; list it once.
    if (!problems.some((p) => p.provider === provider && p.model === info.id && p.reason === reason))
      problems.push({ provider, model: info.id, reason });
  };
  return {
    provider,
    id: info.id,
    matches: compileMatch(info.match),
    contextWindow: info.context_window,
    periods: entries.map((entry) => ({
      when: entry.constraint && compileConstraint(entry.constraint),
      prices: exactOrNull(entry.prices, report),
    })),
  };
}

function compileBundled(): Bundled {
  const problems: CatalogProblem[] = [];
  const pkg = bundledPackage();
  const providers = bundledProviders(pkg.version).map((provider): BundledProvider => {
    const { id } = provider;
    return {
      id,
      modelMatch: provider.model_match && compileMatch(provider.model_match),
      providerMatch: provider.provider_match && compileMatch(provider.provider_match),
      fallbacks: provider.fallback_model_providers ?? [],
      models: provider.models.map((model) => compileModel(id, model, problems)),
    };
  });
  const rank = (p: BundledProvider) => {
    const i = PREFERRED_PROVIDERS.indexOf(p.id);
    return i === -1 ? PREFERRED_PROVIDERS.length : i;
  };
  return {
    byId: new Map(providers.map((p) => [p.id, p])),
    searchOrder: [...providers].sort((a, b) => rank(a) - rank(b)),
    problems,
    source: { name: "@pydantic/genai-prices", version: pkg.version, url: pkg.homepage, license: pkg.license },
  };
}

// The bundled data never changes in a process, so it is converted once and shared by every catalog.
let bundledCache: Bundled | undefined;
function bundled(): Bundled {
  bundledCache ??= compileBundled();
  return bundledCache;
}

/** A compact date anywhere in an id, as a part of its own (`claude-sonnet-4-20250514-v1:0`). */
const COMPACT_DATE_PART = new RegExp(`-${COMPACT_DATE}(?=-|:|$)`, "g");

/** genai-prices retries "-20250514" as "-2025-05-14", since its data spells dates both ways. */
function hyphenateDates(model: string): string {
  return model.replace(COMPACT_DATE_PART, (whole, y: string, m: string, d: string) => {
    const date = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
    return date.getUTCMonth() === Number(m) - 1 ? `-${y}-${m}-${d}` : whole;
  });
}

// Keys come from senders, so the resolution memo is bounded rather than left to grow.
const MEMO_LIMIT = 10_000;

/** Builds a catalog from the bundled data and already-parsed overrides. */
export function createCatalog(overrides: readonly PriceOverride[] = [], overrideFile: string | null = null): PriceCatalog {
  const data = bundled();

  const providerKey = (name: string): string => {
    const key = name.trim().toLowerCase();
    if (!key || data.byId.has(key)) return key;
    // A provider's own folder names its catalog id; other names may still be claimed by the data's `provider_match`.
    return catalogIdOf(key) ?? data.searchOrder.find((p) => p.providerMatch?.(key))?.id ?? key;
  };

  const overridesByProvider = new Map<string, CompiledOverride[]>();
  overrides
    .map((o, index) => ({ o, index }))
    // Newest first; of two with the same date, the later entry in the file wins.
    .sort((a, b) => (b.o.effective_from?.getTime() ?? -Infinity) - (a.o.effective_from?.getTime() ?? -Infinity) || b.index - a.index)
    .forEach(({ o }) => {
      const provider = providerKey(o.provider);
      const list = overridesByProvider.get(provider) ?? [];
      list.push({
        provider,
        model: typeof o.model === "string" ? o.model : JSON.stringify(o.model),
        matches: compileMatch(typeof o.model === "string" ? { equals: o.model } : o.model),
        from: o.effective_from?.getTime() ?? -Infinity,
        prices: o.prices.standard,
        tierPrices: o.prices.tiers,
      });
      overridesByProvider.set(provider, list);
    });

  /** Providers to look in: a known one and its fallbacks; otherwise every provider, likeliest first. */
  const chainFor = (key: string, model: string): string[] => {
    const known = data.byId.get(key);
    if (known) return [known.id, ...known.fallbacks];
    const claiming = data.searchOrder.filter((p) => p.modelMatch?.(model)).map((p) => p.id);
    return [...new Set([key, ...claiming, ...data.searchOrder.map((p) => p.id)])].filter(Boolean);
  };

  const stepsFor = (key: string, model: string): Step[] => {
    const steps: Step[] = [];
    for (const provider of chainFor(key, model)) {
      const found = data.byId.get(provider)?.models.find((m) => m.matches(model));
      const matching = overridesByProvider.get(provider)?.filter((o) => o.matches(model)) ?? [];
      if (found || matching.length) steps.push({ overrides: matching, model: found });
      if (found) break;
    }
    return steps;
  };

  const resolve = (provider: string, rawModel: string): readonly Step[] => {
    const model = normaliseModelId(rawModel);
    if (!model) return [];
    const key = providerKey(provider);
    const steps = stepsFor(key, model);
    const dated = hyphenateDates(model);
    if (dated === model || steps.some((s) => s.model)) return steps;
    const retried = stepsFor(key, dated);
    return retried.some((s) => s.model) ? retried : steps;
  };

  // By provider, then model: found with the event's own strings, no key string made per lookup (every event ingested is one).
  const memo = new Map<string, Map<string, readonly Step[]>>();
  let memoized = 0;
  const stepsOf = (provider: string, model: string): readonly Step[] => {
    let byModel = memo.get(provider);
    let steps = byModel?.get(model);
    if (!steps) {
      if (memoized >= MEMO_LIMIT) {
        memo.clear();
        memoized = 0;
        byModel = undefined;
      }
      steps = resolve(provider, model);
      if (!byModel) memo.set(provider, (byModel = new Map()));
      byModel.set(model, steps);
      memoized++;
    }
    return steps;
  };

  return {
    source: { bundled: data.source, overrides: overrideFile === null ? null : { file: overrideFile, entries: overrides.length } },
    problems: data.problems,
    lookup(provider, model, at) {
      const t = at.getTime();
      if (Number.isNaN(t)) throw new RangeError("cannot price an event with an invalid time");
      // Along the chain, a provider's override in force wins over its bundled entry; an override not
      // yet in force lets the event fall through to bundled data.
      for (const step of stepsOf(provider, model)) {
        const override = step.overrides.find((o) => o.from <= t);
        if (override)
          return { provider: override.provider, model: override.model, origin: "override", prices: override.prices, tierPrices: override.tierPrices, contextWindow: step.model?.contextWindow };
        if (step.model) {
          const prices = pricesAt(step.model.periods, t);
          return prices && { provider: step.model.provider, model: step.model.id, origin: "bundled", prices, tierPrices: {}, contextWindow: step.model.contextWindow };
        }
      }
      return null;
    },
  };
}

/** Loads the catalog, with the operator's override file (TOLLGATE_PRICES) when one is given. */
export function loadCatalog(options: { readonly overrideFile?: string | undefined } = {}): PriceCatalog {
  const file = options.overrideFile;
  if (!file) return createCatalog();
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new Error(`cannot read price override file ${file}: ${(error as Error).message}`);
  }
  return createCatalog(parseOverrides(text, file), file);
}
