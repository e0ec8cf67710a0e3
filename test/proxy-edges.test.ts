import assert from "node:assert/strict";
import { type IncomingMessage, request } from "node:http";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI } from "@google/genai";
import { sql } from "drizzle-orm";
import OpenAI from "openai";
import { HardBudget } from "../src/budgets/hard-budget.ts";
import type { Database } from "../src/db/connection.ts";
import { PICO_PER_USD } from "../src/pricing/money.ts";
import { tokenizerReady } from "../src/proxy/estimate.ts";
import { ANTHROPIC_KEY, startFakeAnthropic } from "./fakes/anthropic.ts";
import type { FakeUpstream } from "./fakes/fake-upstream.ts";
import { GEMINI_KEY, startFakeGemini } from "./fakes/gemini.ts";
import { OPENAI_KEY, startFakeOpenAI } from "./fakes/openai.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { proxyRow } from "./helpers/proxy-ledger.ts";
import { sampleBudget } from "./helpers/sample-budget.ts";

/*
 * The proxy's edges (issue 14, items 3 to 5), each as a hostile or careless client or operator
 * would meet it: reading results back, polling batches, listing and counting (never billed, a batch
 * billed once at the batch rate), base URLs given with `/v1`, streams cut before their usage
 * (settled at an estimate, which budgets count), JSON sent under another content type (the model
 * checks still apply), and refusals in a setup of several processes.
 */

let database: Database;
let openaiFake: FakeUpstream;
let anthropicFake: FakeUpstream;
let geminiFake: FakeUpstream;
/** Every upstream configured with its version segment, as the SDKs' docs write base URLs. */
let t: TestGateway;
/** TOLLGATE_ON_DISCONNECT=cancel: a stream whose client leaves is cut off at once, before its usage. */
let cancelling: TestGateway;

before(async () => {
  database = await openTestDatabase();
  [openaiFake, anthropicFake, geminiFake] = await Promise.all([startFakeOpenAI(), startFakeAnthropic(), startFakeGemini()]);
  const keys = { OPENAI_API_KEY: OPENAI_KEY, ANTHROPIC_API_KEY: ANTHROPIC_KEY, GEMINI_API_KEY: GEMINI_KEY };
  t = await startTestGateway(
    {
      ...keys,
      OPENAI_BASE_URL: `${openaiFake.url}/v1`,
      ANTHROPIC_BASE_URL: `${anthropicFake.url}/v1/`,
      GEMINI_BASE_URL: `${geminiFake.url}/v1beta`,
      TOLLGATE_PROVIDERS: `compat=${openaiFake.url}/v1`,
      COMPAT_API_KEY: OPENAI_KEY,
    },
    { database },
  );
  cancelling = await startTestGateway({ ...keys, OPENAI_BASE_URL: openaiFake.url, TOLLGATE_ON_DISCONNECT: "cancel" }, { database });
  // Estimates count with gpt-tokenizer once it has loaded (bytes/4 before): loaded here, as a running gateway has after its first estimate.
  await tokenizerReady();
});
after(async () => {
  await t?.close();
  await cancelling?.close();
  await Promise.all([openaiFake?.close(), anthropicFake?.close(), geminiFake?.close()]);
  await database?.close();
});

async function virtualKey(g: TestGateway, team: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await g.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: `k-${team}-${Math.random()}`, team, ...extra }) });
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { key: string }).key;
}

/** The proxy's ledger rows of a team. */
async function teamRows(team: string) {
  return database.rows<{ id: string; model: string; service_tier: string; cost: string; priced: boolean; input_tokens: string; output_tokens: string }>(sql`
    select id, model, service_tier, cost::text as cost, priced, input_tokens::text as input_tokens, output_tokens::text as output_tokens
    from usage_events where source = 'proxy' and team = ${team} order by received_at`);
}

/** Waits until the recorder has written everything submitted so far (a marker call's row is in). */
async function settledLedger(g: TestGateway, key: string): Promise<void> {
  const { response } = await new OpenAI({ baseURL: `${g.base}/openai/v1`, apiKey: key, maxRetries: 0 }).chat.completions
    .create({ model: "gpt-4o", messages: [{ role: "user", content: "marker" }] })
    .withResponse();
  await proxyRow(database, response.headers.get("x-tollgate-request-id")!);
  // The marker's batch may commit before an earlier one still being written (the recorder writes
  // batches side by side): wait for those too.
  await g.gateway.recorder.flush();
}

async function metric(g: TestGateway, provider: string, operation: string): Promise<number> {
  const text = await (await fetch(`${g.base}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`tollgate_proxy_requests_total{provider="${provider}",operation="${operation}"}`));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

describe("which calls are billed (item 3)", () => {
  test("reading results back, listing and counting tokens are forwarded and counted, never recorded as usage", async () => {
    const team = "readers";
    const key = await virtualKey(t, team);
    const openai = new OpenAI({ baseURL: `${t.base}/openai/v1`, apiKey: key, maxRetries: 0 });
    const before = { responses: await metric(t, "openai", "responses.retrieve"), chat: await metric(t, "openai", "chat.completions.retrieve") };

    const created = await openai.responses.create({ model: "gpt-4o", input: "hi" });
    const again = await openai.responses.retrieve(created.id);
    assert.equal(again.usage?.input_tokens, 1200, "the stored answer, with its usage, reached the client");
    const stored = await openai.chat.completions.retrieve("chatcmpl-stored");
    assert.equal(stored.usage?.prompt_tokens, 1200);
    assert.equal((await openai.models.list()).data.length > 0, true);
    await openai.files.list();
    const anthropic = new Anthropic({ baseURL: `${t.base}/anthropic`, apiKey: key, maxRetries: 0 });
    await anthropic.messages.countTokens({ model: "claude-sonnet-4-6", messages: [{ role: "user", content: "hi" }] });
    const genai = new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: `${t.base}/gemini` } });
    await genai.models.countTokens({ model: "gemini-2.5-flash", contents: "hi" });

    await settledLedger(t, key);
    const rows = await teamRows(team);
    // The one generating call and the marker; nothing for the seven reads, lists and counts.
    assert.equal(rows.length, 2, JSON.stringify(rows));
    assert.ok(rows.every((r) => r.priced));
    assert.equal(await metric(t, "openai", "responses.retrieve"), before.responses + 1);
    assert.equal(await metric(t, "openai", "chat.completions.retrieve"), before.chat + 1);
    assert.ok((await metric(t, "openai", "models.list")) >= 1);
    assert.ok((await metric(t, "openai", "files.list")) >= 1);
    assert.ok((await metric(t, "anthropic", "messages.count_tokens.create")) >= 1);
    assert.ok((await metric(t, "gemini", "models.countTokens")) >= 1);
  });

  test("a batch is recorded once, when a poll first shows it completed, at the batch rate, under its own id", async () => {
    const team = "batcher";
    const key = await virtualKey(t, team);
    const openai = new OpenAI({ baseURL: `${t.base}/openai/v1`, apiKey: key, maxRetries: 0 });
    const batch = await openai.batches.create({ input_file_id: "file-abc", endpoint: "/v1/chat/completions", completion_window: "24h" });
    const states = [];
    for (let i = 0; i < 4; i++) states.push((await openai.batches.retrieve(batch.id)).status);
    assert.deepEqual(states, ["in_progress", "completed", "completed", "completed"]);
    await openai.batches.list();

    await settledLedger(t, key);
    const rows = (await teamRows(team)).filter((r) => r.id.startsWith("batch:"));
    assert.equal(rows.length, 1, "three polls saw it completed; one row");
    const [row] = rows;
    assert.equal(row!.id, `batch:${batch.id}`);
    assert.equal(row!.model, "gpt-4o-mini-2024-07-18");
    assert.equal(row!.service_tier, "batch");
    // gpt-4o-mini: $0.15 / M input, $0.075 / M cached, $0.60 / M output; the batch API bills half.
    // 176 × 0.15 + 1,024 × 0.075 + 300 × 0.60 = 283.2 µ$ standard → 141.6 µ$.
    assert.equal(row!.cost, String(141_600_000n));
    assert.ok((await metric(t, "openai", "batches.retrieve")) >= 4);
    assert.ok((await metric(t, "openai", "batches.create")) >= 1);
  });

  test("an Anthropic batch's results file records each succeeded request once, at the batch rate, under batch:{id}:{custom_id}", async () => {
    const team = "claude-batcher";
    const key = await virtualKey(t, team);
    const anthropic = new Anthropic({ baseURL: `${t.base}/anthropic`, apiKey: key, maxRetries: 0 });
    const batchId = "msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d";
    // batches.results() retrieves the batch and follows its `results_url`: the gateway hands that back relative, so the read comes through it.
    const read = async () => {
      const lines = [];
      for await (const line of await anthropic.messages.batches.results(batchId)) lines.push(line);
      return lines;
    };
    const first = await read();
    assert.deepEqual(first.map((r) => [r.custom_id, r.result.type]), [["first", "succeeded"], ["second", "succeeded"], ["third", "errored"], ["fourth", "expired"]], "the file reached the client whole");
    await read();

    assert.equal((await anthropic.messages.batches.retrieve(batchId)).results_url, `/v1/messages/batches/${batchId}/results`);

    await settledLedger(t, key);
    const rows = (await teamRows(team)).filter((r) => r.id.startsWith("batch:"));
    assert.deepEqual(rows.map((r) => r.id).sort(), [`batch:${batchId}:first`, `batch:${batchId}:second`], "one row per succeeded request, none for errored or expired, none more for the second read");
    assert.ok(rows.every((r) => r.service_tier === "batch" && r.model === "claude-sonnet-4-6" && r.priced));
    const cost = Object.fromEntries(rows.map((r) => [r.id.split(":").at(-1), r.cost]));
    // claude-sonnet-4-6: $3 / M input, $0.30 / M cache reads, $15 / M output; batches bill half.
    // first: 100 × 3 + 2,000 × 0.30 + 500 × 15 = 8,400 µ$ → 4,200 µ$; second: 1,000 × 3 + 200 × 15 = 6,000 µ$ → 3,000 µ$.
    assert.deepEqual(cost, { first: String(4_200_000_000n), second: String(3_000_000_000n) });
    assert.equal(await metric(t, "anthropic", "messages.batches.results"), 2);
  });
});

describe("upstream base URLs given with their version segment (item 4)", () => {
  test("OPENAI_BASE_URL=…/v1, ANTHROPIC_BASE_URL=…/v1/, GEMINI_BASE_URL=…/v1beta and a named upstream at …/v1 are not doubled", async () => {
    const key = await virtualKey(t, "based");
    const marks = [openaiFake.requests.length, anthropicFake.requests.length, geminiFake.requests.length];
    await new OpenAI({ baseURL: `${t.base}/openai/v1`, apiKey: key, maxRetries: 0 }).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
    await new OpenAI({ baseURL: `${t.base}/compat/v1`, apiKey: key, maxRetries: 0 }).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
    await new Anthropic({ baseURL: `${t.base}/anthropic`, apiKey: key, maxRetries: 0 }).messages.create({ model: "claude-sonnet-4-6", max_tokens: 10, messages: [{ role: "user", content: "hi" }] });
    await new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: `${t.base}/gemini` } }).models.generateContent({ model: "gemini-2.5-flash", contents: "hi" });
    assert.deepEqual(
      [openaiFake.requests[marks[0]!]!.path, openaiFake.requests[marks[0]! + 1]!.path, anthropicFake.requests[marks[1]!]!.path, geminiFake.requests[marks[2]!]!.path.split("?")[0]],
      ["/v1/chat/completions", "/v1/chat/completions", "/v1/messages", "/v1beta/models/gemini-2.5-flash:generateContent"],
    );
  });
});

describe("budget holes (item 5)", () => {
  test("JSON sent as text/plain still meets allowed_models; a body that is not JSON is refused on a billable endpoint", async () => {
    const key = await virtualKey(t, "plain", { allowed_models: ["gpt-4o-mini"] });
    const send = (body: string, type: string) =>
      fetch(`${t.base}/openai/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": type }, body });
    const before = openaiFake.requests.length;
    const plain = await send(JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }), "text/plain");
    assert.equal(plain.status, 403);
    assert.equal(((await plain.json()) as { error: { code: string } }).error.code, "model_not_allowed");
    const untyped = await send(JSON.stringify({ model: "gpt-4o", messages: [] }), "application/octet-stream");
    assert.equal(untyped.status, 403);
    const garbage = await send("model=gpt-4o", "application/x-www-form-urlencoded");
    assert.equal(garbage.status, 415);
    assert.equal(((await garbage.json()) as { error: { code: string } }).error.code, "unsupported_body");
    assert.equal(openaiFake.requests.length, before, "none of them reached the upstream");
    // A multipart form names its model in a field: checked too.
    const form = new FormData();
    form.set("model", "whisper-1");
    form.set("file", new Blob([Buffer.from("RIFF")], { type: "audio/wav" }), "a.wav");
    const audio = await fetch(`${t.base}/openai/v1/audio/transcriptions`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: form });
    assert.equal(audio.status, 403);
  });

  test("a stream cut before its usage is settled at an estimate, marked so, and a hard budget counts it", async () => {
    const team = "cut-short";
    const res = await cancelling.admin("/api/budgets", {
      method: "POST",
      // One call's worst case (the prompt's 1,152 bytes as tokens and 10 output at gpt-4o's prices: $0.00298) fits; two do not.
      body: JSON.stringify({ name: "cut-short", scope: { team }, amount_usd: "0.0031", mode: "hard", period: "month" }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const key = await virtualKey(cancelling, team);
    const openai = new OpenAI({ baseURL: `${cancelling.base}/openai/v1`, apiKey: key, maxRetries: 0 });
    const prompt = Array.from({ length: 120 }, (_, i) => `token${i}`).join(" ");
    openaiFake.setNext({ deltas: 200, delayMs: 10 });
    const abort = new AbortController();
    const { data: stream, response } = await openai.chat.completions
      .create({ model: "gpt-4o", max_tokens: 10, stream: true, messages: [{ role: "user", content: prompt }] }, { signal: abort.signal })
      .withResponse();
    let chunks = 0;
    for await (const _ of stream) if (++chunks === 5) abort.abort();
    const row = await proxyRow(database, response.headers.get("x-tollgate-request-id")!);
    assert.equal(row.status, "aborted");
    assert.equal(row.estimated, true);
    assert.equal(row.priced, true);
    // "token0 token1 … token119" is a few hundred tokens by gpt-tokenizer; never the $0 of no usage.
    assert.ok(Number(row.input_tokens) > 200, `input estimated from the request (${row.input_tokens})`);
    assert.ok(Number(row.output_tokens) >= 4, `output estimated from what was relayed (${row.output_tokens})`);
    assert.ok(BigInt(row.cost) > 0n);

    // What is left ($0.0031 less the estimate) no longer covers another call's worst case.
    const next = await openai.chat.completions.create({ model: "gpt-4o", max_tokens: 10, messages: [{ role: "user", content: prompt }] }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(next instanceof OpenAI.APIError && next.status === 429, String(next));
    const error = next.error as { spend_usd: string; remaining_usd: string };
    assert.equal(error.spend_usd, (Number(row.cost) / 1e12).toString(), "the estimate is the budget's spend");
  });
});

describe("a whole JSON answer too large to hold (over 8 MiB)", () => {
  test("reaches the client whole, without a cost header, and is settled at an estimate of its bytes, not at $0", async () => {
    const team = "huge-answer";
    const key = await virtualKey(t, team);
    openaiFake.setNext({ deltas: 9, deltaBytes: 1_000_000 });
    const { data, response } = await new OpenAI({ baseURL: `${t.base}/openai/v1`, apiKey: key, maxRetries: 0 }).chat.completions
      .create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    assert.equal(data.choices[0]!.message.content!.length, 9_000_000);
    assert.equal(response.headers.get("x-tollgate-cost-usd"), null, "not held, so no cost header");
    const row = await proxyRow(database, response.headers.get("x-tollgate-request-id")!);
    assert.equal(row.estimated, true);
    assert.equal(row.priced, true);
    assert.equal(row.input_tokens, "1", "the request's text");
    assert.ok(Number(row.output_tokens) >= 9_000_000 / 4, `bytes/4 of the answer (${row.output_tokens})`);
    assert.ok(BigInt(row.cost) > 0n);
  });
});

describe("a stream the gateway stops reading before its end", () => {
  test("an event past what is held (16 MB): every byte reaches the SDK, and Anthropic's start usage is not taken as the call's", async () => {
    const key = await virtualKey(t, "unread-tail");
    const anthropic = new Anthropic({ baseURL: `${t.base}/anthropic`, apiKey: key, maxRetries: 0 });
    // One text delta of 17 MiB: past it the gateway reads no more, so the usage message_delta reports
    // at the end (420 output tokens) is never seen, only message_start's (1 output token).
    const size = 17 * 2 ** 20;
    anthropicFake.setNext({ deltas: 1, deltaBytes: size });
    const { data: stream, response } = await anthropic.messages
      .create({ model: "claude-sonnet-4-6", max_tokens: 10, stream: true, messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    let text = 0;
    const types: string[] = [];
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text.length;
    }
    assert.equal(text, size, "the whole delta reached the SDK");
    assert.deepEqual(types.slice(-2), ["message_delta", "message_stop"], "and everything after it");
    const row = await proxyRow(database, response.headers.get("x-tollgate-request-id")!);
    assert.equal(row.status, "ok");
    assert.equal(row.estimated, true, "estimated, not the start's usage taken as reported");
    assert.equal(Number(row.input_tokens), 50 + 3000 + 12000, "input as message_start reported it, exactly");
    // Output at a quarter of the bytes relayed: no text could be picked out of an event held only in part.
    assert.ok(Number(row.output_tokens) >= size / 4, `output estimated from the bytes relayed (${row.output_tokens})`);
  });
});

describe("request headers the gateway answers for itself", () => {
  /** A raw call (node:http, as curl sends it), its status and body, and the headers the upstream saw. */
  async function rawCall(headers: Record<string, string>, body: string): Promise<{ status: number; text: string; upstream: Record<string, unknown> }> {
    const key = await virtualKey(t, "raw-headers");
    const before = openaiFake.requests.length;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(`${t.base}/openai/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers } });
      req.on("response", resolve).on("error", reject);
      // With `expect: 100-continue` the body goes only once the gateway says to send it, as curl does.
      if (headers.expect) req.on("continue", () => req.end(body));
      else req.end(body);
    });
    let text = "";
    for await (const chunk of res) text += chunk;
    assert.equal(openaiFake.requests.length, before + 1, "one upstream call");
    return { status: res.statusCode!, text, upstream: openaiFake.requests.at(-1)!.headers };
  }
  const body = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });

  test("expect: 100-continue (curl's large bodies) is answered by the gateway and not sent upstream", async () => {
    const { status, text, upstream } = await rawCall({ expect: "100-continue" }, body);
    assert.equal(status, 200, text);
    assert.equal(upstream.expect, undefined);
  });

  test("accept-encoding keeps only codings the gateway can decode; a header the connection header names is not passed on", async () => {
    const mixed = await rawCall({ "accept-encoding": "zstd, br;q=0.9, gzip", connection: "keep-alive, x-hop", "x-hop": "1" }, body);
    assert.equal(mixed.status, 200, mixed.text);
    assert.equal(mixed.upstream["accept-encoding"], "br;q=0.9, gzip");
    assert.equal(mixed.upstream["x-hop"], undefined);
    const only = await rawCall({ "accept-encoding": "zstd, *" }, body);
    assert.equal(only.status, 200, only.text);
    assert.equal(only.upstream["accept-encoding"], undefined, "no coding left: the answer comes uncompressed");
  });
});

describe("refusals with several gateway processes (item 5)", () => {
  test("a process that has used its share reports the budget's own spend and what is left, not 'exhausted, remaining 0'", () => {
    const usd = (text: string) => (BigInt(Math.round(Number(text) * 1e6)) * PICO_PER_USD) / 1_000_000n;
    const b = new HardBudget(sampleBudget({ mode: "hard", amount: usd("1") }), new Date());
    // The ledger has $0.990; another process holds a lease of $0.005; this one may reach $0.005 and has spent it.
    b.applySync({ inLedger: [], recorded: 0n, consumed: 0n, granted: usd("0.005"), ceiling: usd("0.005"), spend: usd("0.99"), holders: 2 }, { generation: 0, at: performance.now() }, 30_000);
    b.finish("call-1", 0n, usd("0.005"));
    assert.equal(b.fit(usd("0.001"), performance.now()), "exhausted", "this process's share is used up");
    const block = b.block("exhausted", usd("0.001"));
    assert.deepEqual(
      { kind: block.kind, spend: block.spend_usd, remaining: block.remaining_usd, amount: block.amount_usd },
      { kind: "insufficient", spend: "0.995", remaining: "0.005", amount: "1" },
    );
  });
});

