import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { sign } from "../src/signing/standard-webhooks.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";

let t: TestGateway;
let key: string;
before(async () => {
  t = await startTestGateway();
  key = await t.ingestKey();
});
after(() => t.close());

const now = () => new Date().toISOString();
let seq = 0;
const uid = (p = "e") => `${p}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;

/** gpt-4o, 10,000 prompt tokens of which 8,000 cached, 1,000 output: $0.025. */
const gpt4o = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  timestamp: now(),
  provider: "openai",
  model: "gpt-4o",
  input_tokens: 10_000,
  cached_input_tokens: 8_000,
  output_tokens: 1_000,
  ...extra,
});

async function post(body: unknown, headers: Record<string, string> = {}, contentType = "application/json") {
  const res = await fetch(`${t.base}/v1/usage`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": contentType, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, type: res.headers.get("content-type") ?? "", body: (await res.json()) as any };
}

async function storedCost(team: string): Promise<{ cost: string; requests: string }> {
  const [row] = await t.gateway.database.rows<{ cost: string; requests: string }>(
    sql`select coalesce(sum(cost), 0)::text as cost, count(*)::text as requests from usage_events where team = ${team}`,
  );
  return row!;
}

describe("POST /v1/usage", () => {
  test("one event is priced exactly and answered only after it is stored", async () => {
    const res = await post(gpt4o(uid(), { team: "one-event" }));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { accepted: 1, duplicates: 0, rejected: [] });
    assert.deepEqual(await storedCost("one-event"), { cost: "25000000000", requests: "1" });
  });

  test("duplicates inside a batch and across batches are counted once", async () => {
    const a = uid();
    const b = uid();
    const first = await post([gpt4o(a, { team: "dupes" }), gpt4o(a, { team: "dupes" }), gpt4o(b, { team: "dupes" })]);
    assert.deepEqual(first.body, { accepted: 2, duplicates: 1, rejected: [] });
    const again = await post([gpt4o(a, { team: "dupes" }), gpt4o(b, { team: "dupes" })]);
    assert.deepEqual(again.body, { accepted: 0, duplicates: 2, rejected: [] });
    assert.deepEqual(await storedCost("dupes"), { cost: "50000000000", requests: "2" });
    const spend = await (await t.admin("/api/spend?period=today&team=dupes")).json();
    assert.equal((spend as any).total.cost_usd, "0.05");
  });

  test("NDJSON: a bad line is rejected with its index and the lines beside it are kept", async () => {
    const lines = [JSON.stringify(gpt4o(uid(), { team: "ndjson" })), "{not json", JSON.stringify(gpt4o(uid(), { team: "ndjson" }))].join("\n");
    const res = await post(lines, {}, "application/x-ndjson");
    assert.equal(res.status, 207);
    assert.equal(res.body.accepted, 2);
    assert.equal(res.body.rejected.length, 1);
    assert.equal(res.body.rejected[0].index, 1);
    assert.match(res.body.rejected[0].errors[0].message, /not JSON/);
    assert.equal((await storedCost("ndjson")).requests, "2");
  });

  test("bad fields get their paths; valid events beside them are kept", async () => {
    const good = uid();
    const res = await post([
      gpt4o(good, { team: "mixed" }),
      gpt4o(uid(), { input_tokens: "many" }),
      gpt4o(uid(), { output_tokens: -5 }),
      gpt4o(uid(), { input_tokens: 10_000_000_000 }),
      gpt4o(uid(), { colour: "blue" }),
      gpt4o(uid(), { cached_input_tokens: 20_000 }),
      { timestamp: now(), model: "gpt-4o" },
      gpt4o(uid(), { timestamp: new Date(Date.now() + 48 * 3600_000).toISOString() }),
      gpt4o(uid(), { tags: { env: 3 } }),
    ]);
    assert.equal(res.status, 207);
    assert.equal(res.body.accepted, 1);
    const paths = res.body.rejected.map((r: any) => [r.index, r.errors.map((e: any) => e.path).join(",")]);
    assert.deepEqual(paths, [
      [1, "input_tokens"],
      [2, "output_tokens"],
      [3, "input_tokens"],
      [4, ""],
      [5, "cached_input_tokens"],
      [6, "id"],
      [7, "timestamp"],
      [8, "tags.env"],
    ]);
    assert.match(res.body.rejected[3].errors[0].message, /colour/);
    assert.match(res.body.rejected[1].id, /^e-/);
    assert.equal(res.body.rejected[5].id, null);
    assert.equal((await storedCost("mixed")).requests, "1");
  });

  test("text Postgres cannot store and impossible years are rejected, not retried forever", async () => {
    const res = await post([
      gpt4o(uid(), { team: "nul\u0000team" }),
      gpt4o(uid(), { timestamp: "0000-01-01T00:00:00Z" }),
      gpt4o(uid(), { team: "storable" }),
    ]);
    assert.equal(res.status, 207);
    assert.equal(res.body.accepted, 1);
    assert.deepEqual(res.body.rejected.map((r: any) => [r.index, r.errors[0].path]), [[0, ""], [1, "timestamp"]]);
    assert.match(res.body.rejected[0].errors[0].message, /NUL/);
  });

  test("all items rejected answers 422 and stores nothing", async () => {
    const res = await post([gpt4o(uid(), { team: "none", output_tokens: -1 })]);
    assert.equal(res.status, 422);
    assert.equal(res.body.accepted, 0);
    assert.equal((await storedCost("none")).requests, "0");
  });

  test("an unknown model is recorded unpriced, never as a silent $0", async () => {
    const res = await post({ id: uid(), timestamp: now(), provider: "acme", model: "acme-secret-9000", input_tokens: 100, output_tokens: 10, team: "unpriced" });
    assert.equal(res.status, 200);
    const [row] = await t.gateway.database.rows<{ priced: boolean }>(sql`select priced from usage_events where team = 'unpriced'`);
    assert.equal(row!.priced, false);
    const spend = (await (await t.admin("/api/spend?period=today&team=unpriced")).json()) as any;
    assert.equal(spend.unpriced_requests, 1);
  });

  test("a provider's raw usage object is normalised by the shared extractors", async () => {
    const res = await post({
      id: uid(),
      timestamp: now(),
      provider: "anthropic",
      model: "claude-sonnet-4-5",
      team: "raw-usage",
      usage: {
        input_tokens: 1000,
        cache_read_input_tokens: 5000,
        cache_creation_input_tokens: 4000,
        cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 4000 },
        output_tokens: 500,
      },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await storedCost("raw-usage"), { cost: "36000000000", requests: "1" });
  });

  test("a provider's name arrives as every door spells it: x-ai and xai, google and gemini, Azure and azure are one provider", async () => {
    const team = "provider-names";
    const item = (provider: string, model: string) => ({ id: uid(), timestamp: now(), provider, model, input_tokens: 100_000, team });
    const res = await post([
      item("x-ai", "grok-4"),
      item("xai", "grok-4"),
      item("google", "gemini-2.5-pro"),
      item("gemini", "gemini-2.5-pro"),
      item("Azure", "gpt-4o"),
      item("azure", "gpt-4o"),
    ]);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const rows = await t.gateway.database.rows<{ provider: string; requests: string; cost: string }>(sql`
      select provider, count(*)::text as requests, sum(cost)::text as cost from usage_events where team = ${team} group by provider order by provider`);
    // One row per provider, each priced at its own list price: $2.50, $1.25 and $3 per million input tokens.
    // Spread: postgres.js answers with an array of its own class, which deepEqual tells apart.
    assert.deepEqual([...rows], [
      { provider: "azure", requests: "2", cost: "500000000000" },
      { provider: "gemini", requests: "2", cost: "250000000000" },
      { provider: "xai", requests: "2", cost: "600000000000" },
    ]);
  });

  test("the sender's own cost is kept beside ours, not instead of it", async () => {
    const id = uid();
    await post(gpt4o(id, { cost_usd: "0.03", team: "reported" }));
    const [row] = await t.gateway.database.rows<{ cost: string; reported_cost: string }>(
      sql`select cost::text, reported_cost::text from usage_events where id = ${id}`,
    );
    assert.deepEqual(row, { cost: "25000000000", reported_cost: "30000000000" });
  });

  test("text with quotes, backslashes, braces, commas and newlines is stored verbatim", async () => {
    const id = `we"ird\\id,{x} ${uid()}`;
    const team = 'team "quoted" \\ {braced}, NULL';
    const tags = { note: "line one\nline two", "k,\"ey": "ü ✓ \\" };
    assert.equal((await post(gpt4o(id, { team, tags }))).status, 200);
    const [row] = await t.gateway.database.rows<{ team: string; tags: unknown }>(sql`select team, tags from usage_events where id = ${id}`);
    assert.deepEqual(row, { team, tags });
  });

  test("a __proto__ tag key is refused by name, not dropped in silence", async () => {
    const res = await post(`[${JSON.stringify(gpt4o(uid(), { team: "proto-tag" })).replace(/}$/, ',"tags":{"__proto__":"x","env":"prod"}}')}]`);
    assert.equal(res.status, 422);
    assert.deepEqual(res.body.rejected[0].errors.map((e: any) => e.path), ["tags.__proto__"]);
    assert.match(res.body.rejected[0].errors[0].message, /__proto__ cannot be a tag key/);
  });

  test("a body is read by its charset: UTF-16 is decoded, an unknown charset is 415, bytes wrong for theirs are 400", async () => {
    const team = "charset-ü✓";
    const body = JSON.stringify(gpt4o(uid(), { team }));
    const other = JSON.stringify(gpt4o(uid(), { team }));
    const send = (bytes: Buffer, type: string) =>
      fetch(`${t.base}/v1/usage`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": type }, body: bytes });
    assert.equal((await send(Buffer.from(`\ufeff${body}`, "utf16le"), "application/json; charset=utf-16")).status, 200);
    const be = Buffer.from(other, "utf16le").swap16();
    assert.equal((await send(be, "application/json; charset=UTF-16BE")).status, 200);
    assert.equal((await storedCost(team)).requests, "2");
    const unknown = await send(Buffer.from(body), "application/json; charset=x-klingon");
    assert.equal(unknown.status, 415);
    assert.match(((await unknown.json()) as any).detail, /charset "x-klingon"/);
    const broken = await send(Buffer.from([0x7b, 0xff, 0x7d]), "application/json");
    assert.equal(broken.status, 400);
    assert.match(((await broken.json()) as any).detail, /not valid utf-8/);
  });

  test("a key's own attribution wins over the event's", async () => {
    const teamKey = await t.ingestKey({ team: "bound-team" });
    const res = await post(gpt4o(uid(), { team: "someone-else" }), { authorization: `Bearer ${teamKey}` });
    assert.equal(res.status, 200);
    assert.equal((await storedCost("bound-team")).requests, "1");
    assert.equal((await storedCost("someone-else")).requests, "0");
  });

  test("CloudEvents single and batch: id and source are the identity", async () => {
    const ce = (id: string, source = "svc-a") => ({ specversion: "1.0", id, source, type: "com.example.llm.usage", time: now(), data: { model: "gpt-4o", provider: "openai", input_tokens: 10_000, cached_input_tokens: 8_000, output_tokens: 1_000, team: "ce" } });
    const one = await post(ce("ce-1"), {}, "application/cloudevents+json");
    assert.deepEqual(one.body, { accepted: 1, duplicates: 0, rejected: [] });
    const batch = await post([ce("ce-1"), ce("ce-1", "svc-b"), ce("ce-2")], {}, "application/cloudevents-batch+json");
    assert.deepEqual(batch.body, { accepted: 2, duplicates: 1, rejected: [] });
    const bad = await post([{ ...ce("ce-3"), data: { model: "gpt-4o", output_tokens: -1 } }], {}, "application/cloudevents-batch+json");
    assert.equal(bad.body.rejected[0].errors[0].path, "data.output_tokens");
    assert.equal((await storedCost("ce")).requests, "3");
  });

  test("unreadable bodies get problem+json", async () => {
    const broken = await post("{\"id\": ", {});
    assert.equal(broken.status, 400);
    assert.match(broken.type, /application\/problem\+json/);
    assert.match(broken.body.detail, /not JSON/);
    const scalar = await post("42");
    assert.equal(scalar.status, 422);
    const empty = await post("[]");
    assert.equal(empty.status, 400);
    const unsupported = await post("a,b", {}, "text/csv");
    assert.equal(unsupported.status, 415);
  });

  test("oversized bodies and too many events answer 413", async () => {
    const big = await post(JSON.stringify({ id: "x", model: "gpt-4o", pad: "x".repeat(5 * 1024 * 1024 + 10) }));
    assert.equal(big.status, 413);
    const many = Array.from({ length: 10_001 }, (_, i) => ({ id: `m-${i}`, model: "gpt-4o" }));
    const tooMany = await post(many);
    assert.equal(tooMany.status, 413);
    assert.match(tooMany.body.detail, /10000/);
  });

  test("bad or missing credentials answer 401 and store nothing", async () => {
    const event = gpt4o(uid(), { team: "unauthorised" });
    assert.equal((await post(event, { authorization: "" })).status, 401);
    assert.equal((await post(event, { authorization: "Bearer tlg_not-a-key" })).status, 401);
    const virtual = (await (await t.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: "v" }) })).json()) as any;
    const wrongKind = await post(event, { authorization: `Bearer ${virtual.key}` });
    assert.equal(wrongKind.status, 401);
    // A live key of the other kind is told what it is, not that it is invalid.
    assert.match(wrongKind.body.detail, /is a Tollgate virtual key, for calls through the proxy; reporting usage takes an ingest key/);
    const doomed = (await (await t.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "ingest", name: "doomed" }) })).json()) as any;
    assert.equal((await t.admin(`/api/keys/${doomed.id}`, { method: "DELETE" })).status, 200);
    assert.equal((await post(event, { authorization: `Bearer ${doomed.key}` })).status, 401);
    assert.equal((await storedCost("unauthorised")).requests, "0");
  });
});

describe("Standard Webhooks signatures", () => {
  let secret: string;
  let sourceId: string;
  before(async () => {
    const created = (await (await t.admin("/api/ingest-sources", { method: "POST", body: JSON.stringify({ name: "billing-svc" }) })).json()) as any;
    assert.match(created.secret, /^whsec_/);
    secret = created.secret;
    sourceId = created.id;
  });

  async function signedPost(body: string, opts: { secret?: string; ts?: number; id?: string } = {}) {
    const ts = opts.ts ?? Math.floor(Date.now() / 1000);
    const id = opts.id ?? `msg_${uid()}`;
    const res = await fetch(`${t.base}/v1/usage`, {
      method: "POST",
      headers: { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": String(ts), "webhook-signature": sign(opts.secret ?? secret, id, ts, body) },
      body,
    });
    return { status: res.status, body: (await res.json()) as any };
  }

  test("a valid signature is accepted; a replay of it is only duplicates", async () => {
    const body = JSON.stringify(gpt4o(uid(), { team: "signed" }));
    const first = await signedPost(body, { id: "msg_fixed" });
    assert.deepEqual(first.body, { accepted: 1, duplicates: 0, rejected: [] });
    const replay = await signedPost(body, { id: "msg_fixed" });
    assert.deepEqual(replay.body, { accepted: 0, duplicates: 1, rejected: [] });
    assert.equal((await storedCost("signed")).requests, "1");
  });

  test("stale or future timestamps, wrong secrets and tampered bodies answer 401", async () => {
    const body = JSON.stringify(gpt4o(uid(), { team: "bad-sig" }));
    assert.equal((await signedPost(body, { ts: Math.floor(Date.now() / 1000) - 301 })).status, 401);
    assert.equal((await signedPost(body, { ts: Math.floor(Date.now() / 1000) + 301 })).status, 401);
    assert.equal((await signedPost(body, { secret: `whsec_${Buffer.from("another secret entirely").toString("base64")}` })).status, 401);
    const ts = Math.floor(Date.now() / 1000);
    const tampered = await fetch(`${t.base}/v1/usage`, {
      method: "POST",
      headers: { "content-type": "application/json", "webhook-id": "msg_t", "webhook-timestamp": String(ts), "webhook-signature": sign(secret, "msg_t", ts, body) },
      body: body.replace("10000", "1"),
    });
    assert.equal(tampered.status, 401);
    assert.equal((await storedCost("bad-sig")).requests, "0");
  });

  test("rotation: old and new secrets both work until the old one is revoked", async () => {
    const rotated = (await (await t.admin(`/api/ingest-sources/${sourceId}/secrets`, { method: "POST" })).json()) as any;
    assert.equal((await signedPost(JSON.stringify(gpt4o(uid())), { secret: rotated.secret })).status, 200);
    assert.equal((await signedPost(JSON.stringify(gpt4o(uid())))).status, 200);
    const revoked = (await (await t.admin(`/api/ingest-sources/${sourceId}/revoke-older-secrets`, { method: "POST" })).json()) as any;
    assert.equal(revoked.revoked, 1);
    assert.equal((await signedPost(JSON.stringify(gpt4o(uid())))).status, 401);
    assert.equal((await signedPost(JSON.stringify(gpt4o(uid())), { secret: rotated.secret })).status, 200);
  });
});
