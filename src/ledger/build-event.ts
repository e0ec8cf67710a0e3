import type { PriceResult, PricingInput } from "../pricing/cost.ts";
import { normaliseProvider } from "../providers/registry.ts";
import { MAX_EVENT_COST_PICO, MAX_TOKENS, type PricedEvent, type UsageEvent } from "./event.ts";

/*
 * The one constructor of the ledger's events. Every door (a proxied call, a usage webhook item, an
 * OTLP span) hands it what it saw as a UsageEvent; it comes back with the provider's name
 * normalised, checked storable and priced, and from then on that value is passed along: the budget
 * gate settles with its cost, the proxy puts its cost in a header, the journal keeps it, the
 * recorder writes it. Nothing prices or checks it again.
 */

declare const built: unique symbol;

/** A call as the ledger stores it. Only an EventBuilder makes one (the brand is a type, never a value). */
export type LedgerEvent = PricedEvent & { readonly [built]: true };

/**
 * The built event, or why it cannot share a statement with others (kept so it can be put aside):
 * `field` names the UsageEvent field at fault.
 */
export type Built = { ok: true; event: LedgerEvent } | { ok: false; reason: string; field: string; seen: UsageEvent };

export type Pricer = (event: PricingInput) => PriceResult;

export interface EventBuilder {
  build(seen: UsageEvent): Built;
  /** An event this ledger built and kept (the journal), read back with the price it was built with: checked, not priced again. */
  restore(kept: UsageEvent, price: PriceResult): Built;
}

/** Longest text per field, as the doors' schemas allow (event.ts): nothing longer reaches a statement. */
const TEXT_LIMITS = [
  ["source", 200],
  ["id", 200],
  ["provider", 100],
  ["model", 200],
  ["team", 200],
  ["project", 200],
  ["feature", 200],
  ["user", 200],
  ["session", 200],
  ["api_key_id", 200],
  ["request_id", 200],
] as const satisfies readonly (readonly [keyof UsageEvent, number])[];
const TAG_KEY_LIMIT = 100;
const TAG_VALUE_LIMIT = 500;
const MAX_LATENCY_MS = 86_400_000;

/**
 * Why this event must not reach a statement shared with other senders' events, or undefined:
 * every value Postgres would refuse (and with it the whole batch) or that is beyond what one call
 * can be: text with NUL or longer than its field allows, a time outside the years 1 to 9999, a
 * token count or latency that is not a whole number in range, a cost beyond MAX_EVENT_COST_PICO
 * (bigint overflows at ~9.2 M USD).
 */
export function whyUnstorable(e: PricedEvent | UsageEvent): { field: string; reason: string } | undefined {
  const year = e.ts.getUTCFullYear();
  if (!(year >= 1 && year <= 9999)) return { field: "ts", reason: "its time must be within the years 1 to 9999" };
  for (const [field, max] of TEXT_LIMITS) {
    const text = e[field];
    if (text === null || text === undefined) continue;
    if (text.includes("\u0000")) return { field, reason: `its ${field} must not contain NUL characters` };
    if (text.length > max) return { field, reason: `its ${field} must be at most ${max} characters, got ${text.length}` };
  }
  // Loops over keys rather than Object.entries: this runs for every event ingested, and the pairs were garbage.
  for (const k in e.tags) {
    const v = e.tags[k]!;
    if (k.includes("\u0000") || v.includes("\u0000")) return { field: "tags", reason: "its tags must not contain NUL characters" };
    if (k.length > TAG_KEY_LIMIT || v.length > TAG_VALUE_LIMIT)
      return { field: "tags", reason: `its tag names must be at most ${TAG_KEY_LIMIT} characters and values at most ${TAG_VALUE_LIMIT}` };
  }
  for (const name in e.tokens) {
    const n = e.tokens[name as keyof typeof e.tokens];
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_TOKENS) return { field: `tokens.${name}`, reason: `its ${name} token count must be a whole number from 0 to ${MAX_TOKENS}` };
  }
  if (e.latency_ms !== null && (!Number.isSafeInteger(e.latency_ms) || e.latency_ms < 0 || e.latency_ms > MAX_LATENCY_MS))
    return { field: "latency_ms", reason: `its latency must be a whole number of milliseconds from 0 to ${MAX_LATENCY_MS}` };
  return costFault("reported_cost", e.reported_cost) ?? ("cost" in e ? costFault("cost", e.cost) : undefined);
}

/** Why a cost cannot be stored (beyond what one call can cost), or undefined. */
function costFault(field: "cost" | "reported_cost", cost: bigint | null): { field: string; reason: string } | undefined {
  if (cost === null || (cost >= 0n && cost <= MAX_EVENT_COST_PICO)) return undefined;
  return { field, reason: `its ${field === "cost" ? "computed cost" : "reported cost"} must be from 0 to ${MAX_EVENT_COST_PICO / 1_000_000_000_000n} USD` };
}

/**
 * The event and its price as a new object, copied field by field: `{ ...event, cost, priced }` took
 * ~20 µs a call in Node 20 (properties added to a spread copy of a ~20-field object leave V8's fast
 * path), this ~0.1 µs. Every field is copied (FIELDS_COPIED fails to compile when one is added).
 */
function withPrice(e: UsageEvent, cost: bigint, priced: boolean): PricedEvent {
  const out: PricedEvent = {
    source: e.source,
    id: e.id,
    ts: e.ts,
    provider: e.provider,
    model: e.model,
    tokens: e.tokens,
    service_tier: e.service_tier,
    reported_cost: e.reported_cost,
    latency_ms: e.latency_ms,
    status: e.status,
    team: e.team,
    project: e.project,
    feature: e.feature,
    user: e.user,
    session: e.session,
    api_key_id: e.api_key_id,
    tags: e.tags,
    request_id: e.request_id,
    cost,
    priced,
  };
  if (e.usage_unknown !== undefined) out.usage_unknown = e.usage_unknown;
  if (e.estimated !== undefined) out.estimated = e.estimated;
  return out;
}
type Copied = "source" | "id" | "ts" | "provider" | "model" | "tokens" | "service_tier" | "reported_cost" | "latency_ms" | "status" | "team" | "project" | "feature" | "user" | "session" | "api_key_id" | "tags" | "request_id" | "usage_unknown" | "estimated" | "cost" | "priced";
const FIELDS_COPIED: [Exclude<keyof PricedEvent, Copied>] extends [never] ? true : never = true;
void FIELDS_COPIED;

export function eventBuilder(price: Pricer): EventBuilder {
  const finish = (seen: UsageEvent, priceOf: (event: UsageEvent) => PriceResult): Built => {
    // The same provider whichever door it came through and however it was spelled (`x-ai`, `Google`, `Azure`).
    const provider = normaliseProvider(seen.provider);
    const event = provider === seen.provider ? seen : { ...seen, provider };
    const seenFault = whyUnstorable(event);
    if (seenFault) return { ok: false, ...seenFault, seen: event };
    const { cost, priced } = priceOf(event);
    // The price too: a catalogue price times a bounded token count can still be beyond what one call
    // costs. The rest of the event was checked just above.
    const pricedFault = costFault("cost", cost);
    if (pricedFault) return { ok: false, ...pricedFault, seen: event };
    return { ok: true, event: withPrice(event, cost, priced) as LedgerEvent };
  };
  return {
    build: (seen) => finish(seen, price),
    restore: (kept, known) => finish(kept, () => known),
  };
}
