import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createGoogleGenerativeAI } from "@ai-sdk/google";
import { createOpenAI } from "@ai-sdk/openai";
import { GoogleGenAI } from "@google/genai";
import { ChatOpenAI } from "@langchain/openai";
import { generateText, type LanguageModel, streamText } from "ai";
import { sql } from "drizzle-orm";
import type { Database } from "../src/db/connection.ts";
import { ANTHROPIC_KEY, startFakeAnthropic } from "./fakes/anthropic.ts";
import { answerText, type FakeUpstream } from "./fakes/fake-upstream.ts";
import { GEMINI_KEY, startFakeGemini } from "./fakes/gemini.ts";
import { OPENAI_KEY, startFakeOpenAI } from "./fakes/openai.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { waitFor } from "./helpers/wait.ts";

/*
 * Conformance with the clients people actually use, each pointed at the gateway by its base URL
 * and nothing else, against fakes of the providers' HTTP APIs: the Vercel AI SDK (OpenAI chat and
 * Responses, Anthropic, Google), Google's @google/genai and LangChain's ChatOpenAI. A whole answer
 * and a stream each, with the exact cost in the ledger; and a hard budget that refuses, which each
 * client must take as a failure at once, not sleep on.
 */

let database: Database;
let fakes: FakeUpstream[];
let t: TestGateway;
/** When each request reached the gateway (performance.now()). */
const arrived: number[] = [];

/*
 * What each fake's answer costs, from the providers' published prices:
 * - gpt-4o, 1,200 input (1,024 cached), 300 output: 176 × $2.50 + 1,024 × $1.25 + 300 × $10 per M = $0.00472.
 * - claude-sonnet-4-6, 50 input, 12,000 cache reads, 1,000 5-minute and 2,000 1-hour cache writes, 420 output:
 *   50 × $3 + 12,000 × $0.30 + 1,000 × $3.75 + 2,000 × $6 + 420 × $15 per M = $0.0258.
 * - gemini-2.5-flash, 2,000 input (1,500 cached), 250 output + 180 thinking:
 *   500 × $0.30 + 1,500 × $0.03 + 430 × $2.50 per M = $0.00127.
 */
const GPT_4O = 4_720_000_000n;
const SONNET = 25_800_000_000n;
const FLASH = 1_270_000_000n;

before(async () => {
  database = await openTestDatabase();
  const [openai, anthropic, gemini] = await Promise.all([startFakeOpenAI(), startFakeAnthropic(), startFakeGemini()]);
  fakes = [openai!, anthropic!, gemini!];
  t = await startTestGateway(
    {
      OPENAI_BASE_URL: openai!.url,
      OPENAI_API_KEY: OPENAI_KEY,
      ANTHROPIC_BASE_URL: anthropic!.url,
      ANTHROPIC_API_KEY: ANTHROPIC_KEY,
      GEMINI_BASE_URL: gemini!.url,
      GEMINI_API_KEY: GEMINI_KEY,
    },
    { database },
  );
  t.server.on("request", () => arrived.push(performance.now()));
});
after(async () => {
  await t?.close();
  await Promise.all(fakes.map((f) => f.close()));
  await database?.close();
});

async function virtualKey(team: string): Promise<string> {
  const res = await t.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: `k-${team}`, team }) });
  assert.equal(res.status, 201);
  return ((await res.json()) as { key: string }).key;
}

/** The costs of a team's proxied calls, once `count` are in the ledger. */
async function costs(team: string, count: number): Promise<bigint[]> {
  const read = () => database.rows<{ cost: string; priced: boolean }>(sql`select cost::text as cost, priced from usage_events where source = 'proxy' and team = ${team} order by ts`);
  await waitFor(`${count} calls of ${team} in the ledger`, async () => (await read()).length >= count);
  const rows = await read();
  assert.equal(rows.length, count, "one row per call, no more");
  assert.ok(rows.every((r) => r.priced));
  return rows.map((r) => BigInt(r.cost));
}

/** The AI SDK's models, each from its provider pointed at the gateway. */
const aiSdk: [name: string, model: (key: string) => LanguageModel, cost: bigint][] = [
  ["@ai-sdk/openai chat", (key) => createOpenAI({ baseURL: `${t.base}/openai/v1`, apiKey: key }).chat("gpt-4o"), GPT_4O],
  ["@ai-sdk/openai responses", (key) => createOpenAI({ baseURL: `${t.base}/openai/v1`, apiKey: key }).responses("gpt-4o"), GPT_4O],
  ["@ai-sdk/anthropic", (key) => createAnthropic({ baseURL: `${t.base}/anthropic/v1`, apiKey: key })("claude-sonnet-4-6"), SONNET],
  ["@ai-sdk/google", (key) => createGoogleGenerativeAI({ baseURL: `${t.base}/gemini/v1beta`, apiKey: key })("gemini-2.5-flash"), FLASH],
];

describe("the Vercel AI SDK", () => {
  for (const [name, model, cost] of aiSdk)
    test(`${name}: generateText and streamText, each at its exact cost`, async () => {
      const team = `ai-${name.replace(/\W+/g, "-")}`;
      const key = await virtualKey(team);
      const whole = await generateText({ model: model(key), prompt: "hi" });
      assert.ok(whole.text.includes("Hello"), whole.text);
      const streamed = streamText({ model: model(key), prompt: "hi" });
      let text = "";
      for await (const delta of streamed.textStream) text += delta;
      assert.equal(text, answerText());
      assert.ok((await streamed.usage).inputTokens! > 0, "the client still got its usage");
      assert.deepEqual(await costs(team, 2), [cost, cost]);
    });
});

describe("@google/genai", () => {
  test("generateContent and generateContentStream, each at its exact cost", async () => {
    const key = await virtualKey("genai");
    const genai = new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: `${t.base}/gemini` } });
    const whole = await genai.models.generateContent({ model: "gemini-2.5-flash", contents: "hi" });
    assert.ok(whole.text?.includes("Hello"));
    let text = "";
    for await (const chunk of await genai.models.generateContentStream({ model: "gemini-2.5-flash", contents: "hi" })) text += chunk.text ?? "";
    assert.equal(text, answerText());
    assert.deepEqual(await costs("genai", 2), [FLASH, FLASH]);
  });
});

describe("LangChain", () => {
  test("ChatOpenAI invoke and stream, each at its exact cost", async () => {
    const key = await virtualKey("langchain");
    const chat = new ChatOpenAI({ model: "gpt-4o", apiKey: key, configuration: { baseURL: `${t.base}/openai/v1` } });
    const whole = await chat.invoke("hi");
    assert.ok(String(whole.content).includes("Hello"));
    let text = "";
    for await (const chunk of await chat.stream("hi")) text += String(chunk.content);
    assert.equal(text, answerText());
    assert.deepEqual(await costs("langchain", 2), [GPT_4O, GPT_4O]);
  });
});

describe("a hard budget that refuses", () => {
  let key: string;
  before(async () => {
    const res = await t.admin("/api/budgets", { method: "POST", body: JSON.stringify({ name: "broke", scope: { team: "broke" }, amount_usd: "0.000001", mode: "hard", period: "month" }) });
    assert.equal(res.status, 201, await res.clone().text());
    key = await virtualKey("broke");
  });

  /**
   * Runs a client's call against the refusing budget: it must fail without sleeping between tries.
   * The AI SDK's back-off sleeps at least 2 s before a retry; without it, tries follow each other
   * as fast as a refusal comes back. Says how many requests reached the gateway.
   */
  async function failsFast(what: string, call: () => Promise<unknown>): Promise<number> {
    const from = arrived.length;
    const err = await call().then(() => null, (e: unknown) => e);
    assert.ok(err instanceof Error, `${what} must fail`);
    assert.match(String((err as Error).message) + JSON.stringify(err), /budget broke/, `${what}: the refusal names the budget`);
    const tries = arrived.slice(from);
    const gaps = tries.slice(1).map((at, i) => at - tries[i]!);
    assert.ok(gaps.every((gap) => gap < 2000), `${what} waited ${gaps.map(Math.round).join(", ")} ms between tries: it slept on a retry`);
    return tries.length;
  }

  for (const [name, model] of aiSdk)
    test(`${name}: generateText and streamText fail at once`, async () => {
      // The AI SDK retries any 429 twice whatever the headers: at once, each refused from memory.
      assert.ok((await failsFast(name, () => generateText({ model: model(key), prompt: "hi" }))) <= 3);
      const streamed = streamText({ model: model(key), prompt: "hi", onError: () => {} });
      await failsFast(`${name} stream`, async () => {
        for await (const part of streamed.fullStream) if (part.type === "error") throw part.error;
      });
    });

  test("@google/genai and LangChain fail at once, with one request each", async () => {
    const genai = new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: `${t.base}/gemini` } });
    assert.equal(await failsFast("@google/genai", () => genai.models.generateContent({ model: "gemini-2.5-flash", contents: "hi" })), 1);
    const chat = new ChatOpenAI({ model: "gpt-4o", apiKey: key, configuration: { baseURL: `${t.base}/openai/v1` } });
    assert.equal(await failsFast("LangChain", () => chat.invoke("hi")), 1);
  });
});
