import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { GoogleGenAI, type InlinedRequest } from "@google/genai";
import { sql } from "drizzle-orm";
import type { Database } from "../src/db/connection.ts";
import type { FakeUpstream } from "./fakes/fake-upstream.ts";
import { GEMINI_KEY, startFakeGemini } from "./fakes/gemini.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { proxyRow } from "./helpers/proxy-ledger.ts";
import { listingTap } from "../src/providers/gemini/batch-results.ts";

/*
 * Gemini Batch API spend, with Google's own SDK (@google/genai) against the fake Gemini API: a batch
 * is created and polled, and its responses read back inline from the done batch or downloaded as a
 * JSONL file, each twice. Every succeeded request is recorded once, at the batch rate, under its
 * own id; the errored request, the create call and the poll of the running batch are not.
 *
 * Every succeeded request reports 1,000 prompt tokens, 400 candidates and 100 thinking: on
 * gemini-2.5-flash ($0.30 / M input, $2.50 / M output, thinking included) that is
 * 1,000 × 0.30 + 500 × 2.50 = 1,550 µ$ standard, and the Batch API bills half: 775 µ$.
 */
const BATCH_REQUEST = 775_000_000n;

let database: Database;
let fake: FakeUpstream;
let t: TestGateway;
let downloads: string;

before(async () => {
  database = await openTestDatabase();
  fake = await startFakeGemini();
  // Hard budgets sync only when a call needs it, never on a timer, so what the budget test sees is
  // what the process counted itself.
  t = await startTestGateway({ GEMINI_BASE_URL: fake.url, GEMINI_API_KEY: GEMINI_KEY, TOLLGATE_BUDGET_REFRESH_MS: "60000", TOLLGATE_BUDGET_LEASE_TTL_MS: "120000" }, { database });
  downloads = mkdtempSync(join(tmpdir(), "tollgate-gemini-batch-"));
});
after(async () => {
  await t?.close();
  await fake?.close();
  await database?.close();
  rmSync(downloads, { recursive: true, force: true });
});

async function virtualKey(team: string): Promise<string> {
  const res = await t.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: `k-${team}`, team }) });
  assert.equal(res.status, 201);
  return ((await res.json()) as { key: string }).key;
}

/** Waits until the recorder has written everything submitted so far: a marker call's row is in. */
async function settledLedger(key: string): Promise<void> {
  const res = await fetch(`${t.base}/gemini/v1beta/models/gemini-2.5-flash:generateContent`, {
    method: "POST",
    headers: { "x-goog-api-key": key, "content-type": "application/json" },
    body: JSON.stringify({ contents: [{ role: "user", parts: [{ text: "marker" }] }] }),
  });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  await proxyRow(database, res.headers.get("x-tollgate-request-id")!);
  // The marker's batch may commit before an earlier one still being written (the recorder writes
  // batches side by side): wait for those too.
  await t.gateway.recorder.flush();
}

/** A team's batch rows, as a plain array whichever driver read them. */
async function batchRows(team: string) {
  const rows = await database.rows<{ id: string; model: string; service_tier: string; cost: string; priced: boolean; input_tokens: string; output_tokens: string; api_key_id: string | null }>(sql`
    select id, model, service_tier, cost::text as cost, priced, input_tokens::text as input_tokens, output_tokens::text as output_tokens, api_key_id
    from usage_events where source = 'proxy' and team = ${team} and id like 'batch:%' order by id`);
  return [...rows];
}

async function metric(operation: string): Promise<number> {
  const text = await (await fetch(`${t.base}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`tollgate_proxy_requests_total{provider="gemini",operation="${operation}"}`));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

const genai = (key: string) => new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: `${t.base}/gemini` } });

describe("a listing of batches, read as it passes", () => {
  test("bills each done batch's responses under its own name, wherever in the batch the name comes, once per response", () => {
    const usage = { promptTokenCount: 10, candidatesTokenCount: 5, totalTokenCount: 15 };
    const responses = { inlinedResponses: { inlinedResponses: [{ response: { usageMetadata: usage }, metadata: { key: "a" } }, { error: { code: 400 } }, { response: { usageMetadata: usage, modelVersion: "gemini-2.5-pro" } }] } };
    const listing = {
      operations: [
        // The name after the responses, which come twice (response and metadata.output).
        { metadata: { model: "models/gemini-2.5-flash", output: responses }, done: true, response: responses, name: "batches/late" },
        { name: "batches/running", metadata: { model: "models/gemini-2.5-flash" } },
        { done: true, response: responses },
      ],
    };
    const text = JSON.stringify(listing);
    const tap = listingTap();
    for (let at = 0; at < text.length; at += 7) tap.push(Buffer.from(text.slice(at, at + 7)));
    tap.end();
    const results = tap.result().results ?? [];
    assert.deepEqual(
      results.map((r) => [r.key, r.model, r.usage?.service_tier]),
      [
        ["batch:batches/late:0:a", "gemini-2.5-flash", "batch"],
        ["batch:batches/late:2", "gemini-2.5-pro", "batch"],
      ],
      "the batch without a name cannot be told from another and bills nothing here",
    );
  });
});

describe("Gemini Batch API", () => {
  test("inline: each succeeded response is recorded once, at the batch rate, when a poll first shows the batch done", async () => {
    const team = "gemini-inline";
    const key = await virtualKey(team);
    const ai = genai(key);
    // The third request has no contents: it fails on its own, as Google fails it.
    const src: InlinedRequest[] = [
      { contents: "one", metadata: { key: "first" } },
      { contents: "two", metadata: { key: "second" } },
      { metadata: { key: "third" } },
    ];
    const created = await ai.batches.create({ model: "gemini-2.5-flash", src });
    const name = created.name!;
    assert.match(name, /^batches\/[a-z0-9]+$/);

    const running = await ai.batches.get({ name });
    assert.equal(running.state, "JOB_STATE_RUNNING");
    await settledLedger(key);
    assert.deepEqual(await batchRows(team), [], "neither the create call nor a poll of the running batch is billed");

    const done = await ai.batches.get({ name });
    assert.equal(done.state, "JOB_STATE_SUCCEEDED");
    const results = done.dest?.inlinedResponses ?? [];
    assert.deepEqual(results.map((r) => [r.metadata?.key, r.response ? "response" : "error"]), [["first", "response"], ["second", "response"], ["third", "error"]], "the client got the responses whole");
    await ai.batches.get({ name });

    await settledLedger(key);
    const rows = await batchRows(team);
    assert.deepEqual(rows.map((r) => r.id), [`batch:${name}:0:first`, `batch:${name}:1:second`], "one row per succeeded response, none for the error, none more for the second read");
    for (const row of rows) {
      assert.equal(row.model, "gemini-2.5-flash");
      assert.equal(row.service_tier, "batch");
      assert.equal(row.priced, true);
      assert.deepEqual([row.input_tokens, row.output_tokens], ["1000", "500"]);
      assert.equal(BigInt(row.cost), BATCH_REQUEST);
      assert.ok(row.api_key_id, "attributed to the key that read it");
    }
    assert.equal(await metric("batches.retrieve"), 3);
    assert.equal(await metric("models.batchGenerateContent"), 1);
  });

  test("file: each succeeded line of the responses file is recorded once, at the batch rate, as the file is downloaded", async () => {
    const team = "gemini-file";
    const key = await virtualKey(team);
    const ai = genai(key);
    const created = await ai.batches.create({ model: "gemini-2.5-flash", src: "files/batch-input-3" });
    const name = created.name!;
    await ai.batches.get({ name });
    const done = await ai.batches.get({ name });
    assert.equal(done.state, "JOB_STATE_SUCCEEDED");
    const file = done.dest?.fileName;
    assert.match(file ?? "", /^files\/batch-[a-z0-9]+$/);
    await settledLedger(key);
    assert.deepEqual(await batchRows(team), [], "a done batch whose responses are in a file bills nothing until the file is read");

    for (const [i, downloadPath] of [join(downloads, "first.jsonl"), join(downloads, "second.jsonl")].entries()) {
      await ai.files.download({ file: file!, downloadPath });
      const lines = readFileSync(downloadPath, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { key: string; response?: unknown; error?: unknown });
      assert.deepEqual(lines.map((l) => [l.key, l.response ? "response" : "error"]), [["alpha", "response"], ["beta", "response"], ["gamma", "error"]], `download ${i + 1} reached the client whole`);
    }

    await settledLedger(key);
    const rows = await batchRows(team);
    assert.deepEqual(rows.map((r) => r.id), [`batch:${file}:0:alpha`, `batch:${file}:1:beta`], "one row per succeeded line, none for the error, none more for the second download");
    assert.ok(rows.every((r) => r.model === "gemini-2.5-flash" && r.service_tier === "batch" && r.priced && BigInt(r.cost) === BATCH_REQUEST), JSON.stringify(rows));
    assert.equal(await metric("files.download"), 2);
  });

  test("an inline answer larger than the proxy holds is read as it passes: every response is recorded", async () => {
    const team = "gemini-large";
    const key = await virtualKey(team);
    const ai = genai(key);
    // Each response's text is 4 × 600,000 characters: the done batch's answer, which carries every response twice, is about 19 MB.
    fake.setNext({ deltaBytes: 600_000 });
    const created = await ai.batches.create({ model: "gemini-2.5-flash", src: ["a", "b", "c", "d"].map((k) => ({ contents: k, metadata: { key: k } })) });
    const name = created.name!;
    await ai.batches.get({ name });
    const done = await ai.batches.get({ name });
    assert.deepEqual(done.dest?.inlinedResponses?.map((r) => r.response?.candidates?.[0]?.content?.parts?.[0]?.text?.length), [2_400_000, 2_400_000, 2_400_000, 2_400_000]);

    await settledLedger(key);
    const rows = await batchRows(team);
    assert.deepEqual(rows.map((r) => r.id), ["a", "b", "c", "d"].map((k, i) => `batch:${name}:${i}:${k}`));
    assert.ok(rows.every((r) => r.priced && BigInt(r.cost) === BATCH_REQUEST), JSON.stringify(rows));
  });

  test("a hard budget counts every response of a batch read back at once: the next call is refused from memory", async () => {
    const team = "gemini-hard";
    const key = await virtualKey(team);
    const ai = genai(key);
    const created = await ai.batches.create({ model: "gemini-2.5-flash", src: ["a", "b", "c", "d"].map((k) => ({ contents: k, metadata: { key: k } })) });
    const name = created.name!;
    await ai.batches.get({ name });
    // Room for three responses: the process's first lease is half of it, more than one response.
    // Had the read counted only its first response, the next poll would pass on that lease.
    const res = await t.admin("/api/budgets", {
      method: "POST",
      body: JSON.stringify({ name: "gemini-hard", period: "month", scope: { team }, amount_usd: "0.002325", mode: "hard" }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const done = await ai.batches.get({ name });
    assert.equal(done.dest?.inlinedResponses?.length, 4);
    await assert.rejects(ai.batches.get({ name }), (err: { status?: number }) => err.status === 429, "refused: four responses cost more than the budget");

    // The team's own marker call would be refused too: another team's settles the ledger.
    await settledLedger(await virtualKey(`${team}-marker`));
    const rows = await batchRows(team);
    assert.equal(rows.length, 4);
    assert.ok(rows.every((r) => BigInt(r.cost) === BATCH_REQUEST), JSON.stringify(rows));
  });

  test("a response too long to read is recorded unpriced, never as $0", async () => {
    const team = "gemini-huge";
    const key = await virtualKey(team);
    const ai = genai(key);
    // 4 × 1,100,000 characters: past the 4 MiB the gateway reads of one response.
    fake.setNext({ deltaBytes: 1_100_000 });
    const created = await ai.batches.create({ model: "gemini-2.5-flash", src: [{ contents: "huge", metadata: { key: "huge" } }] });
    const name = created.name!;
    await ai.batches.get({ name });
    await ai.batches.get({ name });

    await settledLedger(key);
    const rows = await batchRows(team);
    assert.deepEqual(
      rows.map((r) => [r.id, r.model, r.service_tier, r.priced, r.cost]),
      [[`batch:${name}:0`, "gemini-2.5-flash", "batch", false, "0"]],
      "one row, its model and tier from the batch, marked unpriced",
    );
  });

  test("listing: a done batch's responses in a listing are recorded as a poll records them, and a poll after records nothing more", async () => {
    const team = "gemini-listed";
    const key = await virtualKey(team);
    const ai = genai(key);
    const created = await ai.batches.create({
      model: "gemini-2.5-flash",
      src: [{ contents: "one", metadata: { key: "first" } }, { metadata: { key: "failing" } }, { contents: "three" }],
    });
    const name = created.name!;
    const listed = async () => {
      const jobs = [];
      for await (const job of await ai.batches.list()) jobs.push(job);
      return jobs.find((j) => j.name === name)!;
    };
    assert.equal((await listed()).state, "JOB_STATE_RUNNING");
    await settledLedger(key);
    assert.deepEqual(await batchRows(team), [], "a listing showing the batch running bills nothing");

    const done = await listed();
    assert.equal(done.state, "JOB_STATE_SUCCEEDED");
    assert.deepEqual(done.dest?.inlinedResponses?.map((r) => (r.response ? "response" : "error")), ["response", "error", "response"], "the client got the responses");
    await settledLedger(key);
    const rows = await batchRows(team);
    assert.deepEqual(rows.map((r) => r.id), [`batch:${name}:0:first`, `batch:${name}:2`], "one row per succeeded response, under the ids a poll gives them");
    assert.ok(rows.every((r) => r.model === "gemini-2.5-flash" && r.service_tier === "batch" && BigInt(r.cost) === BATCH_REQUEST), JSON.stringify(rows));

    await ai.batches.get({ name });
    await listed();
    await settledLedger(key);
    assert.deepEqual((await batchRows(team)).map((r) => r.id), rows.map((r) => r.id), "polled and listed again: nothing more");
    assert.ok((await metric("batches.list")) >= 3);
  });
});
