import type { PriceResult, PricingInput } from "../pricing/cost.ts";
import { normaliseProvider } from "../providers/registry.ts";
import type { PricedEvent, UsageEvent } from "./event.ts";

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

/** The built event, or why Postgres could never store what the door saw (kept so it can be put aside). */
export type Built = { ok: true; event: LedgerEvent } | { ok: false; reason: string; seen: UsageEvent };

export type Pricer = (event: PricingInput) => PriceResult;

export interface EventBuilder {
  build(seen: UsageEvent): Built;
  /** An event this ledger built and kept (the journal), read back with the price it was built with: checked, not priced again. */
  restore(kept: UsageEvent, price: PriceResult): Built;
}

/**
 * Why Postgres would refuse this event (and with it every event sharing its batch), or undefined:
 * text cannot hold NUL, and timestamptz reads only the years 1 to 9999 in ISO form.
 */
export function whyUnstorable(e: UsageEvent): string | undefined {
  const year = e.ts.getUTCFullYear();
  if (!(year >= 1 && year <= 9999)) return "its time must be within the years 1 to 9999";
  const texts = [e.source, e.id, e.provider, e.model, e.team, e.project, e.feature, e.user, e.session, e.api_key_id, e.request_id];
  for (const [k, v] of Object.entries(e.tags)) texts.push(k, v);
  if (texts.some((t) => t?.includes("\u0000"))) return "its text must not contain NUL characters";
  return undefined;
}

export function eventBuilder(price: Pricer): EventBuilder {
  const finish = (seen: UsageEvent, priceOf: (event: UsageEvent) => PriceResult): Built => {
    // The same provider whichever door it came through and however it was spelled (`x-ai`, `Google`, `Azure`).
    const provider = normaliseProvider(seen.provider);
    const event = provider === seen.provider ? seen : { ...seen, provider };
    const reason = whyUnstorable(event);
    if (reason) return { ok: false, reason, seen: event };
    const { cost, priced } = priceOf(event);
    return { ok: true, event: { ...event, cost, priced } as LedgerEvent };
  };
  return {
    build: (seen) => finish(seen, price),
    restore: (kept, known) => finish(kept, () => known),
  };
}
