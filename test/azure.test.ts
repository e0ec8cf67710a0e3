import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import OpenAI, { AzureOpenAI } from "openai";
import { AZURE_KEY, startFakeAzureOpenAI } from "./fakes/azure-openai.ts";
import { answerText, type FakeUpstream } from "./fakes/fake-upstream.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { waitFor } from "./helpers/wait.ts";

/*
 * Azure OpenAI through the gateway: the official `AzureOpenAI` client (openai SDK) with its endpoint
 * at `<gateway>/azure` and a Tollgate key as its apiKey, against the fake Azure resource.
 */

let fake: FakeUpstream;
let t: TestGateway;

before(async () => {
  fake = await startFakeAzureOpenAI();
  t = await startTestGateway({ AZURE_OPENAI_BASE_URL: fake.url, AZURE_OPENAI_API_KEY: AZURE_KEY, TOLLGATE_BUDGET_REFRESH_MS: "50", TOLLGATE_JOBS: "off" });
});
after(async () => {
  await t.close();
  await fake.close();
});

const PICO = 1_000_000_000_000n;
/** gpt-4o-2024-08-06 at OpenAI's prices: 176 uncached input at $2.50/M, 1,024 cached at $1.25/M, 300 output at $10/M. */
const CALL_COST = 4_720_000_000n;
const messages = [{ role: "user" as const, content: "hi" }];

async function virtualKey(team: string): Promise<string> {
  const res = await t.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: `k-${team}`, team }) });
  return ((await res.json()) as { key: string }).key;
}

const azure = (key: string, apiVersion = "2024-10-21") => new AzureOpenAI({ endpoint: `${t.base}/azure`, apiKey: key, apiVersion, maxRetries: 0 });

type Row = {
  provider: string;
  model: string;
  cost: string;
  priced: boolean;
  estimated: boolean;
  tags: Record<string, string>;
  status: string;
  input_tokens: string;
  output_tokens: string;
};

/** The team's proxied calls, oldest first, once `count` of them are in the ledger. */
async function ledger(team: string, count: number): Promise<Row[]> {
  const read = () =>
    t.gateway.database.rows<Row>(sql`
      select provider, model, cost::text as cost, priced, estimated, tags, status, input_tokens::text as input_tokens, output_tokens::text as output_tokens
      from usage_events where team = ${team} and source = 'proxy' order by ts, received_at`);
  await waitFor(`${count} proxied calls of ${team} in the ledger`, async () => (await read()).length >= count);
  return read();
}

describe("the AzureOpenAI client through /azure", () => {
  test("a chat completion: forwarded to the deployment with the resource's key; the answering model, priced as OpenAI's, the deployment as a tag", async () => {
    const team = "az-whole";
    const client = azure(await virtualKey(team));
    const before = fake.requests.length;
    const answer = await client.chat.completions.create({ model: "gpt-4o-prod", messages });
    assert.equal(answer.choices[0]?.message.content, answerText());
    assert.equal(answer.model, "gpt-4o-2024-08-06");

    const sent = fake.requests[before]!;
    assert.equal(sent.path, "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21");
    assert.equal(sent.headers["api-key"], AZURE_KEY, "the resource's key goes upstream");
    assert.equal(sent.headers.authorization, undefined);

    const [row] = await ledger(team, 1);
    assert.deepEqual(
      { provider: row!.provider, model: row!.model, cost: row!.cost, priced: row!.priced, tags: row!.tags, status: row!.status },
      { provider: "azure", model: "gpt-4o-2024-08-06", cost: String(CALL_COST), priced: true, tags: { deployment: "gpt-4o-prod" }, status: "ok" },
    );
  });

  test("a stream: usage is asked for on the client's behalf and the usage chunk kept from it; the cost is exact", async () => {
    const team = "az-stream";
    const client = azure(await virtualKey(team));
    const before = fake.requests.length;
    const stream = await client.chat.completions.create({ model: "gpt-4o-prod", messages, stream: true });
    let text = "";
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      assert.equal(chunk.usage ?? null, null, "a chunk with usage would be one the client did not ask for");
      text += chunk.choices[0]?.delta?.content ?? "";
    }
    assert.equal(text, answerText());
    assert.ok(chunks > 1);
    assert.deepEqual((fake.requests[before]!.body as { stream_options: unknown }).stream_options, { include_usage: true });

    const [row] = await ledger(team, 1);
    assert.equal(row!.model, "gpt-4o-2024-08-06");
    assert.equal(row!.cost, String(CALL_COST));
    assert.deepEqual(row!.tags, { deployment: "gpt-4o-prod" });
  });

  test("a stream that asks for usage itself gets it; an api-version older than stream_options is not sent one", async () => {
    const team = "az-versions";
    const key = await virtualKey(team);
    const asked = await azure(key).chat.completions.create({ model: "gpt-4o-prod", messages, stream: true, stream_options: { include_usage: true } });
    let usage: unknown;
    for await (const chunk of asked) usage = chunk.usage ?? usage;
    assert.equal((usage as { prompt_tokens: number }).prompt_tokens, 1200);

    // 2024-06-01 refuses stream_options: the gateway leaves the body alone, and the call is priced at its estimate.
    const before = fake.requests.length;
    const old = await azure(key, "2024-06-01").chat.completions.create({ model: "gpt-4o-prod", messages, stream: true });
    let text = "";
    for await (const chunk of old) text += chunk.choices[0]?.delta?.content ?? "";
    assert.equal(text, answerText());
    assert.equal((fake.requests[before]!.body as { stream_options?: unknown }).stream_options, undefined);

    const [first, second] = await ledger(team, 2);
    assert.equal(first!.cost, String(CALL_COST));
    assert.deepEqual({ priced: second!.priced, estimated: second!.estimated, model: second!.model }, { priced: true, estimated: true, model: "gpt-4o-2024-08-06" });
    assert.ok(BigInt(second!.cost) > 0n, "never $0 for usage the stream did not report");
  });

  test("the Responses API (no deployment in the path) and the v1 API with the plain OpenAI client: the body's model is the deployment", async () => {
    const team = "az-paths";
    const key = await virtualKey(team);
    const before = fake.requests.length;
    const response = await azure(key, "2025-04-01-preview").responses.create({ model: "mini-dev", input: "hi" });
    assert.equal(response.model, "gpt-4o-mini-2024-07-18");
    assert.equal(fake.requests[before]!.path, "/openai/responses?api-version=2025-04-01-preview");

    // Azure's v1 API is spoken by the plain client, whose key goes in `Authorization: Bearer`.
    const v1 = new OpenAI({ baseURL: `${t.base}/azure/openai/v1`, apiKey: key, maxRetries: 0 });
    await v1.chat.completions.create({ model: "gpt-4o-prod", messages });
    assert.equal(fake.requests[before + 1]!.path, "/openai/v1/chat/completions");
    assert.equal(fake.requests[before + 1]!.headers["api-key"], AZURE_KEY);

    const rows = await ledger(team, 2);
    assert.deepEqual(
      rows.map((r) => [r.model, r.tags.deployment, r.priced]),
      [
        ["gpt-4o-mini-2024-07-18", "mini-dev", true],
        ["gpt-4o-2024-08-06", "gpt-4o-prod", true],
      ],
    );
  });

  test("Azure's own errors come back to the client as they were", async () => {
    const client = azure(await virtualKey("az-errors"));
    const err = await client.chat.completions.create({ model: "no-such-deployment", messages }).catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.APIError);
    assert.equal(err.status, 404);
    assert.equal(err.code, "DeploymentNotFound");
    const wrongKey = await azure("tlg_not-a-key").chat.completions.create({ model: "gpt-4o-prod", messages }).catch((e: unknown) => e);
    assert.ok(wrongKey instanceof OpenAI.AuthenticationError);
    assert.equal(wrongKey.code, "invalid_api_key");
  });

  test("a hard budget refuses the call in Azure's error shape", async () => {
    const team = "az-budget";
    const created = await t.admin("/api/budgets", {
      method: "POST",
      body: JSON.stringify({ name: team, period: "month", scope: { team }, amount_usd: "0.5", mode: "hard" }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const ingest = await t.ingestKey();
    const seeded = await fetch(`${t.base}/v1/usage`, {
      method: "POST",
      headers: { authorization: `Bearer ${ingest}`, "content-type": "application/json" },
      body: JSON.stringify({ id: `seed-${team}`, provider: "Azure", model: "gpt-4o", input_tokens: 240_000, team }),
    });
    assert.equal(seeded.status, 200);
    const client = azure(await virtualKey(team));
    const call = () => client.chat.completions.create({ model: "gpt-4o-prod", messages, max_tokens: 50 }).catch((e: unknown) => e);
    // Budgets reach the proxy with its next refresh.
    await waitFor("the budget to refuse", async () => (await call()) instanceof OpenAI.RateLimitError);
    const before = fake.requests.length;
    const err = await call();
    assert.ok(err instanceof OpenAI.RateLimitError);
    assert.equal(err.code, "budget_exceeded");
    const body = err.error as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).slice(0, 2), ["code", "message"]);
    assert.equal(body.budget, team);
    assert.equal(body.amount_usd, "0.5");
    assert.match(String(body.spend_usd), /^0\.6\d*$/);
    assert.match(String(body.message), /budget az-budget is exhausted/);
    assert.equal(err.headers?.get("x-should-retry"), "false");
    assert.equal(err.headers?.get("retry-after"), null);
    assert.equal(fake.requests.length, before, "nothing reached Azure");
    // The seeded spend, recorded through the usage webhook as `Azure`, counts as the proxy's `azure`.
    const [row] = await t.gateway.database.rows<{ provider: string; cost: string }>(sql`select provider, cost::text as cost from usage_events where id = ${`seed-${team}`}`);
    assert.deepEqual(row, { provider: "azure", cost: String((6n * PICO) / 10n) });
  });
});

describe("an Azure route without its key or endpoint", () => {
  test("no key: 503 in Azure's shape until a provider key named azure is stored, then the stored key is used", async () => {
    const keyless = await startTestGateway({ AZURE_OPENAI_BASE_URL: fake.url, TOLLGATE_JOBS: "off" });
    try {
      const res = await keyless.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: "k", team: "keyless" }) });
      const key = ((await res.json()) as { key: string }).key;
      const client = new AzureOpenAI({ endpoint: `${keyless.base}/azure`, apiKey: key, apiVersion: "2024-10-21", maxRetries: 0 });
      const err = await client.chat.completions.create({ model: "gpt-4o-prod", messages }).catch((e: unknown) => e);
      assert.ok(err instanceof OpenAI.APIError);
      assert.equal(err.status, 503);
      assert.equal(err.code, "provider_not_configured");

      const stored = await keyless.admin("/api/providers", { method: "POST", body: JSON.stringify({ name: "azure", api_key: AZURE_KEY }) });
      assert.equal(stored.status, 200, await stored.clone().text());
      const before = fake.requests.length;
      const answer = await client.chat.completions.create({ model: "gpt-4o-prod", messages });
      assert.equal(answer.model, "gpt-4o-2024-08-06");
      assert.equal(fake.requests[before]!.headers["api-key"], AZURE_KEY);
    } finally {
      await keyless.close();
    }
  });

  test("no endpoint: 503 naming AZURE_OPENAI_BASE_URL", async () => {
    const bare = await startTestGateway({ TOLLGATE_JOBS: "off" });
    try {
      const res = await bare.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: "k", team: "bare" }) });
      const key = ((await res.json()) as { key: string }).key;
      const answer = await fetch(`${bare.base}/azure/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21`, {
        method: "POST",
        headers: { "api-key": key, "content-type": "application/json" },
        body: JSON.stringify({ messages }),
      });
      assert.equal(answer.status, 503);
      const body = (await answer.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, "provider_not_configured");
      assert.match(body.error.message, /AZURE_OPENAI_BASE_URL/);
    } finally {
      await bare.close();
    }
  });
});
