import { z } from "zod";
import { type Attribution, MAX_TOKENS, type Tokens, UsageEvent } from "../ledger/event.ts";
import { normaliseProvider, providerNamed } from "../providers/registry.ts";
import type { OtlpQuirks } from "../providers/types.ts";
import { MAX_FUTURE_MS } from "./usage-item.ts";

/*
 * OTLP/HTTP JSON traces → usage events. A span is a GenAI call when it names a model and carries at
 * least one token count; every other span is ignored, not rejected. Spans that are GenAI calls but
 * cannot be recorded (unreadable token counts, no time) are rejected and counted, as OTLP's
 * `partialSuccess` reports them; their neighbours are kept.
 */

// ---- the wire format ----

/** An OTLP AnyValue. int64 travels as a decimal string; kvlist and bytes values carry nothing we read. */
const AnyValue = z.object({
  stringValue: z.string().optional(),
  intValue: z.union([z.string(), z.number()]).optional(),
  // proto3 JSON spells non-finite doubles as strings ("NaN", "Infinity").
  doubleValue: z.union([z.number(), z.string()]).optional(),
  boolValue: z.boolean().optional(),
  get arrayValue() {
    return z.object({ values: z.array(AnyValue).default([]) }).optional();
  },
});
type AnyValue = z.infer<typeof AnyValue>;

const KeyValues = z.array(z.object({ key: z.string(), value: AnyValue.optional() })).default([]);

/** Nanoseconds since the epoch; 0 is how OTLP says "not set". */
const unixNano = z.union([z.string().regex(/^\d+$/), z.number().int().min(0)]).transform((v) => BigInt(v) || undefined);

const Span = z.object({
  traceId: z.string().regex(/^[0-9a-f]{32}$/i, "expected a 32-digit hex trace id"),
  spanId: z.string().regex(/^[0-9a-f]{16}$/i, "expected a 16-digit hex span id"),
  startTimeUnixNano: unixNano.optional(),
  endTimeUnixNano: unixNano.optional(),
  attributes: KeyValues,
  status: z.object({ code: z.union([z.number(), z.string()]).optional() }).optional(),
});
type Span = z.infer<typeof Span>;

/** Spans are read one by one, so one malformed span does not cost its neighbours. */
const ExportTraceServiceRequest = z.object({
  resourceSpans: z
    .array(
      z.object({
        resource: z.object({ attributes: KeyValues }).optional(),
        scopeSpans: z.array(z.object({ spans: z.array(z.unknown()).default([]) })).default([]),
      }),
    )
    .default([]),
});

type AttrValue = string | number | boolean | readonly AttrValue[];
type Attributes = ReadonlyMap<string, AttrValue>;

function valueOf(v: AnyValue | undefined): AttrValue | undefined {
  if (v?.stringValue !== undefined) return v.stringValue;
  // A non-numeric int64 string stays a string, so a token count holding one is rejected, not zeroed.
  if (v?.intValue !== undefined) return typeof v.intValue === "string" && /^-?\d+$/.test(v.intValue) ? Number(v.intValue) : v.intValue;
  if (v?.doubleValue !== undefined) return Number(v.doubleValue);
  if (v?.boolValue !== undefined) return v.boolValue;
  return v?.arrayValue?.values.map(valueOf).filter((x) => x !== undefined);
}

const attributesOf = (kvs: z.infer<typeof KeyValues>): Attributes =>
  new Map(kvs.flatMap(({ key, value }) => {
    const v = valueOf(value);
    return v === undefined ? [] : [[key, v] as const];
  }));

const stringIn = (attrs: Attributes, keys: readonly string[]): string | undefined =>
  keys.map((k) => attrs.get(k)).find((v): v is string => typeof v === "string" && v.trim() !== "")?.trim();

// ---- which attributes say what ----

const MODEL_KEYS = ["gen_ai.response.model", "gen_ai.request.model", "ai.response.model", "ai.model.id"];
const PROVIDER_KEYS = ["gen_ai.provider.name", "gen_ai.system", "ai.model.provider"];
const RESPONSE_ID_KEYS = ["gen_ai.response.id", "ai.response.id"];

/**
 * Token counts, current GenAI convention names first, then the older names, OpenLLMetry's and the
 * Vercel AI SDK's (v6 `inputTokenDetails`/`outputTokenDetails`, v5 `inputTokens`, v4 `promptTokens`).
 */
const TOKEN_KEYS = {
  input: ["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "ai.usage.inputTokens", "ai.usage.promptTokens"],
  output: ["gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "ai.usage.outputTokens", "ai.usage.completionTokens"],
  cacheRead: [
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "ai.usage.inputTokenDetails.cacheReadTokens",
    "ai.usage.cachedInputTokens",
  ],
  cacheWrite: [
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "ai.usage.inputTokenDetails.cacheWriteTokens",
  ],
  reasoning: ["gen_ai.usage.reasoning.output_tokens", "ai.usage.outputTokenDetails.reasoningTokens", "ai.usage.reasoningTokens"],
} as const;
type TokenClass = keyof typeof TOKEN_KEYS;
type Counts = Partial<Record<TokenClass, number>>;

function countOf(value: AttrValue): number | undefined {
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  return typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= MAX_TOKENS ? n : undefined;
}

/** The first present name of each token class; `found` is false when the span has no token count at all. */
function readCounts(attrs: Attributes): { found: boolean; counts: Counts; problems: string[] } {
  const read = (Object.keys(TOKEN_KEYS) as TokenClass[]).flatMap((cls) => {
    const key = TOKEN_KEYS[cls].find((k) => attrs.has(k));
    const value = key === undefined ? undefined : attrs.get(key);
    return key === undefined || value === undefined ? [] : [{ cls, key, value, count: countOf(value) }];
  });
  return {
    found: read.length > 0,
    counts: Object.fromEntries(read.flatMap((r) => (r.count === undefined ? [] : [[r.cls, r.count]]))),
    problems: read
      .filter((r) => r.count === undefined)
      .map((r) => `${r.key} must be a whole number of tokens from 0 to ${MAX_TOKENS}, got ${JSON.stringify(r.value)}`),
  };
}

const isAiSdkSpan = (attrs: Attributes): boolean => attrs.has("ai.operationId") || attrs.has("ai.model.provider");

/**
 * The AI SDK's top-level spans (`ai.generateText`, `ai.streamText`, `ai.generateObject`, …) carry
 * the usage summed over all their steps, and every step's model call has its own inner
 * `….doGenerate` / `….doStream` span with that call's usage. Only the inner spans are calls. The
 * outer span is skipped whether or not its inner spans are in the same request: exporters batch
 * finished spans, so the inner ones usually arrive in an earlier export than the outer one.
 */
function isAiSdkAggregate(attrs: Attributes): boolean {
  const operation = attrs.get("ai.operationId");
  return typeof operation === "string" && /^ai\.[A-Za-z]+$/.test(operation);
}

/**
 * Before v6 the AI SDK passed each provider's own counts through: Anthropic's input without cache
 * reads and writes, Gemini's output without thoughts. v6 made both totals inclusive and added the
 * `ai.usage.inputTokenDetails.*` / `outputTokenDetails.*` attributes, which is how v6 is told apart.
 */
const isPreV6AiSdk = (attrs: Attributes): boolean =>
  isAiSdkSpan(attrs) && ![...attrs.keys()].some((k) => k.startsWith("ai.usage.inputTokenDetails.") || k.startsWith("ai.usage.outputTokenDetails."));

/**
 * The GenAI conventions define `input_tokens` as all input, cache reads and writes included, and
 * `output_tokens` as including reasoning; OpenLLMetry's Anthropic instrumentation sums Anthropic's
 * three input classes to honour that. Senders that pass disjoint counts through instead are
 * recognised where the numbers prove it (a part larger than its whole) or the SDK version does.
 * No attribute splits cache writes by lifetime, so all are taken as 5-minute writes.
 */
function tokensOf(c: Counts, quirks: OtlpQuirks | undefined, attrs: Attributes): Tokens {
  const input = c.input ?? 0;
  const output = c.output ?? 0;
  const cached = c.cacheRead ?? 0;
  const written = c.cacheWrite ?? 0;
  const reasoning = c.reasoning ?? 0;
  const legacy = isPreV6AiSdk(attrs);
  const native = legacy ? quirks?.nativeCounts : undefined;
  const inputExcludesCache = input < cached + written || native?.inputExcludesCache === true;
  const outputExcludesReasoning = output < reasoning || native?.outputExcludesReasoning === true;
  return {
    input: inputExcludesCache ? input + cached + written : input,
    cached_input: cached,
    cache_write: written,
    cache_write_1h: 0,
    output: outputExcludesReasoning ? output + reasoning : output,
    reasoning,
  };
}

// ---- attribution ----

const DIMENSIONS = ["team", "project", "feature", "user", "session"] as const;
type Dimension = (typeof DIMENSIONS)[number];

/** Free-form metadata that instrumentations attach to every span of a call. */
const METADATA_PREFIXES = ["traceloop.association.properties.", "ai.telemetry.metadata."];
/** Metadata keys naming our dimensions, compared lowercased without separators (`user_id`, `userId`). */
const METADATA_DIMENSION: Readonly<Record<string, Dimension>> = {
  team: "team",
  project: "project",
  feature: "feature",
  user: "user",
  userid: "user",
  session: "session",
  sessionid: "session",
};
/** Where the OTel conventions themselves put a user or a session. */
const CONVENTION_KEYS: Readonly<Partial<Record<Dimension, readonly string[]>>> = {
  user: ["user.id", "enduser.id"],
  session: ["session.id", "gen_ai.conversation.id"],
};

const canonical = (key: string): string => key.toLowerCase().replace(/[^a-z]/g, "");

function metadataOf(attrs: Attributes): { key: string; value: AttrValue }[] {
  return [...attrs].flatMap(([key, value]) => {
    const prefix = METADATA_PREFIXES.find((p) => key.startsWith(p));
    return prefix && key.length > prefix.length ? [{ key: key.slice(prefix.length), value }] : [];
  });
}

const labelOf = (value: AttrValue | undefined): string | undefined => {
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
};

/** Our own `tollgate.*` keys win over framework metadata, which wins over the generic conventions. */
function dimensionIn(attrs: Attributes, dimension: Dimension): string | undefined {
  const candidates = [
    attrs.get(`tollgate.${dimension}`),
    ...metadataOf(attrs).filter((m) => METADATA_DIMENSION[canonical(m.key)] === dimension).map((m) => m.value),
    ...(CONVENTION_KEYS[dimension] ?? []).map((k) => attrs.get(k)),
  ];
  return candidates.map(labelOf).find((v) => v !== undefined);
}

/** A span says more about its call than its resource does about the whole process. */
function attributionOf(span: Attributes, resource: Attributes): Pick<Attribution, Dimension> {
  const entries = DIMENSIONS.map((d) => [d, dimensionIn(span, d) ?? dimensionIn(resource, d) ?? null] as const);
  return Object.fromEntries(entries) as Pick<Attribution, Dimension>;
}

/**
 * `service.name` is kept as the `service` tag but never stands in for a feature: features are
 * named by product teams, services by deployments, and an SDK without a configured name reports
 * `unknown_service:…`, which would otherwise become a feature of its own.
 */
function tagsOf(span: Attributes, resource: Attributes): Record<string, string> {
  const service = labelOf(resource.get("service.name"));
  const metadata = [...metadataOf(resource), ...metadataOf(span)]
    .filter((m) => METADATA_DIMENSION[canonical(m.key)] === undefined)
    .flatMap((m) => {
      const value = labelOf(m.value);
      return value === undefined ? [] : [[m.key, value] as const];
    });
  return Object.fromEntries([...(service && !service.startsWith("unknown_service") ? [["service", service] as const] : []), ...metadata]);
}

// ---- spans → events ----

const NANOS_PER_MS = 1_000_000n;

function timingOf(span: Span): { ts: Date; latency_ms: number | null } | undefined {
  const start = span.startTimeUnixNano;
  const end = span.endTimeUnixNano;
  const at = end ?? start;
  if (at === undefined) return undefined;
  const latency = start !== undefined && end !== undefined && end >= start ? Number((end - start + NANOS_PER_MS / 2n) / NANOS_PER_MS) : null;
  return { ts: new Date(Number(at / NANOS_PER_MS)), latency_ms: latency };
}

/** OTLP's STATUS_CODE_ERROR, as the JSON encoding's integer or as the enum's name. */
const isError = (span: Span): boolean => span.status?.code === 2 || span.status?.code === "STATUS_CODE_ERROR";

const firstIssue = (error: z.ZodError): string => {
  const issue = error.issues[0];
  const path = issue?.path.map(String).join(".");
  return path ? `${path}: ${issue?.message}` : (issue?.message ?? "invalid");
};

type Outcome = { kind: "event"; event: UsageEvent } | { kind: "ignored" } | { kind: "rejected"; reason: string };

const IGNORED: Outcome = { kind: "ignored" };
const rejected = (who: string, reason: string): Outcome => ({ kind: "rejected", reason: `span ${who}: ${reason}` });

function spanOutcome(raw: unknown, resource: Attributes, source: string, now: Date): Outcome {
  const parsed = Span.safeParse(raw);
  if (!parsed.success) {
    const spanId = (raw as { spanId?: unknown } | null)?.spanId;
    return rejected(typeof spanId === "string" ? spanId : "without a spanId", firstIssue(parsed.error));
  }
  const span = parsed.data;
  const attrs = attributesOf(span.attributes);
  const model = stringIn(attrs, MODEL_KEYS);
  const usage = readCounts(attrs);
  if (model === undefined || !usage.found || isAiSdkAggregate(attrs)) return IGNORED;

  const id = `${span.traceId}:${span.spanId}`.toLowerCase();
  if (usage.problems.length > 0) return rejected(id, usage.problems.join("; "));
  const timing = timingOf(span);
  if (!timing) return rejected(id, "has neither startTimeUnixNano nor endTimeUnixNano");
  // The same bound as the usage webhook's: a clock that far ahead would put spend in a period not yet begun.
  if (timing.ts.getTime() - now.getTime() > MAX_FUTURE_MS) return rejected(id, "ends more than 24 hours in the future");
  const provider = normaliseProvider(stringIn(attrs, PROVIDER_KEYS) ?? "");
  const quirks = provider ? providerNamed(provider).otlp : undefined;
  const tierText = quirks?.serviceTier && stringIn(attrs, quirks.serviceTier.keys);
  const event = UsageEvent.safeParse({
    source,
    id,
    ...timing,
    provider,
    model,
    tokens: tokensOf(usage.counts, quirks, attrs),
    service_tier: (tierText && quirks?.serviceTier?.read(tierText)) || "standard",
    status: isError(span) ? "error" : "ok",
    ...attributionOf(attrs, resource),
    tags: tagsOf(attrs, resource),
    request_id: stringIn(attrs, RESPONSE_ID_KEYS) ?? null,
  });
  return event.success ? { kind: "event", event: event.data } : rejected(id, firstIssue(event.error));
}

/** How many rejections are spelled out in `errorMessage`; the count covers all of them. */
const LISTED_REJECTIONS = 5;

function summary(reasons: string[]): string {
  const more = reasons.length - LISTED_REJECTIONS;
  const listed = reasons.slice(0, LISTED_REJECTIONS).join("; ");
  return `${reasons.length} span${reasons.length === 1 ? "" : "s"} rejected: ${listed}${more > 0 ? `; and ${more} more` : ""}`;
}

export interface SpansResult {
  events: UsageEvent[];
  /** GenAI spans that could not be recorded (OTLP `partialSuccess.rejectedSpans`). */
  rejectedSpans: number;
  /**
   * Why spans were rejected. Without events or rejections it means the body was not an
   * ExportTraceServiceRequest at all.
   */
  errorMessage?: string;
}

/** Maps an OTLP/HTTP JSON `ExportTraceServiceRequest` body to usage events; pure. */
export function spansToEvents(body: unknown, opts: { source: string; now?: Date }): SpansResult {
  const now = opts.now ?? new Date();
  const request = ExportTraceServiceRequest.safeParse(body);
  if (!request.success)
    return { events: [], rejectedSpans: 0, errorMessage: `not an OTLP ExportTraceServiceRequest: ${firstIssue(request.error)}` };
  const outcomes = request.data.resourceSpans.flatMap((rs) => {
    const resource = attributesOf(rs.resource?.attributes ?? []);
    return rs.scopeSpans.flatMap((scope) => scope.spans.map((span) => spanOutcome(span, resource, opts.source, now)));
  });
  const events = outcomes.flatMap((o) => (o.kind === "event" ? [o.event] : []));
  const reasons = outcomes.flatMap((o) => (o.kind === "rejected" ? [o.reason] : []));
  return reasons.length > 0 ? { events, rejectedSpans: reasons.length, errorMessage: summary(reasons) } : { events, rejectedSpans: 0 };
}
