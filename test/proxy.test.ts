import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { sql } from "drizzle-orm";
import OpenAI from "openai";
import { ANTHROPIC_KEY, ANTHROPIC_USAGE, startFakeAnthropic } from "./fakes/anthropic.ts";
import { answerText, type FakeUpstream } from "./fakes/fake-upstream.ts";
import { OPENAI_CHAT_USAGE, OPENAI_KEY, startFakeOpenAI } from "./fakes/openai.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { proxyRow, tokenColumns } from "./helpers/proxy-ledger.ts";

let t: TestGateway;
let openaiFake: FakeUpstream;
let anthropicFake: FakeUpstream;
let virtualKey: string;

before(async () => {
  openaiFake = await startFakeOpenAI();
  anthropicFake = await startFakeAnthropic();
  t = await startTestGateway({
    OPENAI_BASE_URL: openaiFake.url,
    OPENAI_API_KEY: OPENAI_KEY,
    ANTHROPIC_BASE_URL: anthropicFake.url,
    ANTHROPIC_API_KEY: ANTHROPIC_KEY,
  });
  const res = await t.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: "sdk", team: "search" }) });
  virtualKey = ((await res.json()) as { key: string }).key;
});
after(async () => {
  await t.close();
  await openaiFake.close();
  await anthropicFake.close();
});

/** The ledger row of the call the gateway answered with this request id, once it is written. */
const rowOf = (requestId: string) => proxyRow(t.gateway.database, requestId);
const tokens = tokenColumns;

describe("OpenAI SDK through the proxy", () => {
  const client = () => new OpenAI({ baseURL: `${t.base}/openai/v1`, apiKey: virtualKey, maxRetries: 0 });

  test("a chat completion is unchanged for the client and recorded exactly, with its cost in a header", async () => {
    const { data, response } = await client()
      .chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }, { headers: { "x-tollgate-feature": "answer", "x-tollgate-team": "intruder" } })
      .withResponse();
    assert.equal(data.choices[0]!.message.content, answerText());
    assert.deepEqual(data.usage, OPENAI_CHAT_USAGE);
    const id = response.headers.get("x-tollgate-request-id")!;
    const row = await rowOf(id);
    assert.deepEqual(tokens(row), ["1200", "1024", "0", "0", "300", "128"]);
    // gpt-4o: 176 uncached × $2.50/M + 1,024 cached × $1.25/M + 300 output × $10/M = $0.00472
    assert.equal(row.cost, "4720000000");
    assert.equal(response.headers.get("x-tollgate-cost-usd"), "0.00472");
    assert.equal(row.team, "search", "a header never overrides the key's team");
    assert.equal(row.feature, "answer", "headers fill what the key leaves open");
    const upstream = openaiFake.requests.at(-1)!;
    assert.equal(upstream.headers.authorization, `Bearer ${OPENAI_KEY}`, "the provider key replaces the virtual key");
    assert.equal(upstream.headers["x-tollgate-feature"], undefined, "Tollgate headers are not sent upstream");
  });

  test("a stream reaches the client whole, without the usage chunk it did not ask for, and is recorded", async () => {
    const stream = await client().chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true });
    let text = "";
    let sawUsage = false;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.choices.length === 0 || chunk.usage) sawUsage = true;
    }
    assert.equal(text, answerText());
    assert.equal(sawUsage, false);
    const sent = openaiFake.requests.at(-1)!.body as { stream_options?: { include_usage?: boolean } };
    assert.equal(sent.stream_options?.include_usage, true, "the gateway asked for usage itself");
    const [row] = await t.gateway.database.rows<{ id: string }>(sql`select id from usage_events where source = 'proxy' order by ts desc, received_at desc limit 1`);
    assert.deepEqual(tokens(await rowOf(row!.id)), ["1200", "1024", "0", "0", "300", "128"]);
  });

  test("a gzip-compressed stream is relayed uncompressed and its usage still read", async () => {
    openaiFake.setNext({ gzip: true });
    const res = await fetch(`${t.base}/openai/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${virtualKey}`, "content-type": "application/json", "accept-encoding": "gzip" },
      body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true } }),
    });
    assert.equal(res.headers.get("content-encoding"), null, "SSE is never compressed by us");
    const text = await res.text();
    assert.match(text, /"usage":\{"prompt_tokens":1200/, "the client asked for usage, so it keeps the usage chunk");
    assert.match(text, /data: \[DONE\]/);
    const row = await rowOf(res.headers.get("x-tollgate-request-id")!);
    assert.deepEqual(tokens(row), ["1200", "1024", "0", "0", "300", "128"]);
  });

  test("a client gone mid-stream: the answer is read on to its usage and recorded as aborted", async () => {
    openaiFake.setNext({ delayMs: 30, deltas: 20 });
    const abort = new AbortController();
    const res = await fetch(`${t.base}/openai/v1/chat/completions`, {
      method: "POST",
      signal: abort.signal,
      headers: { authorization: `Bearer ${virtualKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true }),
    });
    const id = res.headers.get("x-tollgate-request-id")!;
    const reader = res.body!.getReader();
    await reader.read();
    abort.abort();
    const row = await rowOf(id);
    assert.equal(row.status, "aborted");
    assert.deepEqual(tokens(row), ["1200", "1024", "0", "0", "300", "128"]);
  });

  test("a wrong key gets the provider's own 401 and never reaches the upstream", async () => {
    const before = openaiFake.requests.length;
    const bad = new OpenAI({ baseURL: `${t.base}/openai/v1`, apiKey: "tlg_not-a-real-key", maxRetries: 0 });
    await assert.rejects(bad.models.list(), (err: unknown) => err instanceof OpenAI.AuthenticationError);
    // A live ingest key is told what it is and which key the proxy takes, not that it is invalid.
    const ingest = new OpenAI({ baseURL: `${t.base}/openai/v1`, apiKey: await t.ingestKey(), maxRetries: 0 });
    const err = await ingest.models.list().then(() => null, (e: unknown) => e);
    assert.ok(err instanceof OpenAI.AuthenticationError);
    assert.match(err.message, /this is a Tollgate ingest key, for reporting usage to \/v1\/usage; calls through the proxy take a virtual key/);
    assert.equal(openaiFake.requests.length, before);
  });

  test("an upstream error goes back verbatim and is recorded as an error", async () => {
    openaiFake.setNext({ status: 429, retryAfter: 7 });
    const err = await client()
      .chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] })
      .then(() => null, (e: unknown) => e);
    assert.ok(err instanceof OpenAI.RateLimitError);
    assert.equal(err.headers?.get("retry-after"), "7");
    const id = err.headers?.get("x-tollgate-request-id");
    assert.equal((await rowOf(id!)).status, "error");
  });
});

describe("Anthropic SDK through the proxy", () => {
  test("a streamed message keeps its cache-write split and is priced exactly", async () => {
    const client = new Anthropic({ baseURL: `${t.base}/anthropic`, apiKey: virtualKey, maxRetries: 0 });
    const stream = client.messages.stream({ model: "claude-sonnet-4-5", max_tokens: 100, messages: [{ role: "user", content: "hi" }] });
    const message = await stream.finalMessage();
    assert.equal(message.usage.output_tokens, ANTHROPIC_USAGE.output_tokens);
    const id = (await stream.withResponse()).response.headers.get("x-tollgate-request-id")!;
    const row = await rowOf(id);
    // input = 50 uncached + 12,000 cache reads + 3,000 cache writes (2,000 of them for an hour)
    assert.deepEqual(tokens(row), ["15050", "12000", "3000", "2000", "420", "0"]);
    // $3/M × 50 + $0.30/M × 12,000 + $3.75/M × 1,000 + $6/M × 2,000 + $15/M × 420 = $0.02580
    assert.equal(row.cost, "25800000000");
    assert.equal(anthropicFake.requests.at(-1)!.headers["x-api-key"], ANTHROPIC_KEY);
  });
});

describe("a provider's name at the proxy door", () => {
  test("configured as x-ai it is xai; /x-ai, /xai and /XAI reach it; the ledger says xai every time", async () => {
    const g = await startTestGateway({ TOLLGATE_PROVIDERS: `x-ai=${openaiFake.url}`, XAI_API_KEY: OPENAI_KEY });
    try {
      const res = await g.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: "names", team: "names" }) });
      const key = ((await res.json()) as { key: string }).key;
      const ids: string[] = [];
      for (const prefix of ["x-ai", "xai", "XAI"]) {
        const xai = new OpenAI({ baseURL: `${g.base}/${prefix}/v1`, apiKey: key, maxRetries: 0 });
        const { response } = await xai.chat.completions.create({ model: "grok-4", messages: [{ role: "user", content: "hi" }] }).withResponse();
        ids.push(response.headers.get("x-tollgate-request-id")!);
      }
      const rows = await Promise.all(ids.map((id) => proxyRow(g.gateway.database, id)));
      assert.deepEqual(rows.map((r) => r.provider), ["xai", "xai", "xai"]);
      // grok-4 at xAI's prices: 176 uncached input × $3/M + 1,024 cached × $0.75/M + 300 output × $15/M.
      assert.deepEqual(rows.map((r) => r.cost), Array(3).fill("5796000000"));
    } finally {
      await g.close();
    }
  });
});
