import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { spansToEvents } from "../src/ingest/otlp.ts";
import type { Tokens, UsageEvent } from "../src/ledger/event.ts";

type Scalar = string | number | boolean;

/** OTLP JSON attributes; integers as int64 strings, as OTLP exporters write them. */
const attributes = (attrs: Record<string, Scalar>) =>
  Object.entries(attrs).map(([key, v]) => ({
    key,
    value:
      typeof v === "string" ? { stringValue: v } : typeof v === "boolean" ? { boolValue: v } : Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v },
  }));

const TRACE = "5b8efff798038103d269b633813fc60c";
let nextSpan = 0;
const spanId = () => (++nextSpan).toString(16).padStart(16, "0");

function span(attrs: Record<string, Scalar>, extra: Record<string, unknown> = {}) {
  return {
    traceId: TRACE,
    spanId: spanId(),
    parentSpanId: "",
    name: "chat",
    kind: 3,
    startTimeUnixNano: "1735689600000000000",
    endTimeUnixNano: "1735689601250000000",
    attributes: attributes(attrs),
    status: {},
    ...extra,
  };
}

function body(spans: unknown[], resource: Record<string, Scalar> = { "service.name": "checkout" }) {
  return {
    resourceSpans: [
      {
        resource: { attributes: attributes(resource) },
        scopeSpans: [{ scope: { name: "test-instrumentation", version: "1.0.0" }, spans }],
      },
    ],
  };
}

const tokens = (t: Partial<Tokens>): Tokens => ({ input: 0, cached_input: 0, cache_write: 0, cache_write_1h: 0, output: 0, reasoning: 0, ...t });

function only(result: ReturnType<typeof spansToEvents>): UsageEvent {
  assert.equal(result.rejectedSpans, 0, result.errorMessage);
  assert.equal(result.events.length, 1);
  return result.events[0]!;
}

describe("GenAI semantic conventions", () => {
  test("a current-convention span becomes one exact event", () => {
    const s = span({
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "openai",
      "gen_ai.request.model": "gpt-4o",
      "gen_ai.response.model": "gpt-4o-2024-08-06",
      "gen_ai.response.id": "chatcmpl-123",
      "gen_ai.usage.input_tokens": 10_000,
      "gen_ai.usage.output_tokens": 1_000,
      "gen_ai.usage.cache_read.input_tokens": 8_000,
      "gen_ai.usage.reasoning.output_tokens": 0,
      "openai.response.service_tier": "flex",
    });
    assert.deepEqual(only(spansToEvents(body([s]), { source: "otlp:test" })), {
      source: "otlp:test",
      id: `${TRACE}:${s.spanId}`,
      ts: new Date("2025-01-01T00:00:01.250Z"),
      provider: "openai",
      model: "gpt-4o-2024-08-06",
      tokens: tokens({ input: 10_000, cached_input: 8_000, output: 1_000 }),
      service_tier: "flex",
      reported_cost: null,
      latency_ms: 1_250,
      status: "ok",
      team: null,
      project: null,
      feature: null,
      user: null,
      session: null,
      api_key_id: null,
      tags: { service: "checkout" },
      request_id: "chatcmpl-123",
    });
  });

  test("legacy gen_ai.system with prompt/completion tokens; an error status is kept", () => {
    const s = span(
      {
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.prompt_tokens": 120,
        "gen_ai.usage.completion_tokens": 30,
      },
      { status: { code: 2, message: "rate limited after partial output" } },
    );
    const event = only(spansToEvents(body([s]), { source: "otlp" }));
    assert.equal(event.provider, "openai");
    assert.equal(event.model, "gpt-4o-mini");
    assert.deepEqual(event.tokens, tokens({ input: 120, output: 30 }));
    assert.equal(event.status, "error");
  });

  test("intValue may be a JSON number as well as an int64 string; a digit string counts too", () => {
    const s = span({ "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o" });
    s.attributes.push({ key: "gen_ai.usage.input_tokens", value: { intValue: 42 } } as never);
    s.attributes.push({ key: "gen_ai.usage.output_tokens", value: { stringValue: "7" } });
    assert.deepEqual(only(spansToEvents(body([s]), { source: "otlp" })).tokens, tokens({ input: 42, output: 7 }));
  });

  test("Anthropic counts passed through disjoint (cache larger than input) are summed into input", () => {
    const s = span({
      "gen_ai.provider.name": "anthropic",
      "gen_ai.request.model": "claude-sonnet-4-5",
      "gen_ai.usage.input_tokens": 1_000,
      "gen_ai.usage.cache_read.input_tokens": 5_000,
      "gen_ai.usage.cache_creation.input_tokens": 4_000,
      "gen_ai.usage.output_tokens": 500,
    });
    assert.deepEqual(only(spansToEvents(body([s]), { source: "otlp" })).tokens, tokens({ input: 10_000, cached_input: 5_000, cache_write: 4_000, output: 500 }));
  });
});

describe("OpenLLMetry", () => {
  test("Anthropic span: input already includes the cache; association properties attribute the call", () => {
    const s = span({
      "gen_ai.system": "Anthropic",
      "llm.request.type": "chat",
      "gen_ai.request.model": "claude-sonnet-4-5",
      "gen_ai.response.model": "claude-sonnet-4-5-20250929",
      "gen_ai.usage.input_tokens": 10_000,
      "gen_ai.usage.output_tokens": 500,
      "llm.usage.total_tokens": 10_500,
      "gen_ai.usage.cache_read_input_tokens": 5_000,
      "gen_ai.usage.cache_creation_input_tokens": 4_000,
      "traceloop.association.properties.team": "search",
      "traceloop.association.properties.user_id": "u-42",
      "traceloop.association.properties.session_id": "s-1",
      "traceloop.association.properties.chat_id": "c-9",
    });
    const event = only(spansToEvents(body([s]), { source: "otlp" }));
    assert.equal(event.provider, "anthropic");
    assert.equal(event.model, "claude-sonnet-4-5-20250929");
    assert.deepEqual(event.tokens, tokens({ input: 10_000, cached_input: 5_000, cache_write: 4_000, output: 500 }));
    assert.deepEqual([event.team, event.user, event.session], ["search", "u-42", "s-1"]);
    assert.deepEqual(event.tags, { service: "checkout", chat_id: "c-9" });
  });
});

describe("Vercel AI SDK", () => {
  const outer = (usage: Record<string, Scalar>) =>
    span({
      "operation.name": "ai.generateText support-reply",
      "ai.operationId": "ai.generateText",
      "ai.model.id": "claude-sonnet-4-5",
      "ai.model.provider": "anthropic.messages",
      "ai.telemetry.functionId": "support-reply",
      ...usage,
    });
  const inner = (usage: Record<string, Scalar>) =>
    span({
      "operation.name": "ai.generateText.doGenerate support-reply",
      "ai.operationId": "ai.generateText.doGenerate",
      "ai.model.id": "claude-sonnet-4-5",
      "ai.model.provider": "anthropic.messages",
      "gen_ai.system": "anthropic.messages",
      "gen_ai.request.model": "claude-sonnet-4-5",
      "gen_ai.response.model": "claude-sonnet-4-5-20250929",
      "ai.telemetry.metadata.feature": "summarise",
      "ai.telemetry.metadata.userId": "u-7",
      "ai.telemetry.metadata.tenant": "acme",
      ...usage,
    });

  test("outer and inner spans of one call are counted once, from the inner span", () => {
    const usage = { "ai.usage.promptTokens": 300, "ai.usage.completionTokens": 40 };
    const result = spansToEvents(body([inner({ ...usage, "gen_ai.usage.input_tokens": 300, "gen_ai.usage.output_tokens": 40 }), outer(usage)]), {
      source: "otlp",
    });
    const event = only(result);
    assert.equal(event.provider, "anthropic");
    assert.equal(event.model, "claude-sonnet-4-5-20250929");
    assert.deepEqual(event.tokens, tokens({ input: 300, output: 40 }));
    assert.deepEqual([event.feature, event.user], ["summarise", "u-7"]);
    assert.deepEqual(event.tags, { service: "checkout", tenant: "acme" });
  });

  test("a multi-step call is one event per step, and an outer span arriving alone adds nothing", () => {
    const steps = [inner({ "ai.usage.inputTokens": 100, "ai.usage.outputTokens": 10 }), inner({ "ai.usage.inputTokens": 150, "ai.usage.outputTokens": 20 })];
    const first = spansToEvents(body(steps), { source: "otlp" });
    assert.deepEqual(
      first.events.map((e) => [e.tokens.input, e.tokens.output]),
      [
        [100, 10],
        [150, 20],
      ],
    );
    const later = spansToEvents(body([outer({ "ai.usage.inputTokens": 250, "ai.usage.outputTokens": 30 })]), { source: "otlp" });
    assert.deepEqual(later, { events: [], rejectedSpans: 0 });
  });

  test("before v6, Anthropic input excluded cache reads; v6 input includes them", () => {
    const v5 = inner({ "ai.usage.inputTokens": 4_000, "ai.usage.cachedInputTokens": 3_000, "ai.usage.outputTokens": 50 });
    const v6 = inner({
      "ai.usage.inputTokens": 7_000,
      "ai.usage.inputTokenDetails.noCacheTokens": 4_000,
      "ai.usage.inputTokenDetails.cacheReadTokens": 3_000,
      "ai.usage.outputTokens": 50,
    });
    const [fromV5, fromV6] = spansToEvents(body([v5, v6]), { source: "otlp" }).events;
    assert.deepEqual(fromV5?.tokens, tokens({ input: 7_000, cached_input: 3_000, output: 50 }));
    assert.deepEqual(fromV6?.tokens, tokens({ input: 7_000, cached_input: 3_000, output: 50 }));
  });

  test("a provider's name arrives as every door spells it: x-ai, google and Azure are xai, gemini and azure", () => {
    const names = ["x-ai", "google", "Azure", "xai", "gemini", "azure"].map((name) =>
      only(spansToEvents(body([span({ "gen_ai.provider.name": name, "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 1 })]), { source: "otlp" })).provider,
    );
    assert.deepEqual(names, ["xai", "gemini", "azure", "xai", "gemini", "azure"]);
    // Azure speaks OpenAI's API, so OpenAI's service tier attribute is read for it too.
    const flex = span({ "gen_ai.provider.name": "Azure", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1, "openai.response.service_tier": "flex" });
    assert.equal(only(spansToEvents(body([flex]), { source: "otlp" })).service_tier, "flex");
  });

  test("before v6, Gemini output excluded thoughts", () => {
    const s = span({
      "ai.operationId": "ai.streamText.doStream",
      "ai.model.id": "gemini-2.5-flash",
      "ai.model.provider": "google.generative-ai",
      "ai.usage.inputTokens": 26,
      "ai.usage.outputTokens": 600,
      "ai.usage.reasoningTokens": 400,
    });
    const event = only(spansToEvents(body([s]), { source: "otlp" }));
    assert.equal(event.provider, "gemini");
    assert.deepEqual(event.tokens, tokens({ input: 26, output: 1_000, reasoning: 400 }));
  });
});

describe("which spans count", () => {
  test("spans that are not GenAI calls are ignored, not rejected", () => {
    const http = span({ "http.request.method": "POST", "url.full": "https://api.example.com/orders" });
    const noTokens = span({ "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o" });
    const noModel = span({ "gen_ai.usage.input_tokens": 5 });
    assert.deepEqual(spansToEvents(body([http, noTokens, noModel]), { source: "otlp" }), { events: [], rejectedSpans: 0 });
  });

  test("GenAI spans with bad token counts are rejected and counted; good ones beside them are kept", () => {
    const good = span({ "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10 });
    const negative = span({ "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": -5 });
    const words = span({ "gen_ai.request.model": "gpt-4o", "gen_ai.usage.output_tokens": "lots" });
    const fraction = span({ "gen_ai.request.model": "gpt-4o", "gen_ai.usage.output_tokens": 2.5 });
    const result = spansToEvents(body([negative, good, words, fraction]), { source: "otlp" });
    assert.deepEqual(
      result.events.map((e) => e.id),
      [`${TRACE}:${good.spanId}`],
    );
    assert.equal(result.rejectedSpans, 3);
    assert.match(result.errorMessage ?? "", /^3 spans rejected: /);
    assert.match(result.errorMessage ?? "", new RegExp(`${negative.spanId}: gen_ai\\.usage\\.input_tokens must be a whole number.*got -5`));
    assert.match(result.errorMessage ?? "", /gen_ai\.usage\.output_tokens must be a whole number.*got "lots"/);
    assert.match(result.errorMessage ?? "", /got 2\.5/);
  });

  test("malformed spans and spans without a time are rejected; a body that is not OTLP says so", () => {
    const noTrace = { ...span({ "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1 }), traceId: "" };
    const noTime = span({ "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1 }, { startTimeUnixNano: "0", endTimeUnixNano: "0" });
    const result = spansToEvents(body([noTrace, noTime]), { source: "otlp" });
    assert.equal(result.rejectedSpans, 2);
    assert.match(result.errorMessage ?? "", /traceId: expected a 32-digit hex trace id/);
    assert.match(result.errorMessage ?? "", /has neither startTimeUnixNano nor endTimeUnixNano/);

    const notOtlp = spansToEvents({ resourceSpans: "nope" }, { source: "otlp" });
    assert.deepEqual(notOtlp.events, []);
    assert.equal(notOtlp.rejectedSpans, 0);
    assert.match(notOtlp.errorMessage ?? "", /^not an OTLP ExportTraceServiceRequest: resourceSpans/);
  });

  test("a span ending more than 24 hours after now is rejected; one within the bound is kept", () => {
    const now = new Date("2025-01-01T00:00:00Z");
    const nanos = (ms: number) => `${BigInt(now.getTime() + ms) * 1_000_000n}`;
    const attrs = { "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1 };
    const soon = span(attrs, { startTimeUnixNano: nanos(23 * 3_600_000), endTimeUnixNano: nanos(23 * 3_600_000 + 500) });
    const later = span(attrs, { startTimeUnixNano: nanos(25 * 3_600_000), endTimeUnixNano: nanos(25 * 3_600_000 + 500) });
    const result = spansToEvents(body([soon, later]), { source: "otlp", now });
    assert.equal(result.events.length, 1);
    assert.equal(result.events[0]!.id, `${TRACE}:${soon.spanId}`.toLowerCase());
    assert.equal(result.rejectedSpans, 1);
    assert.match(result.errorMessage ?? "", /ends more than 24 hours in the future/);
  });

  test("an empty export is fine", () => {
    assert.deepEqual(spansToEvents({}, { source: "otlp" }), { events: [], rejectedSpans: 0 });
  });
});

describe("attribution", () => {
  test("resource attributes fill what the span leaves open; the span wins where both speak", () => {
    const s = span({
      "gen_ai.provider.name": "openai",
      "gen_ai.request.model": "gpt-4o",
      "gen_ai.usage.input_tokens": 1,
      "tollgate.team": "payments",
      "user.id": "u-1",
      "session.id": "sess-9",
    });
    const resource = { "service.name": "billing-api", "tollgate.team": "platform", "tollgate.project": "ledger", "enduser.id": "ignored-when-span-has-user" };
    const event = only(spansToEvents(body([s], resource), { source: "otlp" }));
    assert.deepEqual([event.team, event.project, event.feature, event.user, event.session], ["payments", "ledger", null, "u-1", "sess-9"]);
    assert.deepEqual(event.tags, { service: "billing-api" });
  });

  test("tollgate keys win over metadata; the SDK's default service name is not a tag", () => {
    const s = span({
      "gen_ai.request.model": "gpt-4o",
      "gen_ai.usage.input_tokens": 1,
      "tollgate.feature": "search",
      "ai.telemetry.metadata.feature": "other",
    });
    const event = only(spansToEvents(body([s], { "service.name": "unknown_service:node" }), { source: "otlp" }));
    assert.equal(event.feature, "search");
    assert.deepEqual(event.tags, {});
  });
});
