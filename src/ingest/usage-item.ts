import { z } from "zod";
import { type Attribution, CallStatus, MAX_EVENT_COST_USD, MAX_TOKENS, ServiceTier, Tokens, type UsageEvent } from "../ledger/event.ts";
import type { EventBuilder, LedgerEvent } from "../ledger/build-event.ts";
import { extractUsage } from "../providers/registry.ts";
import { decimalUsdToPico } from "../pricing/money.ts";
import { type FieldError, fieldErrors } from "../errors.ts";
import { fastTokens, fastUsageItem } from "./usage-item-fast.ts";

/** Events dated further ahead than this are a sender's clock or bug, not usage. */
export const MAX_FUTURE_MS = 24 * 60 * 60 * 1000;

const count = z.number().int().min(0).max(MAX_TOKENS);
/**
 * A string map. zod drops a `__proto__` key without a word (it will not set an object's
 * prototype), so such a tag is refused by name instead of vanishing from the event.
 */
const Tags = z
  .unknown()
  .superRefine((value, ctx) => {
    if (typeof value === "object" && value !== null && Object.hasOwn(value, "__proto__"))
      ctx.addIssue({ code: "custom", path: ["__proto__"], message: "__proto__ cannot be a tag key; choose another name" });
  })
  .pipe(z.record(z.string().min(1).max(100), z.string().max(500)));

const label = z.string().trim().min(1).max(200);

/** One usage event as senders post it (snake_case, tokens as the sender counts them). */
export const UsageItem = z
  .strictObject({
    id: z.string().min(1).max(200),
    timestamp: z.iso.datetime({ offset: true }).optional(),
    provider: z.string().max(100).optional(),
    model: z.string().min(1).max(200),
    input_tokens: count.optional(),
    cached_input_tokens: count.optional(),
    cache_write_tokens: count.optional(),
    cache_write_1h_tokens: count.optional(),
    output_tokens: count.optional(),
    reasoning_tokens: count.optional(),
    usage: z.record(z.string(), z.unknown()).optional(),
    service_tier: ServiceTier.optional(),
    cost_usd: z.union([z.number().min(0).max(MAX_EVENT_COST_USD), z.string().regex(/^\d+(\.\d+)?$/, "a decimal number of USD")]).optional(),
    latency_ms: z.number().int().min(0).max(86_400_000).optional(),
    status: CallStatus.exclude(["aborted"]).optional(),
    team: label.optional(),
    project: label.optional(),
    feature: label.optional(),
    user: label.optional(),
    session: label.optional(),
    tags: Tags.optional(),
    request_id: z.string().max(200).optional(),
  })
  .superRefine((item, ctx) => {
    const tokenFields = ["input_tokens", "cached_input_tokens", "cache_write_tokens", "cache_write_1h_tokens", "output_tokens", "reasoning_tokens"] as const;
    if (item.usage && tokenFields.some((f) => item[f] !== undefined))
      ctx.addIssue({ code: "custom", path: ["usage"], message: "give either `usage` or the *_tokens fields, not both" });
  });
export type UsageItem = z.infer<typeof UsageItem>;

/** CloudEvents 1.0 envelope carrying a usage item (without its id) in `data`. */
export const UsageCloudEvent = z.object({
  specversion: z.literal("1.0"),
  id: z.string().min(1).max(200),
  source: z.string().min(1).max(200),
  type: z.string().min(1),
  time: z.iso.datetime({ offset: true }).optional(),
  data: z.record(z.string(), z.unknown()),
});

/** Attribution the authenticated sender is bound to; it wins over what an item says. */
export interface SenderContext extends Partial<Pick<Attribution, "team" | "project" | "feature" | "user" | "api_key_id">> {
  source: string;
  now: Date;
}

/**
 * The tags of every item that gives none: one object, frozen, rather than one per event, each kept
 * (with the event) until its batch commits.
 */
const NO_TAGS: Record<string, string> = Object.freeze({});

type Result = { ok: true; event: LedgerEvent } | { ok: false; id: string | null; errors: FieldError[] };

/** Our token field names as senders spell them, for error paths. */
const TOKEN_FIELD: Record<string, string> = {
  input: "input_tokens",
  cached_input: "cached_input_tokens",
  cache_write: "cache_write_tokens",
  cache_write_1h: "cache_write_1h_tokens",
  output: "output_tokens",
  reasoning: "reasoning_tokens",
};

/** A UsageEvent field as senders name it, for an error's path ('' where the sender gave no such field). */
function senderField(field: string): string {
  if (field.startsWith("tokens.")) return TOKEN_FIELD[field.slice("tokens.".length)] ?? "";
  const named: Record<string, string> = { ts: "timestamp", reported_cost: "cost_usd", source: "", api_key_id: "", cost: "" };
  return named[field] ?? field;
}

const idOf = (value: unknown): string | null => {
  const id = (value as { id?: unknown } | null)?.id;
  return typeof id === "string" ? id : null;
};

function tokensOf(item: UsageItem): { ok: true; tokens: Tokens; tier?: z.infer<typeof ServiceTier>; cost?: string } | { ok: false; errors: FieldError[] } {
  if (item.usage) {
    const extracted = extractUsage(item.usage, item.provider);
    if (!extracted.ok) return { ok: false, errors: [{ path: extracted.error.path ? `usage.${extracted.error.path}` : "usage", message: extracted.error.message }] };
    return { ok: true, tokens: extracted.usage.tokens, tier: extracted.usage.service_tier, cost: extracted.usage.cost_usd };
  }
  const counts = {
    input: item.input_tokens,
    cached_input: item.cached_input_tokens,
    cache_write: item.cache_write_tokens,
    cache_write_1h: item.cache_write_1h_tokens,
    output: item.output_tokens,
    reasoning: item.reasoning_tokens,
  };
  const fast = fastTokens(counts);
  if (fast) return { ok: true, tokens: fast };
  const parsed = Tokens.safeParse(counts);
  if (!parsed.success)
    return { ok: false, errors: parsed.error.issues.map((i) => ({ path: TOKEN_FIELD[String(i.path[0])] ?? String(i.path[0]), message: i.message })) };
  return { ok: true, tokens: parsed.data };
}

/** Validates one posted item and builds the ledger's event from it, bound to its sender. */
export function toUsageEvent(value: unknown, ctx: SenderContext, builder: EventBuilder): Result {
  let item = fastUsageItem(value);
  if (!item) {
    const parsed = UsageItem.safeParse(value);
    if (!parsed.success) return { ok: false, id: idOf(value), errors: fieldErrors(parsed.error.issues) };
    item = parsed.data;
  }
  const ts = item.timestamp ? new Date(item.timestamp) : ctx.now;
  if (ts.getTime() - ctx.now.getTime() > MAX_FUTURE_MS)
    return { ok: false, id: item.id, errors: [{ path: "timestamp", message: "must not be more than 24 hours in the future" }] };
  const tokens = tokensOf(item);
  if (!tokens.ok) return { ok: false, id: item.id, errors: tokens.errors };
  const reported = item.cost_usd ?? tokens.cost;
  const reportedCost = reported === undefined ? null : decimalUsdToPico(String(reported));
  if (reportedCost !== null && typeof reportedCost !== "bigint")
    return { ok: false, id: item.id, errors: [{ path: "cost_usd", message: reportedCost.message }] };
  // Every part was validated above; the event is assembled, not parsed a second time, and bound to
  // its sender as it is (as bindToSender would, without a second copy of every event).
  const seen: UsageEvent = {
    source: ctx.source,
    id: item.id,
    ts,
    provider: item.provider ?? "",
    model: item.model,
    tokens: tokens.tokens,
    service_tier: item.service_tier ?? tokens.tier ?? "standard",
    reported_cost: reportedCost,
    latency_ms: item.latency_ms ?? null,
    status: item.status ?? "ok",
    team: ctx.team ?? item.team ?? null,
    project: ctx.project ?? item.project ?? null,
    feature: ctx.feature ?? item.feature ?? null,
    user: ctx.user ?? item.user ?? null,
    session: item.session ?? null,
    api_key_id: ctx.api_key_id ?? null,
    tags: item.tags ?? NO_TAGS,
    request_id: item.request_id ?? null,
  };
  const built = builder.build(seen);
  if (!built.ok) return { ok: false, id: item.id, errors: [{ path: senderField(built.field), message: built.reason }] };
  return built;
}

/** A key's own attribution cannot be overridden by what the sender puts in an event. */
export function bindToSender(event: UsageEvent, ctx: SenderContext): UsageEvent {
  return {
    ...event,
    team: ctx.team ?? event.team,
    project: ctx.project ?? event.project,
    feature: ctx.feature ?? event.feature,
    user: ctx.user ?? event.user,
    api_key_id: ctx.api_key_id ?? event.api_key_id,
  };
}

/** Unwraps a CloudEvent: its id and source become the event's identity for dedupe. */
export function fromCloudEvent(value: unknown, ctx: SenderContext, builder: EventBuilder): Result {
  const envelope = UsageCloudEvent.safeParse(value);
  if (!envelope.success) return { ok: false, id: idOf(value), errors: fieldErrors(envelope.error.issues) };
  const ce = envelope.data;
  const item = { timestamp: ce.time, ...ce.data, id: ce.id };
  const result = toUsageEvent(item, { ...ctx, source: `ce:${ce.source}` }, builder);
  if (result.ok) return result;
  return { ...result, errors: result.errors.map((e) => ({ ...e, path: e.path ? `data.${e.path}` : "data" })) };
}
