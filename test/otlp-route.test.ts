import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { sql } from "drizzle-orm";
import protobuf from "protobufjs";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { foldAll } from "../src/ledger/fold.ts";

let t: TestGateway;
let key: string;
before(async () => {
  t = await startTestGateway();
  key = await t.ingestKey();
});
after(() => t.close());

type Scalar = string | number | boolean;
const attributes = (attrs: Record<string, Scalar>) =>
  Object.entries(attrs).map(([k, v]) => ({
    key: k,
    value: typeof v === "string" ? { stringValue: v } : typeof v === "boolean" ? { boolValue: v } : { intValue: String(v) },
  }));

const hex = (bytes: number) => randomBytes(bytes).toString("hex");

/** A chat span in the current GenAI conventions: gpt-4o, 10,000 input incl. 8,000 cached, 1,000 output = $0.025. */
function genAiSpan(attrs: Record<string, Scalar> = {}) {
  const end = BigInt(Date.now()) * 1_000_000n;
  return {
    traceId: hex(16),
    spanId: hex(8),
    name: "chat gpt-4o",
    kind: 3,
    startTimeUnixNano: String(end - 1_500_000_000n),
    endTimeUnixNano: String(end),
    attributes: attributes({
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "openai",
      "gen_ai.request.model": "gpt-4o",
      "gen_ai.usage.input_tokens": 10_000,
      "gen_ai.usage.cache_read.input_tokens": 8_000,
      "gen_ai.usage.output_tokens": 1_000,
      ...attrs,
    }),
    status: {},
  };
}

const exportOf = (spans: unknown[], resource: Record<string, Scalar> = { "service.name": "checkout" }) => ({
  resourceSpans: [{ resource: { attributes: attributes(resource) }, scopeSpans: [{ scope: { name: "test" }, spans }] }],
});

async function postTraces(body: unknown, opts: { headers?: Record<string, string>; gzip?: boolean; contentType?: string } = {}) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const res = await fetch(`${t.base}/v1/traces`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${key}`,
      "content-type": opts.contentType ?? "application/json",
      ...(opts.gzip ? { "content-encoding": "gzip" } : {}),
      ...opts.headers,
    },
    body: opts.gzip ? gzipSync(text) : text,
  });
  const raw = await res.text();
  return { status: res.status, type: res.headers.get("content-type") ?? "", body: raw ? (JSON.parse(raw) as any) : undefined };
}

async function stored(id: string) {
  return t.gateway.database.rows<{ id: string; cost: string; priced: boolean; team: string | null; api_key_id: string | null; model: string; cached_input_tokens: number; source: string }>(
    sql`select id, cost::text as cost, priced, team, api_key_id, model, cached_input_tokens::int as cached_input_tokens, source
        from usage_events where id = ${id}`,
  );
}

/** google.rpc.Status read by protobufjs from its field layout (code 1, message 2), independently of the gateway's reader. */
function decodeStatus(bytes: Uint8Array): { code: number; message: string } {
  const Status = new protobuf.Type("Status").add(new protobuf.Field("code", 1, "int32")).add(new protobuf.Field("message", 2, "string"));
  return Status.toObject(Status.decode(bytes)) as { code: number; message: string };
}

const idOf = (span: { traceId: string; spanId: string }) => `${span.traceId}:${span.spanId}`;

describe("POST /v1/traces", () => {
  test("a GenAI span becomes one exactly priced event, answered {}", async () => {
    const span = genAiSpan({ "tollgate.team": "otlp-team" });
    const res = await postTraces(exportOf([span]));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {});
    const rows = await stored(idOf(span));
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.cost, "25000000000");
    assert.equal(rows[0]!.priced, true);
    assert.equal(rows[0]!.cached_input_tokens, 8_000);
    assert.equal(rows[0]!.team, "otlp-team");
    assert.match(rows[0]!.source, /^ingest:/);
  });

  test("the same export re-sent is not counted twice", async () => {
    const spans = [genAiSpan({ "tollgate.team": "otlp-resend" }), genAiSpan({ "tollgate.team": "otlp-resend" })];
    assert.deepEqual((await postTraces(exportOf(spans))).body, {});
    assert.deepEqual((await postTraces(exportOf(spans))).body, {});
    const [row] = await t.gateway.database.rows<{ n: number; cost: string }>(
      sql`select count(*)::int as n, sum(cost)::text as cost from usage_events where team = 'otlp-resend'`,
    );
    assert.deepEqual({ ...row }, { n: 2, cost: "50000000000" });
    await foldAll(t.gateway.database);
    const [rollup] = await t.gateway.database.rows<{ requests: string; cost: string }>(
      sql`select sum(requests)::text as requests, sum(cost)::text as cost from usage_rollups where grain = 'hour' and team = 'otlp-resend'`,
    );
    assert.deepEqual({ ...rollup }, { requests: "2", cost: "50000000000" });
  });

  test("a gzip-compressed body is read", async () => {
    const span = genAiSpan();
    const res = await postTraces(exportOf([span]), { gzip: true });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {});
    assert.equal((await stored(idOf(span)))[0]?.cost, "25000000000");
  });

  test("spans that are not GenAI calls are ignored, not rejected", async () => {
    const plain = { ...genAiSpan(), attributes: attributes({ "http.route": "/checkout" }) };
    const res = await postTraces(exportOf([plain]));
    assert.deepEqual(res.body, {});
    assert.equal((await stored(idOf(plain))).length, 0);
  });

  test("one bad GenAI span is rejected in partialSuccess; the good one beside it is stored", async () => {
    const bad = genAiSpan({ "gen_ai.usage.input_tokens": "lots" });
    const good = genAiSpan();
    const res = await postTraces(exportOf([bad, good]));
    assert.equal(res.status, 200);
    assert.equal(res.body.partialSuccess.rejectedSpans, "1");
    assert.match(res.body.partialSuccess.errorMessage, new RegExp(bad.spanId));
    assert.match(res.body.partialSuccess.errorMessage, /gen_ai\.usage\.input_tokens/);
    assert.equal((await stored(idOf(bad))).length, 0);
    assert.equal((await stored(idOf(good))).length, 1);
  });

  test("spans Postgres could not store are rejected in partialSuccess, not failed as a retryable 503", async () => {
    const nul = genAiSpan({ "tollgate.team": "nul\u0000team" });
    const farFuture = { ...genAiSpan(), endTimeUnixNano: String(BigInt(Date.UTC(20000, 0, 1)) * 1_000_000n) };
    const good = genAiSpan();
    const res = await postTraces(exportOf([nul, farFuture, good]));
    assert.equal(res.status, 200);
    assert.equal(res.body.partialSuccess?.rejectedSpans, "2");
    assert.match(res.body.partialSuccess.errorMessage, new RegExp(nul.spanId));
    assert.match(res.body.partialSuccess.errorMessage, new RegExp(farFuture.spanId));
    assert.equal((await stored(idOf(good))).length, 1);
  });

  test("a body that is not an OTLP export answers 400 with OTLP's google.rpc.Status in JSON", async () => {
    for (const body of ["[1, 2, 3]", '"spans"', JSON.stringify({ resourceSpans: "none" }), '{"resourceSpans": ['] ) {
      const res = await postTraces(body);
      assert.equal(res.status, 400, body);
      assert.match(res.type, /application\/json/);
      assert.equal(res.body.code, 3); // INVALID_ARGUMENT
      assert.equal(typeof res.body.message, "string");
    }
  });

  test("a protobuf body that is not an export answers 400 with a protobuf google.rpc.Status", async () => {
    const res = await fetch(`${t.base}/v1/traces`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/x-protobuf" },
      body: new Uint8Array([0x0a, 0x05, 0x01]),
    });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get("content-type"), "application/x-protobuf");
    const status = decodeStatus(new Uint8Array(await res.arrayBuffer()));
    assert.equal(status.code, 3);
    assert.match(status.message, /not a protobuf ExportTraceServiceRequest/);
  });

  test("a wrong key on a protobuf export answers 401 with a protobuf google.rpc.Status", async () => {
    const res = await fetch(`${t.base}/v1/traces`, {
      method: "POST",
      headers: { authorization: "Bearer tlg_nope", "content-type": "application/x-protobuf" },
      body: new Uint8Array(),
    });
    assert.equal(res.status, 401);
    const status = decodeStatus(new Uint8Array(await res.arrayBuffer()));
    assert.equal(status.code, 16); // UNAUTHENTICATED
    assert.match(status.message, /not an active ingest key/);
  });

  test("another content type answers 415 naming both OTLP encodings", async () => {
    const res = await postTraces("spans", { contentType: "text/plain" });
    assert.equal(res.status, 415);
    assert.match(res.body.message, /application\/x-protobuf.*application\/json/);
  });

  test("a UTF-16 JSON export is decoded by its charset", async () => {
    const span = genAiSpan({ "tollgate.team": "otlp-utf16" });
    const res = await fetch(`${t.base}/v1/traces`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json; charset=utf-16" },
      body: Buffer.from(`\ufeff${JSON.stringify(exportOf([span]))}`, "utf16le"),
    });
    assert.equal(res.status, 200);
    assert.equal((await stored(idOf(span)))[0]?.cost, "25000000000");
  });

  test("no key, an unknown key or a virtual key answers 401 and stores nothing", async () => {
    const span = genAiSpan();
    assert.equal((await postTraces(exportOf([span]), { headers: { authorization: "" } })).status, 401);
    assert.equal((await postTraces(exportOf([span]), { headers: { authorization: "Bearer tlg_nope" } })).status, 401);
    const virtual = (await (await t.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: "otlp-virtual" }) })).json()) as any;
    assert.equal((await postTraces(exportOf([span]), { headers: { authorization: `Bearer ${virtual.key}` } })).status, 401);
    assert.equal((await stored(idOf(span))).length, 0);
  });

  test("a key bound to a team wins over the span's team attribute", async () => {
    const created = (await (
      await t.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "ingest", name: "otlp-bound", team: "key-team" }) })
    ).json()) as any;
    const span = genAiSpan({ "tollgate.team": "span-team" });
    const res = await postTraces(exportOf([span], { "service.name": "checkout", "tollgate.team": "resource-team" }), {
      headers: { authorization: `Bearer ${created.key}` },
    });
    assert.deepEqual(res.body, {});
    const [row] = await stored(idOf(span));
    assert.equal(row?.team, "key-team");
    assert.equal(row?.api_key_id, created.id);
  });
});
