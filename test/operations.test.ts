import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { waitFor } from "./helpers/wait.ts";

let t: TestGateway;
let key: string;
before(async () => {
  t = await startTestGateway();
  key = await t.ingestKey();
});
after(() => t.close());

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The value of one sample of /metrics, e.g. `tollgate_usage_events_total{outcome="accepted"}`. */
async function metric(name: string, labels = ""): Promise<number> {
  const res = await fetch(`${t.base}/metrics`);
  assert.equal(res.status, 200);
  const text = await res.text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

/** A problem+json answer, checked for its shape and for anything that looks like a stack trace. */
async function problem(res: Response, status: number): Promise<{ title: string; status: number; detail: string }> {
  assert.equal(res.status, status);
  assert.match(res.headers.get("content-type") ?? "", /^application\/problem\+json/);
  const text = await res.text();
  assert.doesNotMatch(text, /\bat \S+ \(|\n\s+at |\.ts:\d+|node:internal/, "no stack trace");
  const body = JSON.parse(text) as { title: string; status: number; detail: string };
  assert.equal(body.status, status);
  assert.equal(typeof body.title, "string");
  assert.equal(typeof body.detail, "string");
  return body;
}

describe("health", () => {
  test("/healthz answers 200 without auth", async () => {
    const res = await fetch(`${t.base}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "ok" });
  });

  test("/readyz answers 200 when the database is reachable and migrated", async () => {
    const res = await fetch(`${t.base}/readyz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "ok", database: "reachable", migrations: "applied", journal: { database: "ok", unrecorded_events: 0 } });
  });

  test("/readyz answers 503 while a migration is missing", async () => {
    const [removed] = await t.gateway.database.rows<{ tag: string; hash: string }>(
      sql`delete from tollgate_migrations where tag = (select max(tag) from tollgate_migrations) returning tag, hash`,
    );
    assert.ok(removed);
    try {
      const res = await fetch(`${t.base}/readyz`);
      assert.equal(res.status, 503);
      assert.deepEqual(await res.json(), { status: "starting", database: "reachable", migrations: "pending", journal: { database: "ok", unrecorded_events: 0 } });
    } finally {
      await t.gateway.database.rows(sql`insert into tollgate_migrations (tag, hash) values (${removed.tag}, ${removed.hash})`);
    }
    assert.equal((await fetch(`${t.base}/readyz`)).status, 200);
  });

  test("/readyz answers 503 once a newer build has migrated the database under the running gateway, naming the migration", async () => {
    await t.gateway.database.rows(sql`insert into tollgate_migrations (tag, hash) values ('9999_from_a_newer_build', ${"f".repeat(64)})`);
    try {
      for (let probe = 0; probe < 2; probe++) {
        const res = await fetch(`${t.base}/readyz`);
        assert.equal(res.status, 503);
        assert.deepEqual(await res.json(), {
          status: "outdated",
          migrations: "ahead",
          detail: "this database was migrated by a newer Tollgate (9999_from_a_newer_build is not in this build): run that version or a newer one",
          database: "reachable",
          journal: { database: "ok", unrecorded_events: 0 },
        });
      }
    } finally {
      await t.gateway.database.rows(sql`delete from tollgate_migrations where tag = '9999_from_a_newer_build'`);
    }
    assert.equal((await fetch(`${t.base}/readyz`)).status, 200);
  });
  test("/readyz stays ready when what a newer build migrated is marked for older builds to keep running", async () => {
    await t.gateway.database.rows(sql`insert into tollgate_migrations (tag, hash, older_builds_run) values ('9999_from_a_newer_build', ${"f".repeat(64)}, true)`);
    try {
      const res = await fetch(`${t.base}/readyz`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: "ok", migrations: "applied", database: "reachable", journal: { database: "ok", unrecorded_events: 0 } });
    } finally {
      await t.gateway.database.rows(sql`delete from tollgate_migrations where tag = '9999_from_a_newer_build'`);
    }
  });
});

describe("/metrics", () => {
  test("folds of the rollups are counted, and what they left queued is shown", async () => {
    const folded = await metric("tollgate_rollup_folds_total", '{outcome="ok"}');
    const id = `fold-metric-${Math.random().toString(36).slice(2)}`;
    const res = await fetch(`${t.base}/v1/usage`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify([{ id, provider: "openai", model: "gpt-4o", input_tokens: 100, output_tokens: 10 }]),
    });
    assert.equal(res.status, 200);
    // The write schedules a fold TOLLGATE_ROLLUP_FOLD_MS (1 s) later.
    await waitFor("a fold after the write", async () => (await metric("tollgate_rollup_folds_total", '{outcome="ok"}')) > folded);
    assert.equal(await metric("tollgate_rollup_queue_batches"), 0);
  });

  test("counts accepted, duplicate and rejected usage events", async () => {
    const counter = "tollgate_usage_events_total";
    const before = {
      accepted: await metric(counter, '{outcome="accepted"}'),
      duplicate: await metric(counter, '{outcome="duplicate"}'),
      rejected: await metric(counter, '{outcome="rejected"}'),
      batches: await metric("tollgate_recorder_batch_size_count"),
    };
    const id = `metrics-${Math.random().toString(36).slice(2)}`;
    const event = { id, provider: "openai", model: "gpt-4o", input_tokens: 100, output_tokens: 10 };
    const post = (body: unknown) =>
      fetch(`${t.base}/v1/usage`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    const first = await post([event, { ...event, id: `${id}-bad`, input_tokens: -1 }]);
    assert.equal(first.status, 207);
    const second = await post(event);
    assert.deepEqual(await second.json(), { accepted: 0, duplicates: 1, rejected: [] });

    assert.equal(await metric(counter, '{outcome="accepted"}'), before.accepted + 1);
    assert.equal(await metric(counter, '{outcome="duplicate"}'), before.duplicate + 1);
    assert.equal(await metric(counter, '{outcome="rejected"}'), before.rejected + 1);
    assert.ok((await metric("tollgate_recorder_batch_size_count")) > before.batches);
  });

  test("is Prometheus text with the recorder histograms and process metrics", async () => {
    const res = await fetch(`${t.base}/metrics`);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    const text = await res.text();
    assert.match(text, /^# TYPE tollgate_usage_events_total counter$/m);
    assert.match(text, /^# TYPE tollgate_recorder_batch_size histogram$/m);
    assert.match(text, /^# TYPE tollgate_recorder_write_seconds histogram$/m);
    assert.match(text, /^process_cpu_seconds_total /m);
  });
});

describe("request ids", () => {
  test("a sane x-request-id is echoed", async () => {
    const res = await fetch(`${t.base}/healthz`, { headers: { "x-request-id": "req-42.a:b_c" } });
    assert.equal(res.headers.get("x-request-id"), "req-42.a:b_c");
  });

  test("a missing or insane x-request-id is replaced by a fresh uuid", async () => {
    for (const given of [undefined, "has spaces in it", "x".repeat(101), "semi;colon", "<script>"]) {
      const res = await fetch(`${t.base}/healthz`, { headers: given === undefined ? {} : { "x-request-id": given } });
      const id = res.headers.get("x-request-id") ?? "";
      assert.match(id, UUID, `for ${given}`);
    }
  });

  test("a 500 names the request id and nothing of the failure", async () => {
    const broken = await startTestGateway();
    try {
      // Something the code never expects: its table is gone.
      await broken.gateway.database.rows(sql`drop table api_keys cascade`);
      const res = await broken.admin("/api/keys", { headers: { "x-request-id": "trace-500" } });
      const body = await problem(res, 500);
      assert.equal(res.headers.get("x-request-id"), "trace-500");
      assert.match(body.detail, /trace-500/);
      assert.doesNotMatch(JSON.stringify(body), /api_keys|relation|does not exist|select |[A-Za-z]+Error\b/);
    } finally {
      await broken.close();
    }
  });
});

describe("admin API auth and errors", () => {
  test("no token, a wrong token and a wrong scheme are 401 problem+json", async () => {
    const cases: Record<string, string>[] = [
      {},
      { authorization: "Bearer wrong" },
      { authorization: `Bearer ${"x".repeat(27)}` },
      { authorization: "Basic dGVzdDp0ZXN0" },
      { authorization: `Bearer ${key}` },
    ];
    for (const headers of cases) {
      for (const path of ["/api/keys", "/api/spend?period=today"]) {
        const body = await problem(await fetch(`${t.base}${path}`, { headers }), 401);
        assert.equal(body.title, "Unauthorized");
      }
    }
    const create = await fetch(`${t.base}/api/keys`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ kind: "ingest", name: "nope" }) });
    await problem(create, 401);
    const listed = (await (await t.admin("/api/keys")).json()) as { keys: { name: string }[] };
    assert.ok(!listed.keys.some((k) => k.name === "nope"), "an unauthorised create made nothing");
  });

  test("a body that is not JSON is 400 problem+json, not a stack trace", async () => {
    const res = await t.admin("/api/keys", { method: "POST", body: '{"kind": "ingest", "name": ' });
    const body = await problem(res, 400);
    assert.match(body.detail, /not valid JSON/);
    assert.doesNotMatch(JSON.stringify(body), /SyntaxError|Unexpected/);
  });

  test("a body of the wrong shape is 400 with field paths", async () => {
    const res = await t.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "root", name: "" }) });
    const body = (await problem(res, 400)) as { errors?: { path: string }[] };
    const paths = (body.errors ?? []).map((e) => e.path);
    assert.ok(paths.includes("kind"), paths.join(", "));
  });

  test("an unknown /api route is not a stack trace either", async () => {
    const res = await t.admin("/api/nothing-here");
    assert.equal(res.status, 404);
    const text = await res.text();
    assert.doesNotMatch(text, /\n\s+at /);
  });
});
