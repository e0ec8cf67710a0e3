import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { describe, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { anthropic } from "../src/providers/anthropic/index.ts";
import { azure } from "../src/providers/azure/index.ts";
import { mergeCumulative } from "../src/providers/anthropic/wire.ts";
import { gemini } from "../src/providers/gemini/index.ts";
import { openAICompatible } from "../src/providers/openai/index.ts";
import { builtInProviders, providerNamed } from "../src/providers/registry.ts";
import { type SseTap, SseReader, sseStreamTap } from "../src/providers/sse.ts";
import type { Provider, StreamTap, UpstreamRequest } from "../src/providers/types.ts";
import type { NormalisedUsage } from "../src/providers/usage.ts";
import { ANTHROPIC_KEY, startFakeAnthropic } from "./fakes/anthropic.ts";
import { answerText } from "./fakes/fake-upstream.ts";
import { GEMINI_KEY, startFakeGemini } from "./fakes/gemini.ts";
import { OPENAI_KEY, startFakeOpenAI } from "./fakes/openai.ts";
import { tokens } from "./helpers/tokens.ts";

const openai = openAICompatible("openai");

/** What every fake reports, normalised: the numbers the ledger row must show. */
const OPENAI_TOKENS = tokens({ input: 1200, cached_input: 1024, output: 300, reasoning: 128 });
const ANTHROPIC_TOKENS = tokens({ input: 15_050, cached_input: 12_000, cache_write: 3000, cache_write_1h: 2000, output: 420 });
const GEMINI_TOKENS = tokens({ input: 2000, cached_input: 1500, output: 430, reasoning: 180 });

const noQuery = new URLSearchParams();

/** Chunk sizes that cut events, lines, `\r\n` pairs and multi-byte JSON at every kind of place. */
const SPLITS = [1, 2, 3, 5, 7, 16, 61, Number.MAX_SAFE_INTEGER];

/** Feeds `text` to a fresh tap in chunks of `size` bytes, as the transport does; returns what the client gets. */
function feed(tap: StreamTap, text: string, size: number): string {
  const bytes = Buffer.from(text);
  const forwarded: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) {
    const out = tap.push(bytes.subarray(i, i + size));
    if (out) forwarded.push(out);
  }
  const tail = tap.end();
  if (tail) forwarded.push(tail);
  return Buffer.concat(forwarded).toString("utf8");
}

/** Runs a stream through a fresh tap at every split; the client's bytes and the usage must not depend on chunking. */
function eachSplit(makeTap: () => StreamTap, text: string, check: (forwarded: string, tap: StreamTap) => void): void {
  for (const size of SPLITS) {
    const tap = makeTap();
    const forwarded = feed(tap, text, size);
    try {
      check(forwarded, tap);
    } catch (err) {
      assert.fail(`split every ${size} chars: ${(err as Error).message}`);
    }
  }
}

const sse = (data: unknown, event?: string) => `${event ? `event: ${event}\n` : ""}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`;

// ---------------------------------------------------------------------------------------------
// OpenAI-compatible
// ---------------------------------------------------------------------------------------------

const CHAT_USAGE = {
  prompt_tokens: 1200,
  completion_tokens: 300,
  total_tokens: 1500,
  prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 128, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
};

/** A chat stream as OpenAI sends it under include_usage: `"usage": null` on every chunk, then the usage-only one. */
function chatStream(options: { usageChunk: boolean } = { usageChunk: true }) {
  const base = { id: "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", object: "chat.completion.chunk", created: 1_725_000_000, model: "gpt-4o-2024-08-06", service_tier: "default", system_fingerprint: "fp_f5bdcc3276" };
  const tail = options.usageChunk ? { usage: null } : {};
  const theirs = [
    sse({ ...base, choices: [{ index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null }], ...tail }),
    sse({ ...base, choices: [{ index: 0, delta: { content: "Grüße — " }, logprobs: null, finish_reason: null }], ...tail }),
    sse({ ...base, choices: [{ index: 0, delta: { content: "usage: {\"x\"}" }, logprobs: null, finish_reason: null }], ...tail }),
    sse({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }], ...tail }),
  ];
  const usage = sse({ ...base, choices: [], usage: CHAT_USAGE });
  const done = sse("[DONE]");
  return { whole: theirs.join("") + (options.usageChunk ? usage : "") + done, withoutUsage: theirs.join("") + done };
}

describe("OpenAI-compatible: requests", () => {
  const chat = "/v1/chat/completions";
  const rewritten = (p: Provider, path: string, body: unknown) => {
    const out = p.inspect(path, body, noQuery, body === undefined ? undefined : Buffer.from(JSON.stringify(body))).rewritten;
    return out === undefined ? undefined : JSON.parse(out.toString("utf8"));
  };

  test("a chat stream that did not ask for usage gets include_usage, keeping every other field", () => {
    const body = { model: "gpt-4o", stream: true, messages: [{ role: "user", content: "hi" }], stream_options: { include_obfuscation: false }, temperature: 0.2 };
    assert.deepEqual(rewritten(openai, chat, body), { ...body, stream_options: { include_obfuscation: false, include_usage: true } });
    assert.deepEqual(rewritten(openai, chat, { model: "m", stream: true }), { model: "m", stream: true, stream_options: { include_usage: true } });
    assert.deepEqual(rewritten(openai, chat, { model: "m", stream: true, stream_options: null }), { model: "m", stream: true, stream_options: { include_usage: true } });
    // A client that said false still gets exactly what it asked for: the tap drops the chunk.
    assert.deepEqual(rewritten(openai, chat, { model: "m", stream: true, stream_options: { include_usage: false } }).stream_options, { include_usage: true });
    assert.deepEqual(rewritten(openai, "/v1/completions", { model: "m", stream: true }).stream_options, { include_usage: true });
  });

  test("a body without stream options goes on as the client wrote it, the option put first", () => {
    // JSON.parse holds neither the seed nor 1.0 as written: a body written again would change both.
    const text = ' \n{"model":"m","stream":true,"seed":12345678901234567890,"temperature":1.0,"messages":[{"role":"user","content":"h\\u00e9"}]}';
    const out = openai.inspect(chat, JSON.parse(text), noQuery, Buffer.from(text)).rewritten;
    assert.equal(out?.toString("utf8"), ' \n{"stream_options":{"include_usage":true},"model":"m","stream":true,"seed":12345678901234567890,"temperature":1.0,"messages":[{"role":"user","content":"h\\u00e9"}]}');
  });

  test("nothing is rewritten when the client asked for usage, does not stream, or the endpoint has no such option", () => {
    assert.equal(rewritten(openai, chat, { model: "m", stream: true, stream_options: { include_usage: true } }), undefined);
    assert.equal(rewritten(openai, chat, { model: "m", stream: false }), undefined);
    assert.equal(rewritten(openai, chat, { model: "m" }), undefined);
    assert.equal(rewritten(openai, "/v1/responses", { model: "m", stream: true }), undefined);
    assert.equal(rewritten(openai, "/v1/embeddings", { model: "m", stream: true }), undefined);
    // Not ours to fix: the upstream rejects it as it would have without the gateway.
    assert.equal(rewritten(openai, chat, { model: "m", stream: true, stream_options: "yes" }), undefined);
    assert.equal(rewritten(openai, chat, undefined), undefined);
  });

  test("upstreams that report stream usage unasked are left alone; the others get it injected", () => {
    for (const name of ["mistral", "openrouter", "groq"]) assert.equal(rewritten(openAICompatible(name), chat, { model: "m", stream: true }), undefined, name);
    for (const name of ["xai", "deepseek", "my-vllm"]) assert.ok(rewritten(openAICompatible(name), chat, { model: "m", stream: true }), name);
  });

  test("facts: model, stream and the `user` field; a mistyped field does not hide the others", () => {
    const facts = openai.inspect(chat, { model: "gpt-4o", stream: true, user: "u-42", stream_options: { include_usage: true } }, noQuery);
    assert.deepEqual(facts, { model: "gpt-4o", stream: true, user: "u-42", rewritten: undefined });
    assert.deepEqual(openai.inspect(chat, { model: 5, stream: "yes", user: "u-1" }, noQuery), { model: undefined, stream: false, user: "u-1", rewritten: undefined });
    assert.deepEqual(openai.inspect(chat, ["not", "an", "object"], noQuery), { model: undefined, stream: false, user: undefined, rewritten: undefined });
    assert.equal(openai.inspect("/v1/responses", { model: "o4-mini", user: "", safety_identifier: "s" }, noQuery).user, undefined);
  });
});

describe("OpenAI-compatible: stream taps", () => {
  const chat = "/v1/chat/completions";

  test("injected: the usage-only chunk is read, then dropped; the client gets its own chunks byte for byte", () => {
    const { whole, withoutUsage } = chatStream();
    eachSplit(() => openai.tap(chat, true), whole, (forwarded, tap) => {
      assert.equal(forwarded, withoutUsage);
      assert.deepEqual(tap.result(), { usage: { tokens: OPENAI_TOKENS, service_tier: "standard", model: "gpt-4o-2024-08-06" }, model: "gpt-4o-2024-08-06" });
    });
    // CRLF framing splits differently; the same events come out.
    const crlf = whole.replaceAll("\n", "\r\n");
    eachSplit(() => openai.tap(chat, true), crlf, (forwarded) => assert.equal(forwarded, withoutUsage.replaceAll("\n", "\r\n")));
  });

  test("injected, one event per chunk (as upstreams send them): each kept chunk goes on as the very buffer that came, never re-encoded", () => {
    const { whole, withoutUsage } = chatStream();
    const tap = openai.tap(chat, true);
    const forwarded: Buffer[] = [];
    for (const event of whole.split(/(?<=\n\n)/)) {
      const chunk = Buffer.from(event);
      const out = tap.push(chunk);
      if (event.includes('"choices":[]')) assert.equal(out, undefined, "the usage chunk is dropped");
      else assert.equal(out, chunk, "the same buffer, not a copy");
      if (out) forwarded.push(out);
    }
    assert.equal(tap.end(), undefined);
    assert.equal(Buffer.concat(forwarded).toString("utf8"), withoutUsage);
    assert.deepEqual(tap.result().usage?.tokens, OPENAI_TOKENS);
  });

  test("not injected: the client asked for usage, so it keeps the usage chunk", () => {
    const { whole } = chatStream();
    eachSplit(() => openai.tap(chat, false), whole, (forwarded, tap) => {
      assert.equal(forwarded, whole);
      assert.deepEqual(tap.result().usage?.tokens, OPENAI_TOKENS);
    });
  });

  test("usage on a chunk that still has choices (Mistral) is read and never dropped", () => {
    const last = { id: "x", object: "chat.completion.chunk", model: "mistral-large-2411", choices: [{ index: 0, delta: { content: "" }, finish_reason: "stop" }], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } };
    const text = sse({ id: "x", model: "mistral-large-2411", choices: [{ index: 0, delta: { content: "Hi" } }] }) + sse(last) + sse("[DONE]");
    eachSplit(() => openAICompatible("mistral").tap(chat, true), text, (forwarded, tap) => {
      assert.equal(forwarded, text);
      assert.deepEqual(tap.result().usage?.tokens, tokens({ input: 10, output: 5 }));
    });
    // Chunks without any `usage` key still name the model when the stream is cut short.
    const cut = openAICompatible("mistral").tap(chat, false);
    feed(cut, text.slice(0, text.indexOf("\n\n") + 2), 4);
    assert.deepEqual(cut.result(), { usage: undefined, model: "mistral-large-2411" });
  });

  test("Groq's `x_groq.usage` counts; OpenRouter's `usage.cost` comes through as cost_usd", () => {
    const groq = sse({ id: "g", model: "llama-3.3-70b-versatile", choices: [{ index: 0, delta: {}, finish_reason: "stop" }], x_groq: { id: "req_1", usage: { queue_time: 0.01, prompt_tokens: 20, completion_tokens: 7, total_tokens: 27 } } });
    const g = openAICompatible("groq").tap(chat, false);
    feed(g, groq + sse("[DONE]"), 9);
    assert.deepEqual(g.result(), { usage: { tokens: tokens({ input: 20, output: 7 }), model: "llama-3.3-70b-versatile" }, model: "llama-3.3-70b-versatile" });

    const router = sse({ id: "o", model: "anthropic/claude-sonnet-4", choices: [], usage: { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110, cost: 0.00123 } });
    const o = openAICompatible("openrouter").tap(chat, false);
    assert.equal(feed(o, router, 4), router);
    assert.equal(o.result().usage?.cost_usd, "0.00123");
  });

  test("a stream cut before its usage still names the model; errors inside a stream go through", () => {
    const { whole } = chatStream();
    const cut = whole.slice(0, whole.indexOf('"choices":[]') - 200);
    const tap = openai.tap(chat, true);
    feed(tap, cut, 13);
    assert.deepEqual(tap.result(), { usage: undefined, model: "gpt-4o-2024-08-06" });

    const failing = sse({ error: { message: "The server had an error", type: "server_error", param: null, code: null } });
    const t = openai.tap(chat, true);
    assert.equal(feed(t, failing, 5), failing);
  });

  test("legacy completions stream like chat", () => {
    const base = { id: "cmpl-1", object: "text_completion", created: 1, model: "gpt-3.5-turbo-instruct" };
    const theirs = sse({ ...base, choices: [{ text: "Hi", index: 0, logprobs: null, finish_reason: null }], usage: null });
    const usage = sse({ ...base, choices: [], usage: { prompt_tokens: 12, completion_tokens: 40, total_tokens: 52 } });
    eachSplit(() => openai.tap("/v1/completions", true), theirs + usage + sse("[DONE]"), (forwarded, tap) => {
      assert.equal(forwarded, theirs + sse("[DONE]"));
      assert.deepEqual(tap.result().usage?.tokens, tokens({ input: 12, output: 40 }));
    });
  });

  test("Responses API: usage and model from the terminal event, whichever of completed/incomplete/failed it is", () => {
    const response = (status: string, usage: unknown) => ({ id: "resp_1", object: "response", status, model: "o4-mini-2025-04-16", output: [], usage });
    const usage = { input_tokens: 1200, input_tokens_details: { cached_tokens: 1024 }, output_tokens: 300, output_tokens_details: { reasoning_tokens: 128 }, total_tokens: 1500 };
    for (const terminal of ["response.completed", "response.incomplete", "response.failed"]) {
      const text =
        sse({ type: "response.created", sequence_number: 0, response: response("in_progress", null) }, "response.created") +
        sse({ type: "response.output_text.delta", sequence_number: 1, item_id: "msg_1", output_index: 0, content_index: 0, delta: "Hi", logprobs: [] }, "response.output_text.delta") +
        sse({ type: terminal, sequence_number: 2, response: response(terminal.slice(9), usage) }, terminal);
      eachSplit(() => openai.tap("/v1/responses", false), text, (forwarded, tap) => {
        assert.equal(forwarded, text);
        assert.deepEqual(tap.result(), { usage: { tokens: OPENAI_TOKENS, model: "o4-mini-2025-04-16" }, model: "o4-mini-2025-04-16" });
      });
    }
    // A stream that ends before its terminal event: the model from response.created, no usage.
    const tap = openai.tap("/v1/responses", false);
    feed(tap, sse({ type: "response.created", sequence_number: 0, response: response("in_progress", null) }, "response.created"), 8);
    assert.deepEqual(tap.result(), { usage: undefined, model: "o4-mini-2025-04-16" });
  });
});

describe("server-sent events", () => {
  test("a large event in many small chunks, multi-line and CRLF, comes whole and exact; what follows it too", () => {
    const lines = Array.from({ length: 300 }, (_, i) => `data: {"part":${i},"text":"${"é".repeat(50)}"}`);
    const text = `event: response.completed\r\n${lines.join("\r\n")}\r\n\r\ndata: [DONE]\n\n`;
    // Every size from 1 to 5 cuts the blank lines at each of their places.
    for (const size of [1, 2, 3, 4, 5, 7, 64]) {
      const reader = new SseReader();
      const got: { event: { event: string | undefined; data: string }; raw: string }[] = [];
      for (let at = 0; at < text.length; at += size) {
        got.push(...reader.push(text.slice(at, at + size)));
        // Nothing is held only where an event just ended.
        assert.equal(reader.empty, got.map(({ raw }) => raw).join("") === text.slice(0, at + size), `size ${size}`);
      }
      assert.deepEqual(
        got.map(({ event }) => event),
        [
          { event: "response.completed", data: lines.map((l) => l.slice(6)).join("\n") },
          { event: undefined, data: "[DONE]" },
        ],
        `size ${size}`,
      );
      assert.equal(got.map(({ raw }) => raw).join(""), text, "the raw text is every byte, once");
    }
  });

  test("an event that outgrows what is held ends the reading: every byte still goes on, what came before it counts", () => {
    const seen: string[] = [];
    const tap: SseTap = {
      onEvent: (event) => {
        seen.push(event.data);
        return event.data === "drop" ? "drop" : "forward";
      },
      result: () => ({ usage: undefined, model: undefined }),
    };
    const text = `data: a\n\ndata: drop\n\ndata: ${"é".repeat(100)}\n\ndata: b\n\n`;
    for (const filtering of [true, false])
      for (const size of [1, 3, 7, 64]) {
        seen.length = 0;
        const capped = sseStreamTap(tap, filtering, 50);
        const passed = feed(capped, text, size);
        assert.deepEqual(seen, ["a", "drop"], `filtering ${filtering}, size ${size}`);
        assert.equal(passed, filtering ? text.replace("data: drop\n\n", "") : text, `filtering ${filtering}, size ${size}`);
        assert.equal(capped.result().partial, true, "the result says the stream was not read to its end");
      }
    seen.length = 0;
    const whole = sseStreamTap(tap, false, 1000);
    feed(whole, text, 7);
    assert.equal(whole.result().partial, undefined, "a stream read to its end is not partial");
  });
});

describe("OpenAI-compatible: whole answers", () => {
  test("chat completion: usage, model and tier", () => {
    const body = { id: "chatcmpl-1", object: "chat.completion", created: 1, model: "gpt-4o-2024-08-06", service_tier: "default", choices: [], usage: CHAT_USAGE };
    assert.deepEqual(openai.usageOf("/v1/chat/completions", body), {
      usage: { tokens: OPENAI_TOKENS, service_tier: "standard", model: "gpt-4o-2024-08-06" },
      model: "gpt-4o-2024-08-06",
    });
  });

  test("Responses API, embeddings (input only) and OpenRouter's cost", () => {
    const responses = { id: "resp_1", object: "response", model: "gpt-4.1", usage: { input_tokens: 10, input_tokens_details: { cached_tokens: 0 }, output_tokens: 4, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 14 } };
    assert.deepEqual(openai.usageOf("/v1/responses", responses).usage?.tokens, tokens({ input: 10, output: 4 }));
    const embeddings = { object: "list", data: [], model: "text-embedding-3-small", usage: { prompt_tokens: 8, total_tokens: 8 } };
    assert.deepEqual(openai.usageOf("/v1/embeddings", embeddings), { usage: { tokens: tokens({ input: 8 }), model: "text-embedding-3-small" }, model: "text-embedding-3-small" });
    const routed = { model: "openai/gpt-4o", usage: { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110, cost: 1.5e-7 } };
    assert.equal(openAICompatible("openrouter").usageOf("/v1/chat/completions", routed).usage?.cost_usd, "0.00000015");
  });

  test("answers without usage give none: errors, model lists, background responses", () => {
    assert.deepEqual(openai.usageOf("/v1/chat/completions", { error: { message: "x" } }), { usage: undefined, model: undefined });
    assert.deepEqual(openai.usageOf("/v1/models", { object: "list", data: [] }), { usage: undefined, model: undefined });
    assert.deepEqual(openai.usageOf("/v1/responses", { id: "r", model: "o3", usage: null }), { usage: undefined, model: "o3" });
    assert.deepEqual(openai.usageOf("/v1/chat/completions", undefined), { usage: undefined, model: undefined });
  });

  test("error shape: {error: {message, type, param, code}} with details merged in", () => {
    assert.deepEqual(openai.error(401, "invalid_api_key", "bad key"), { error: { message: "bad key", type: "invalid_request_error", param: null, code: "invalid_api_key" } });
    assert.deepEqual(openai.error(429, "budget_exceeded", "over", { budget: "team-a", resets_at: "2030-01-01T00:00:00.000Z" }), {
      error: { message: "over", type: "budget_exceeded", param: null, code: "budget_exceeded", budget: "team-a", resets_at: "2030-01-01T00:00:00.000Z" },
    });
    assert.equal((openai.error(502, "upstream_interrupted", "x") as { error: { type: string } }).error.type, "server_error");
  });
});

// ---------------------------------------------------------------------------------------------
// Anthropic
// ---------------------------------------------------------------------------------------------

/** A Messages stream as Anthropic documents it; message_delta restates the cumulative counts. */
function messagesStream(deltaUsage: Record<string, unknown>, named = true): string {
  const ev = (type: string, fields: Record<string, unknown> = {}) => sse({ type, ...fields }, named ? type : undefined);
  const startUsage = {
    input_tokens: 50,
    cache_creation_input_tokens: 3000,
    cache_read_input_tokens: 12_000,
    cache_creation: { ephemeral_5m_input_tokens: 1000, ephemeral_1h_input_tokens: 2000 },
    output_tokens: 1,
    service_tier: "standard",
  };
  return [
    ev("message_start", { message: { id: "msg_01", type: "message", role: "assistant", model: "claude-sonnet-4-5-20250929", content: [], stop_reason: null, stop_sequence: null, usage: startUsage } }),
    ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
    ev("ping"),
    ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: "Hello — ünïcode" } }),
    ev("content_block_stop", { index: 0 }),
    ev("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: deltaUsage }),
    ev("message_stop"),
  ].join("");
}

describe("Anthropic", () => {
  test("stream: message_start and the cumulative message_delta merge by maximum, never by sum; the 1h/5m split is kept", () => {
    const text = messagesStream({ input_tokens: 50, cache_creation_input_tokens: 3000, cache_read_input_tokens: 12_000, output_tokens: 420 });
    eachSplit(() => anthropic.tap("/v1/messages", false), text, (forwarded, tap) => {
      assert.equal(forwarded, text);
      assert.deepEqual(tap.result(), { usage: { tokens: ANTHROPIC_TOKENS, service_tier: "standard", model: "claude-sonnet-4-5-20250929" }, model: "claude-sonnet-4-5-20250929" });
    });
  });

  test("an older message_delta with only output_tokens keeps message_start's input counts", () => {
    const tap = anthropic.tap("/v1/messages", false);
    feed(tap, messagesStream({ output_tokens: 420 }), 11);
    assert.deepEqual(tap.result().usage?.tokens, ANTHROPIC_TOKENS);
  });

  test("events without `event:` lines are recognised by their type", () => {
    const tap = anthropic.tap("/v1/messages", false);
    feed(tap, messagesStream({ output_tokens: 420 }, false), 6);
    assert.deepEqual(tap.result().usage?.tokens, ANTHROPIC_TOKENS);
  });

  test("when the events disagree on cache writes the total wins and the unexplained part is 5-minute writes", () => {
    const tap = anthropic.tap("/v1/messages", false);
    feed(tap, messagesStream({ cache_creation_input_tokens: 3500, output_tokens: 420 }), 64);
    assert.deepEqual(tap.result().usage?.tokens, { ...ANTHROPIC_TOKENS, input: 15_550, cache_write: 3500 });
  });

  test("mergeCumulative keeps the highest value per field, nested too, and later non-numbers", () => {
    assert.deepEqual(mergeCumulative({ a: 5, b: 2, n: { x: 1 }, tier: "standard" }, { a: 3, b: 7, n: { x: 4, y: 1 }, c: 1, tier: "priority", d: null }), {
      a: 5,
      b: 7,
      n: { x: 4, y: 1 },
      c: 1,
      tier: "priority",
    });
  });

  test("whole answers: a Message has usage; count_tokens answers have none", () => {
    const message = { id: "msg_01", type: "message", role: "assistant", model: "claude-opus-4-1-20250805", content: [], stop_reason: "end_turn", usage: { input_tokens: 50, cache_creation_input_tokens: 3000, cache_read_input_tokens: 12_000, cache_creation: { ephemeral_5m_input_tokens: 1000, ephemeral_1h_input_tokens: 2000 }, output_tokens: 420 } };
    assert.deepEqual(anthropic.usageOf("/v1/messages", message), { usage: { tokens: ANTHROPIC_TOKENS, model: "claude-opus-4-1-20250805" }, model: "claude-opus-4-1-20250805" });
    assert.deepEqual(anthropic.usageOf("/v1/messages/count_tokens", { input_tokens: 2095 }), { usage: undefined, model: undefined });
  });

  test("facts: model, stream, user from metadata.user_id", () => {
    assert.deepEqual(anthropic.inspect("/v1/messages", { model: "claude-haiku-4-5", stream: true, metadata: { user_id: "u-7" }, max_tokens: 10 }, noQuery), {
      model: "claude-haiku-4-5",
      stream: true,
      user: "u-7",
      rewritten: undefined,
    });
    assert.equal(anthropic.inspect("/v1/messages", { model: "m", metadata: null }, noQuery).user, undefined);
  });

  test("error shape: {type: error, error: {type, message}}", () => {
    assert.deepEqual(anthropic.error(401, "invalid_api_key", "bad key"), { type: "error", error: { type: "authentication_error", message: "bad key" } });
    assert.deepEqual(anthropic.error(429, "budget_exceeded", "over", { budget: "b" }), { type: "error", error: { type: "budget_exceeded", message: "over", budget: "b" } });
    assert.equal((anthropic.error(529, "overloaded", "x") as { error: { type: string } }).error.type, "overloaded_error");
    assert.equal((anthropic.error(502, "upstream_interrupted", "x") as { error: { type: string } }).error.type, "api_error");
  });
});

// ---------------------------------------------------------------------------------------------
// Gemini
// ---------------------------------------------------------------------------------------------

describe("Gemini", () => {
  const streamPath = "/v1beta/models/gemini-2.5-pro:streamGenerateContent";
  const usage = (candidates: number, thoughts: number) => ({
    promptTokenCount: 2000,
    cachedContentTokenCount: 1500,
    candidatesTokenCount: candidates,
    thoughtsTokenCount: thoughts,
    totalTokenCount: 2000 + candidates + thoughts,
  });
  const chunk = (text: string, u: unknown, finish?: string) =>
    `data: ${JSON.stringify({ candidates: [{ content: { parts: [{ text }], role: "model" }, index: 0, ...(finish ? { finishReason: finish } : {}) }], usageMetadata: u, modelVersion: "gemini-2.5-pro", responseId: "r1" })}\r\n\r\n`;

  test("stream: the last usageMetadata is the call's usage (each one restates the counts so far)", () => {
    const text = chunk("Hel", usage(10, 180)) + chunk("lo ✓", usage(120, 180)) + chunk("!", usage(250, 180), "STOP");
    eachSplit(() => gemini.tap(streamPath, false), text, (forwarded, tap) => {
      assert.equal(forwarded, text);
      assert.deepEqual(tap.result(), { usage: { tokens: GEMINI_TOKENS, model: "gemini-2.5-pro", request_id: "r1" }, model: "gemini-2.5-pro" });
    });
  });

  test("whole answers: generateContent, and the JSON array of a stream without alt=sse; countTokens has none", () => {
    const answer = (u: unknown) => ({ candidates: [], usageMetadata: u, modelVersion: "gemini-2.5-flash", responseId: "r" });
    assert.deepEqual(gemini.usageOf("/v1beta/models/gemini-2.5-flash:generateContent", answer(usage(250, 180))), {
      usage: { tokens: GEMINI_TOKENS, model: "gemini-2.5-flash", request_id: "r" },
      model: "gemini-2.5-flash",
    });
    assert.deepEqual(gemini.usageOf(streamPath, [answer(usage(10, 180)), answer(usage(250, 180)), { candidates: [] }]).usage?.tokens, GEMINI_TOKENS);
    assert.deepEqual(gemini.usageOf("/v1beta/models/gemini-2.5-flash:countTokens", { totalTokens: 2000 }), { usage: undefined, model: undefined });
  });

  test("facts come from the path: model (decoded, tuned models too) and whether it streams", () => {
    assert.deepEqual(gemini.inspect(streamPath, { contents: [] }, noQuery), { model: "gemini-2.5-pro", stream: true, user: undefined, rewritten: undefined });
    assert.deepEqual(gemini.inspect("/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", {}, noQuery).stream, true);
    assert.deepEqual(gemini.inspect("/v1beta/models/gemini-2.0-flash:generateContent", {}, noQuery), { model: "gemini-2.0-flash", stream: false, user: undefined, rewritten: undefined });
    assert.equal(gemini.inspect("/v1beta/models/gemini%2D2.5-pro:countTokens", {}, noQuery).model, "gemini-2.5-pro");
    assert.equal(gemini.inspect("/v1beta/tunedModels/my-model-123:generateContent", {}, noQuery).model, "my-model-123");
    assert.deepEqual(gemini.inspect("/v1beta/models", undefined, noQuery), { model: undefined, stream: false, user: undefined, rewritten: undefined });
  });

  test("error shape: {error: {code, message, status}} with the code as an ErrorInfo reason", () => {
    assert.deepEqual(gemini.error(429, "budget_exceeded", "over", { budget: "b", spend_usd: 12.5 }), {
      error: {
        code: 429,
        message: "over",
        status: "RESOURCE_EXHAUSTED",
        details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "BUDGET_EXCEEDED", domain: "tollgate", metadata: { budget: "b", spend_usd: "12.5" } }],
      },
    });
    assert.equal((gemini.error(401, "invalid_api_key", "x") as { error: { status: string } }).error.status, "UNAUTHENTICATED");
  });
});

// ---------------------------------------------------------------------------------------------
// Keys and the registry
// ---------------------------------------------------------------------------------------------

describe("credentials", () => {
  const none = new URLSearchParams();
  const upstreamRequest: UpstreamRequest = { method: "POST", url: new URL("https://upstream.test/v1/x"), headers: {}, body: undefined };

  test("OpenAI: Authorization: Bearer (scheme in any case), nothing else", () => {
    assert.equal(openai.clientKey({ authorization: "Bearer tlg_abc" }, none), "tlg_abc");
    assert.equal(openai.clientKey({ authorization: "bearer  tlg_abc " }, none), "tlg_abc");
    assert.equal(openai.clientKey({ authorization: "Basic dXNlcjpwYXNz" }, none), undefined);
    assert.equal(openai.clientKey({ "x-api-key": "tlg_abc" }, none), undefined);
    assert.deepEqual(openai.credentialHeaders, ["authorization"]);
    assert.deepEqual(openai.authorize(upstreamRequest, "sk-real", {}), { authorization: "Bearer sk-real" });
    assert.equal(openai.authorize(upstreamRequest, undefined, {}), undefined, "no key, no authorisation");
  });

  test("Anthropic: x-api-key first, Authorization: Bearer as its SDK also sends", () => {
    assert.equal(anthropic.clientKey({ "x-api-key": "tlg_a" }, none), "tlg_a");
    assert.equal(anthropic.clientKey({ authorization: "Bearer tlg_b" }, none), "tlg_b");
    assert.equal(anthropic.clientKey({ "x-api-key": "tlg_a", authorization: "Bearer tlg_b" }, none), "tlg_a");
    assert.equal(anthropic.clientKey({ "x-api-key": "" }, none), undefined);
    assert.deepEqual([...anthropic.credentialHeaders].sort(), ["authorization", "x-api-key"]);
    assert.deepEqual(anthropic.authorize(upstreamRequest, "sk-ant-real", {}), { "x-api-key": "sk-ant-real" });
  });

  test("Gemini: x-goog-api-key, or ?key= (both removed before forwarding)", () => {
    assert.equal(gemini.clientKey({ "x-goog-api-key": "tlg_g" }, none), "tlg_g");
    assert.equal(gemini.clientKey({}, new URLSearchParams("alt=sse&key=tlg_q")), "tlg_q");
    assert.equal(gemini.clientKey({ "x-goog-api-key": "tlg_g" }, new URLSearchParams("key=tlg_q")), "tlg_g");
    assert.equal(gemini.clientKey({ authorization: "Bearer tlg_x" }, none), undefined);
    assert.deepEqual(gemini.credentialHeaders, ["x-goog-api-key"]);
    assert.deepEqual(gemini.credentialQuery, ["key"]);
    assert.deepEqual(gemini.authorize(upstreamRequest, "AIza-real", {}), { "x-goog-api-key": "AIza-real" });
  });

  test("registry: the built-ins, and any other name speaks OpenAI's API under its own name", () => {
    assert.deepEqual(builtInProviders().map((p) => p.name).slice(0, 3), ["openai", "anthropic", "gemini"]);
    assert.equal(providerNamed("anthropic"), anthropic);
    assert.equal(providerNamed("xai").name, "xai");
    assert.equal(providerNamed("x-ai"), providerNamed("xai"));
    assert.equal(providerNamed("Google"), gemini);
    assert.equal(providerNamed("my-vllm"), providerNamed("my-vllm"));
    assert.equal(providerNamed("openai").name, "openai");
  });
});

describe("Azure OpenAI", () => {
  const chatPath = "/openai/deployments/gpt-4o-prod/chat/completions";
  const version = (v: string) => new URLSearchParams({ "api-version": v });
  const streamed = { messages: [], stream: true };

  test("keys: api-key, or an Entra token as a bearer; the resource's key goes upstream in api-key", () => {
    assert.equal(azure.clientKey({ "api-key": "tlg_a" }, noQuery), "tlg_a");
    assert.equal(azure.clientKey({ authorization: "Bearer tlg_b" }, noQuery), "tlg_b");
    assert.deepEqual([...azure.credentialHeaders].sort(), ["api-key", "authorization"]);
    const request: UpstreamRequest = { method: "POST", url: new URL(`https://res.openai.azure.com${chatPath}`), headers: {}, body: undefined };
    assert.deepEqual(azure.authorize(request, "az-key", {}), { "api-key": "az-key" });
  });

  test("the deployment is a tag, from the path or else the body's model", () => {
    assert.deepEqual(azure.inspect(chatPath, { messages: [] }, version("2024-10-21")).tags, { deployment: "gpt-4o-prod" });
    assert.deepEqual(azure.inspect("/openai/deployments/my%20dep/embeddings", { input: "x" }, version("2024-10-21")).tags, { deployment: "my dep" });
    assert.deepEqual(azure.inspect("/openai/v1/chat/completions", { model: "mini-dev" }, noQuery).tags, { deployment: "mini-dev" });
    assert.equal(azure.inspect("/openai/models", undefined, version("2024-10-21")).tags, undefined);
  });

  test("usage is asked for in streams only where the api-version takes stream_options", () => {
    const asks = (path: string, query: URLSearchParams) => azure.inspect(path, streamed, query).rewritten !== undefined;
    assert.equal(asks(chatPath, version("2024-10-21")), true);
    assert.equal(asks(chatPath, version("2024-09-01-preview")), true);
    assert.equal(asks(chatPath, version("2024-08-01-preview")), false);
    assert.equal(asks(chatPath, version("2024-06-01")), false);
    assert.equal(asks(chatPath, noQuery), false);
    assert.equal(asks("/openai/v1/chat/completions", noQuery), true, "the v1 API always takes it");
  });

  test("error shape: {error: {code, message}} with the details beside them", () => {
    assert.deepEqual(azure.error(429, "budget_exceeded", "no", { budget: "b" }), { error: { code: "budget_exceeded", message: "no", budget: "b" } });
  });
});

// ---------------------------------------------------------------------------------------------
// The fakes answer like the providers
// ---------------------------------------------------------------------------------------------

function post(url: string, body: unknown, headers: Record<string, string>, signal?: AbortSignal): Promise<Response> {
  return fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body), signal });
}

/** The raw bytes of an answer, content-encoding untouched (fetch would decompress them). */
function rawPost(url: string, body: unknown, headers: Record<string, string>): Promise<{ headers: Record<string, unknown>; bytes: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: "POST", headers: { "content-type": "application/json", ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ headers: res.headers, bytes: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

const events = (text: string) => new SseReader().push(text).map(({ event }) => event);

describe("fake OpenAI", () => {
  test("chat: whole and streamed; the usage chunk only under include_usage; wrong and missing keys get 401", async () => {
    const fake = await startFakeOpenAI();
    try {
      const auth = { authorization: `Bearer ${OPENAI_KEY}` };
      const url = `${fake.url}/v1/chat/completions`;
      const whole = (await (await post(url, { model: "gpt-4o", messages: [], user: "u" }, auth)).json()) as { choices: { message: { content: string } }[] };
      assert.equal(whole.choices[0]?.message.content, answerText());
      assert.deepEqual(openai.usageOf("/v1/chat/completions", whole).usage?.tokens, OPENAI_TOKENS);

      const plain = await post(url, { model: "gpt-4o", messages: [], stream: true }, auth);
      assert.match(plain.headers.get("content-type") ?? "", /^text\/event-stream/);
      const plainEvents = events(await plain.text());
      assert.equal(plainEvents.at(-1)?.data, "[DONE]");
      assert.ok(plainEvents.every((e) => e.event === undefined && !e.data.includes('"usage"')), "no usage unless asked");

      const asked = await (await post(url, { model: "gpt-4o", messages: [], stream: true, stream_options: { include_usage: true } }, auth)).text();
      const tap = openai.tap("/v1/chat/completions", true);
      assert.equal(feed(tap, asked, 17), withoutUsageChunk(asked));
      assert.deepEqual(tap.result().usage?.tokens, OPENAI_TOKENS);

      const wrong = await post(url, { model: "gpt-4o" }, { authorization: "Bearer sk-wrong-key-123456" });
      assert.equal(wrong.status, 401);
      assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, "invalid_api_key");
      assert.equal((await post(url, { model: "gpt-4o" }, {})).status, 401);

      assert.equal(fake.requests.length, 5);
      assert.equal(fake.requests[0]?.path, "/v1/chat/completions");
      assert.deepEqual(fake.requests[0]?.body, { model: "gpt-4o", messages: [], user: "u" });
      assert.equal(fake.requests[0]?.headers.authorization, `Bearer ${OPENAI_KEY}`);
    } finally {
      await fake.close();
    }
  });

  test("Responses stream, base64 embeddings, models", async () => {
    const fake = await startFakeOpenAI();
    try {
      const auth = { authorization: `Bearer ${OPENAI_KEY}` };
      const stream = await (await post(`${fake.url}/v1/responses`, { model: "o4-mini", input: "hi", stream: true }, auth)).text();
      const named = events(stream);
      assert.equal(named[0]?.event, "response.created");
      assert.equal(named.at(-1)?.event, "response.completed");
      assert.deepEqual(named.map((e) => (JSON.parse(e.data) as { sequence_number: number }).sequence_number), named.map((_, i) => i));
      const tap = openai.tap("/v1/responses", false);
      feed(tap, stream, 29);
      assert.deepEqual(tap.result(), { usage: { tokens: OPENAI_TOKENS, service_tier: "standard", model: "o4-mini" }, model: "o4-mini" });

      const embedded = (await (await post(`${fake.url}/v1/embeddings`, { model: "text-embedding-3-small", input: ["a", "b"], encoding_format: "base64" }, auth)).json()) as { data: { embedding: string }[] };
      assert.equal(embedded.data.length, 2);
      const floats = new Float32Array(Uint8Array.from(Buffer.from(embedded.data[0]?.embedding ?? "", "base64")).buffer);
      assert.equal(floats[0], 1 / 16);

      const models = (await (await fetch(`${fake.url}/v1/models`, { headers: auth })).json()) as { object: string; data: { id: string }[] };
      assert.equal(models.object, "list");
      assert.ok(models.data.some((m) => m.id === "gpt-4o"));
    } finally {
      await fake.close();
    }
  });

  test("scripted behaviours: error with retry-after, gzip streamed with flushes, many slow chunks, hang", async () => {
    const fake = await startFakeOpenAI();
    try {
      const auth = { authorization: `Bearer ${OPENAI_KEY}` };
      const url = `${fake.url}/v1/chat/completions`;
      fake.setNext({ status: 429, retryAfter: 3 });
      const limited = await post(url, { model: "gpt-4o" }, auth);
      assert.equal(limited.status, 429);
      assert.equal(limited.headers.get("retry-after"), "3");
      assert.deepEqual(Object.keys(((await limited.json()) as { error: object }).error).sort(), ["code", "message", "param", "type"]);

      fake.setNext({ gzip: true });
      const zipped = await rawPost(url, { model: "gpt-4o", stream: true, stream_options: { include_usage: true } }, auth);
      assert.equal(zipped.headers["content-encoding"], "gzip");
      const tap = openai.tap("/v1/chat/completions", false);
      feed(tap, gunzipSync(zipped.bytes).toString("utf8"), 100);
      assert.deepEqual(tap.result().usage?.tokens, OPENAI_TOKENS);

      fake.setNext({ deltas: 300, delayMs: 1 });
      const large = events(await (await post(url, { model: "gpt-4o", stream: true }, auth)).text());
      assert.equal(large.length, 300 + 3);

      fake.setNext({ hang: true });
      await assert.rejects(post(url, { model: "gpt-4o" }, auth, AbortSignal.timeout(150)), /timeout|abort/i);
      // After the scripted ones, answers are normal again.
      assert.equal((await post(url, { model: "gpt-4o" }, auth)).status, 200);
    } finally {
      await fake.close();
    }
  });
});

/** A stream with its usage-only chunk (`choices: []`) taken out: what a client that did not ask for usage sees. */
function withoutUsageChunk(text: string): string {
  return new SseReader()
    .push(text)
    .filter(({ event }) => !event.data.includes('"choices":[]'))
    .map(({ raw }) => raw)
    .join("");
}

describe("fake Anthropic", () => {
  test("messages whole and streamed, count_tokens, keys in either header, anthropic-version required", async () => {
    const fake = await startFakeAnthropic();
    try {
      const auth = { "x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01" };
      const url = `${fake.url}/v1/messages`;
      const body = { model: "claude-sonnet-4-5", max_tokens: 100, messages: [{ role: "user", content: "hi" }] };
      const whole = await (await post(url, body, auth)).json();
      assert.deepEqual(anthropic.usageOf("/v1/messages", whole).usage?.tokens, ANTHROPIC_TOKENS);

      const stream = await post(url, { ...body, stream: true }, { authorization: `Bearer ${ANTHROPIC_KEY}`, "anthropic-version": "2023-06-01" });
      const text = await stream.text();
      const names = events(text).map((e) => e.event);
      assert.deepEqual([names[0], names[1], names[2], names.at(-2), names.at(-1)], ["message_start", "content_block_start", "ping", "message_delta", "message_stop"]);
      const tap = anthropic.tap("/v1/messages", false);
      feed(tap, text, 23);
      assert.deepEqual(tap.result().usage?.tokens, ANTHROPIC_TOKENS);

      const counted = (await (await post(`${url}/count_tokens`, body, auth)).json()) as { input_tokens: number };
      assert.equal(typeof counted.input_tokens, "number");

      const wrong = await post(url, body, { "x-api-key": "sk-ant-wrong", "anthropic-version": "2023-06-01" });
      assert.equal(wrong.status, 401);
      assert.equal(((await wrong.json()) as { error: { type: string } }).error.type, "authentication_error");
      assert.equal((await post(url, body, { "x-api-key": ANTHROPIC_KEY })).status, 400);
    } finally {
      await fake.close();
    }
  });
});

describe("fake Gemini", () => {
  test("alt=sse stream (CRLF-framed), JSON-array stream, ?key= auth; a wrong key is a 400 API_KEY_INVALID as in the real API", async () => {
    const fake = await startFakeGemini();
    try {
      const body = { contents: [{ role: "user", parts: [{ text: "hi" }] }] };
      const base = `${fake.url}/v1beta/models/gemini-2.5-pro`;
      const sseAnswer = await post(`${base}:streamGenerateContent?alt=sse`, body, { "x-goog-api-key": GEMINI_KEY });
      const text = await sseAnswer.text();
      assert.match(text, /^data: \{.*\}\r\n\r\n/);
      const tap = gemini.tap("/v1beta/models/gemini-2.5-pro:streamGenerateContent", false);
      feed(tap, text, 3);
      assert.deepEqual(tap.result().usage?.tokens, GEMINI_TOKENS);
      assert.equal(tap.result().usage?.request_id, /"responseId":"([^"]+)"/.exec(text)?.[1]);

      const array = await (await post(`${base}:streamGenerateContent?key=${GEMINI_KEY}`, body, {})).json();
      assert.ok(Array.isArray(array));
      assert.deepEqual(gemini.usageOf("/v1beta/models/gemini-2.5-pro:streamGenerateContent", array).usage?.tokens, GEMINI_TOKENS);

      const whole = await (await post(`${base}:generateContent`, body, { "x-goog-api-key": GEMINI_KEY })).json();
      assert.deepEqual(gemini.usageOf("/v1beta/models/gemini-2.5-pro:generateContent", whole).usage?.tokens, GEMINI_TOKENS);

      const wrong = await post(`${base}:generateContent`, body, { "x-goog-api-key": "AIza-wrong" });
      assert.equal(wrong.status, 400);
      const error = ((await wrong.json()) as { error: { status: string; details: { reason?: string }[] } }).error;
      assert.equal(error.status, "INVALID_ARGUMENT");
      assert.equal(error.details[0]?.reason, "API_KEY_INVALID");
      assert.equal((await post(`${base}:generateContent`, body, {})).status, 403);

      fake.setNext({ status: 503 });
      const overloaded = await post(`${base}:generateContent`, body, { "x-goog-api-key": GEMINI_KEY });
      assert.deepEqual(await overloaded.json(), { error: { code: 503, message: "The model is overloaded. Please try again later.", status: "UNAVAILABLE" } });
    } finally {
      await fake.close();
    }
  });
});
