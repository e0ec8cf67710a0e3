import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import Anthropic from "@anthropic-ai/sdk";
import { sql } from "drizzle-orm";
import OpenAI from "openai";
import type { Database } from "../src/db/connection.ts";
import { ANTHROPIC_KEY, startFakeAnthropic } from "./fakes/anthropic.ts";
import type { FakeUpstream } from "./fakes/fake-upstream.ts";
import { OPENAI_KEY, startFakeOpenAI } from "./fakes/openai.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { waitFor } from "./helpers/wait.ts";

/*
 * Hard budgets through the real proxy: official SDKs against the fakes, one or two gateways over
 * one database, spend seeded through /v1/usage. Each test works in a team of its own.
 */

let database: Database;
let openaiFake: FakeUpstream;
let anthropicFake: FakeUpstream;
let a: TestGateway;
let env: Record<string, string>;

before(async () => {
  database = await openTestDatabase();
  openaiFake = await startFakeOpenAI();
  anthropicFake = await startFakeAnthropic();
  env = {
    OPENAI_BASE_URL: openaiFake.url,
    OPENAI_API_KEY: OPENAI_KEY,
    ANTHROPIC_BASE_URL: anthropicFake.url,
    ANTHROPIC_API_KEY: ANTHROPIC_KEY,
    TOLLGATE_BUDGET_REFRESH_MS: "50",
    TOLLGATE_JOBS: "off",
  };
  a = await startTestGateway(env, { database });
});
after(async () => {
  await a.close();
  await database.close();
  await openaiFake.close();
  await anthropicFake.close();
});

const PICO = 1_000_000_000_000n;
/** What each call to the fake costs: gpt-4o, 1,200 input tokens (1,024 cached), 300 output. */
const CALL_COST = 4_720_000_000n;
/** A prompt as long in bytes as the fake's answer counts input tokens, so the worst case covers it. */
const PROMPT = "x".repeat(1300);
const ask = { model: "gpt-4o", max_tokens: 300, messages: [{ role: "user" as const, content: PROMPT }] };

async function virtualKey(t: TestGateway, team: string): Promise<string> {
  const res = await t.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: `k-${team}`, team }) });
  return ((await res.json()) as { key: string }).key;
}

async function createBudget(body: Record<string, unknown>): Promise<string> {
  const res = await a.admin("/api/budgets", { method: "POST", body: JSON.stringify({ period: "month", ...body }) });
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

/** Spend recorded for a team through /v1/usage: input tokens at $2.50 per million (gpt-4o and its snapshots). */
async function seedSpend(team: string, usd: number, model = "gpt-4o"): Promise<void> {
  const key = await a.ingestKey();
  const res = await fetch(`${a.base}/v1/usage`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ id: `seed-${team}-${model}`, timestamp: new Date().toISOString(), provider: "openai", model, input_tokens: usd * 400_000, team }),
  });
  assert.equal(res.status, 200);
}

async function teamSpend(team: string): Promise<{ cost: bigint; proxied: number }> {
  const [row] = await database.rows<{ cost: string; proxied: string }>(sql`
    select coalesce(sum(cost), 0)::text as cost, count(*) filter (where source = 'proxy')::text as proxied
    from usage_events where team = ${team}`);
  return { cost: BigInt(row!.cost), proxied: Number(row!.proxied) };
}

const openai = (t: TestGateway, key: string) => new OpenAI({ baseURL: `${t.base}/openai/v1`, apiKey: key, maxRetries: 0 });

type Outcome = { ok: true } | { ok: false; status: number | undefined; error: Record<string, unknown>; retryAfter: string | null; shouldRetry: string | null };

async function chat(client: OpenAI): Promise<Outcome> {
  try {
    await client.chat.completions.create(ask);
    return { ok: true };
  } catch (err) {
    if (!(err instanceof OpenAI.APIError)) throw err;
    return { ok: false, status: err.status, error: err.error as Record<string, unknown>, retryAfter: err.headers?.get("retry-after") ?? null, shouldRetry: err.headers?.get("x-should-retry") ?? null };
  }
}

/** 100 calls at once, spread over the gateways given. */
async function burst(clients: OpenAI[]): Promise<Outcome[]> {
  return Promise.all(Array.from({ length: 100 }, (_, i) => chat(clients[i % clients.length]!)));
}

function assertBudgetRefusal(outcome: Outcome, budget: string): void {
  assert.equal(outcome.ok, false);
  if (outcome.ok) return;
  assert.equal(outcome.status, 429);
  assert.equal(outcome.error.type, "budget_exceeded");
  assert.equal(outcome.error.code, "budget_exceeded");
  assert.equal(outcome.error.budget, budget);
  assert.equal(outcome.error.amount_usd, "1");
  // The seeded $0.95 and what was admitted, never beyond the amount (the ledger holds at most that).
  assert.match(String(outcome.error.spend_usd), /^(0\.9\d*|1)$/);
  const resets = new Date(String(outcome.error.resets_at));
  const nextMonth = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() + 1, 1));
  assert.equal(resets.toISOString(), nextMonth.toISOString());
  // Retrying cannot help before the reset, weeks away: the SDKs are told not to, and given no wait to sleep through.
  assert.equal(outcome.shouldRetry, "false");
  assert.equal(outcome.retryAfter, null);
}

/** Waits until every admitted call is in the ledger, then checks the amount was never passed. */
async function assertWithinBudget(team: string, outcomes: Outcome[]): Promise<bigint> {
  const admitted = outcomes.filter((o) => o.ok).length;
  await waitFor("every admitted call in the ledger", async () => (await teamSpend(team)).proxied === admitted);
  const { cost } = await teamSpend(team);
  assert.equal(cost, (95n * PICO) / 100n + BigInt(admitted) * CALL_COST);
  assert.ok(cost <= PICO, `spend ${cost} stays within the $1 budget`);
  return cost;
}

describe("a nearly spent hard budget under 100 concurrent calls", () => {
  test("one gateway: spend never passes the amount, refusals are OpenAI-shaped 429s, the room left is used", async () => {
    await createBudget({ name: "burst-one", scope: { team: "burst-one" }, amount_usd: "1", mode: "hard" });
    await seedSpend("burst-one", 0.95);
    const client = openai(a, await virtualKey(a, "burst-one"));
    const outcomes = await burst([client]);
    const refused = outcomes.filter((o) => !o.ok);
    assert.ok(outcomes.some((o) => o.ok), "calls that fit are admitted");
    assert.ok(refused.length > 0);
    for (const outcome of refused) assertBudgetRefusal(outcome, "burst-one");
    await assertWithinBudget("burst-one", outcomes);

    // One at a time, calls keep being admitted until less than one worst case is left. A refusal
    // is tried again after the background refresh, which drops a call a sync may have counted twice.
    const later: Outcome[] = [];
    for (let refusals = 0; later.length < 30 && refusals < 2; ) {
      const outcome = await chat(client);
      later.push(outcome);
      if (outcome.ok) refusals = 0;
      else {
        assertBudgetRefusal(outcome, "burst-one");
        refusals++;
        await sleep(200);
      }
    }
    const spent = await assertWithinBudget("burst-one", [...outcomes, ...later]);
    assert.ok(PICO - spent < 2n * CALL_COST, `less than one worst case is left: ${PICO - spent}`);
  });

  test("two gateways over one database: the amount holds across both", async () => {
    await createBudget({ name: "burst-two", scope: { team: "burst-two" }, amount_usd: "1", mode: "hard" });
    await seedSpend("burst-two", 0.95);
    const b = await startTestGateway(env, { database });
    try {
      const outcomes = await burst([openai(a, await virtualKey(a, "burst-two")), openai(b, await virtualKey(b, "burst-two"))]);
      assert.ok(outcomes.some((o) => o.ok));
      for (const outcome of outcomes.filter((o) => !o.ok)) assertBudgetRefusal(outcome, "burst-two");
      await assertWithinBudget("burst-two", outcomes);
    } finally {
      await b.close();
    }
  });
});

describe("what a refusal looks like and what lifts it", () => {
  test("a call whose worst case does not fit what is left is told so, with what it could cost", async () => {
    await createBudget({ name: "no-cap", scope: { team: "no-cap" }, amount_usd: "1", mode: "hard" });
    await seedSpend("no-cap", 0.95);
    // Without max_tokens, gpt-4o could answer up to its 128,000-token context window: $1.28 at worst.
    const res = await fetch(`${a.base}/openai/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${await virtualKey(a, "no-cap")}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(res.status, 429);
    const body = (await res.json()) as { error: Record<string, unknown> };
    assert.equal(body.error.type, "budget_exceeded");
    assert.equal(body.error.remaining_usd, "0.05");
    assert.match(String(body.error.reserve_usd), /^1\.28\d*$/);
    assert.match(String(body.error.message), /could cost up to \$1\.28/);
  });

  test("the official SDKs at their default retries give up at once: one request each, no sleeping until the reset", async () => {
    await createBudget({ name: "sdk-defaults", scope: { team: "sdk-defaults" }, amount_usd: "0.5", mode: "hard" });
    await seedSpend("sdk-defaults", 0.6);
    const key = await virtualKey(a, "sdk-defaults");
    let sent = 0;
    // The real SDKs' own retry logic, left at its defaults (2 retries); only the requests that leave are counted.
    const counting: typeof fetch = (input, init) => {
      sent++;
      return fetch(input, init);
    };
    const gpt = new OpenAI({ baseURL: `${a.base}/openai/v1`, apiKey: key, fetch: counting });
    const gptErr = await gpt.chat.completions.create(ask).catch((e: unknown) => e);
    assert.ok(gptErr instanceof OpenAI.RateLimitError);
    assert.equal(sent, 1, "openai sent the refused call once");
    const claude = new Anthropic({ baseURL: `${a.base}/anthropic`, apiKey: key, fetch: counting });
    const claudeErr = await claude.messages.create({ model: "claude-sonnet-4-5", max_tokens: 100, messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e);
    assert.ok(claudeErr instanceof Anthropic.RateLimitError);
    assert.equal(sent, 2, "Anthropic's SDK sent the refused call once");
  });

  test("Anthropic and Gemini clients get their own error shapes", async () => {
    await createBudget({ name: "shapes", scope: { team: "shapes" }, amount_usd: "0.5", mode: "hard" });
    await seedSpend("shapes", 0.6);
    const key = await virtualKey(a, "shapes");
    const claude = new Anthropic({ baseURL: `${a.base}/anthropic`, apiKey: key, maxRetries: 0 });
    const err = await claude.messages.create({ model: "claude-sonnet-4-5", max_tokens: 100, messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e);
    assert.ok(err instanceof Anthropic.APIError);
    assert.equal(err.status, 429);
    const body = err.error as { type: string; error: Record<string, unknown> };
    assert.equal(body.type, "error");
    assert.equal(body.error.type, "budget_exceeded");
    assert.equal(body.error.budget, "shapes");
    assert.equal(body.error.spend_usd, "0.6");
    assert.equal(body.error.amount_usd, "0.5");
    assert.equal(err.headers?.get("x-should-retry"), "false");
    assert.equal(err.headers?.get("retry-after"), null);

    const gemini = await fetch(`${a.base}/gemini/v1beta/models/gemini-2.5-flash:generateContent`, {
      method: "POST",
      headers: { "x-goog-api-key": key, "content-type": "application/json" },
      body: JSON.stringify({ contents: [{ parts: [{ text: "hi" }] }] }),
    });
    assert.equal(gemini.status, 429);
    const rpc = (await gemini.json()) as { error: { code: number; status: string; details: { reason: string; metadata: Record<string, string> }[] } };
    assert.equal(rpc.error.code, 429);
    assert.equal(rpc.error.status, "RESOURCE_EXHAUSTED");
    assert.equal(rpc.error.details[0]!.reason, "BUDGET_EXCEEDED");
    assert.equal(rpc.error.details[0]!.metadata.budget, "shapes");
  });

  test("a raise lifts the block at once in the gateway that made it, and soon in the other", async () => {
    const id = await createBudget({ name: "raise", scope: { team: "raise" }, amount_usd: "1", mode: "hard" });
    await seedSpend("raise", 1);
    const b = await startTestGateway(env, { database });
    try {
      const here = openai(a, await virtualKey(a, "raise"));
      const there = openai(b, await virtualKey(b, "raise"));
      assert.equal((await chat(here)).ok, false);
      assert.equal((await chat(there)).ok, false);
      const res = await a.admin(`/api/budgets/${id}`, { method: "PATCH", body: JSON.stringify({ amount_usd: "2" }) });
      assert.equal(res.status, 200);
      assert.equal((await chat(here)).ok, true);
      await waitFor("the other gateway to see the raise", async () => (await chat(there)).ok);
    } finally {
      await b.close();
    }
  });

  test("a failed call gives back what it held", async () => {
    // Room for one worst case only: the second call fits only if the first one's hold came back.
    await createBudget({ name: "failed", scope: { team: "failed" }, amount_usd: "1", mode: "hard" });
    await seedSpend("failed", 0.993);
    const client = openai(a, await virtualKey(a, "failed"));
    openaiFake.setNext({ status: 500 });
    const first = await chat(client);
    assert.equal(first.ok ? 0 : first.status, 500);
    assert.equal((await chat(client)).ok, true);
  });
});

describe("a hard budget on a model family", () => {
  test("counts the dated snapshots that answer, holds calls asking for one, and ignores other families", async () => {
    await createBudget({ name: "family", scope: { team: "family", model: "gpt-4o" }, amount_usd: "1", mode: "hard" });
    // Another family's snapshot ($0.30 at its own price): had it counted, the budget would be over at once.
    await seedSpend("family", 5, "gpt-4o-mini-2024-07-18");
    // Room for two calls' real cost but not for a third's worst case.
    await seedSpend("family", 0.985, "gpt-4o-2024-08-06");
    const client = openai(a, await virtualKey(a, "family"));
    for (let i = 0; i < 2; i++) {
      openaiFake.setNext({ model: "gpt-4o-2024-08-06" });
      assert.deepEqual(await chat(client), { ok: true });
    }
    const refused = await chat(client);
    assert.equal(refused.ok ? 200 : refused.status, 429);
    if (!refused.ok) assert.equal(refused.error.budget, "family");

    const answered = async () =>
      (await database.rows<{ cost: string; calls: number }>(sql`
        select coalesce(sum(cost), 0)::text as cost, count(*)::int as calls
        from usage_events where team = 'family' and source = 'proxy' and model = 'gpt-4o-2024-08-06'`))[0]!;
    await waitFor("both calls in the ledger, under the snapshot that answered", async () => (await answered()).calls === 2);
    assert.equal(BigInt((await answered()).cost), 2n * CALL_COST);

    // Asked for by its snapshot's name, a call is held against the family's budget too.
    const snapshot = await client.chat.completions.create({ ...ask, model: "gpt-4o-2024-08-06" }).catch((e: unknown) => e);
    assert.ok(snapshot instanceof OpenAI.APIError);
    assert.equal(snapshot.status, 429);
    assert.equal((snapshot.error as Record<string, unknown>).budget, "family");
  });
});

describe("budgets that never block", () => {
  test("a soft budget, a paused hard budget and another team's hard budget let calls through", async () => {
    await createBudget({ name: "soft", scope: { team: "free" }, amount_usd: "0.01", mode: "soft" });
    await createBudget({ name: "paused", scope: { team: "free" }, amount_usd: "0.01", mode: "hard", paused: true });
    await createBudget({ name: "elsewhere", scope: { team: "not-free" }, amount_usd: "0.01", mode: "hard" });
    await seedSpend("free", 1);
    await seedSpend("not-free", 1);
    const client = openai(a, await virtualKey(a, "free"));
    for (let i = 0; i < 3; i++) assert.deepEqual(await chat(client), { ok: true });
  });
});
