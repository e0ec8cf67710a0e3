import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { deleteExpiredEvents } from "../src/ledger/retention.ts";
import { type ExportedEvent, eraseUserUsage, userEventPages } from "../src/ledger/user-data.ts";
import { picoToDecimalString } from "../src/pricing/money.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { ALL_ROLLUPS, assertRollupsMatchEvents } from "./helpers/rollups.ts";
import { waitFor } from "./helpers/wait.ts";

let gw: TestGateway;

interface Item {
  id: string;
  timestamp: string;
  model: string;
  provider: string;
  input_tokens: number;
  output_tokens: number;
  status?: "ok" | "error";
  user?: string;
  team?: string;
  feature?: string;
  tags?: Record<string, string>;
}

/**
 * Usage spread over three days and several hours, teams and models, where every user shares
 * hour and day rollup rows with the others: erasing one must take its part off them, not drop them.
 */
function items(user: string | undefined, count: number, prefix: string): Item[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `${prefix}-${i}`,
    timestamp: new Date(Date.UTC(2026, 2, 3 + (i % 3), 8 + (i % 4), (i * 7) % 60, i % 60, (i * 37) % 1000)).toISOString(),
    model: i % 5 === 4 ? "house-model-unpriced" : i % 2 ? "gpt-4o" : "gpt-4o-mini",
    provider: "openai",
    input_tokens: 1000 + i * 13,
    output_tokens: 100 + i * 7,
    ...(i % 6 === 5 ? { status: "error" as const } : {}),
    ...(user ? { user } : {}),
    team: i % 2 ? "search" : "ads",
    feature: "chat",
    tags: { run: String(i) },
  }));
}

async function ingest(list: Item[]): Promise<void> {
  const res = await gw.admin("/api/usage?source=test", { method: "POST", headers: { "content-type": "application/x-ndjson" }, body: list.map((e) => JSON.stringify(e)).join("\n") });
  const body = (await res.json()) as { accepted: number; rejected: unknown[] };
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.accepted, list.length);
}

async function eventCounts(): Promise<Record<string, number>> {
  const rows = await gw.gateway.database.rows<{ user: string; n: number }>(sql`select coalesce("user", '') as user, count(*)::int as n from usage_events group by 1`);
  return Object.fromEntries(rows.map((r) => [r.user, r.n]));
}

async function exportOf(user: string): Promise<{ status: number; type: string; lines: ExportedEvent[] }> {
  const res = await gw.admin(`/api/users/${encodeURIComponent(user)}/usage`);
  const text = await res.text();
  return { status: res.status, type: res.headers.get("content-type") ?? "", lines: text === "" ? [] : text.trimEnd().split("\n").map((l) => JSON.parse(l)) };
}

async function auditOf(user: string): Promise<{ actor: string; action: string; after: unknown }[]> {
  const rows = await gw.gateway.database.rows<{ actor: string; action: string; after: unknown }>(
    sql`select actor, action, after from audit_log where entity = 'usage' and entity_id = ${user} order by id`,
  );
  return rows.map((r) => ({ ...r, after: typeof r.after === "string" ? JSON.parse(r.after) : r.after }));
}

before(async () => {
  gw = await startTestGateway({ TOLLGATE_JOBS: "off" });
  await ingest([...items("alice", 30, "a"), ...items("bob", 20, "b"), ...items("carol", 12, "c"), ...items(undefined, 9, "anon")]);
  await assertRollupsMatchEvents(gw.gateway.database);
});

after(() => gw.close());

describe("export", () => {
  test("GET streams exactly the user's events as NDJSON in time order, with exact money", async () => {
    const { status, type, lines } = await exportOf("alice");
    assert.equal(status, 200);
    assert.match(type, /^application\/x-ndjson/);
    assert.equal(lines.length, 30);
    assert.deepEqual(lines.map((l) => l.id).sort(), items("alice", 30, "a").map((e) => e.id).sort());
    assert.ok(lines.every((l) => l.user === "alice" && l.source === "ingest:test"));
    const times = lines.map((l) => l.timestamp);
    assert.deepEqual(times, [...times].sort(), "oldest first");

    const sent = items("alice", 30, "a").find((e) => e.id === "a-7")!;
    const line = lines.find((l) => l.id === "a-7")!;
    assert.equal(Date.parse(line.timestamp), Date.parse(sent.timestamp));
    assert.equal(line.input_tokens, sent.input_tokens);
    assert.equal(line.output_tokens, sent.output_tokens);
    assert.deepEqual(line.tags, { run: "7" });
    const [stored] = await gw.gateway.database.rows<{ cost: string }>(sql`select cost::text from usage_events where id = 'a-7'`);
    assert.ok(BigInt(stored!.cost) > 0n);
    assert.equal(line.cost_usd, picoToDecimalString(BigInt(stored!.cost)));
    assert.equal(lines.find((l) => l.id === "a-4")!.priced, false, "unknown models are exported as unpriced, never as a silent 0");

    // Audited once the stream has ended, so after the client read it all: on Postgres, a moment later.
    await waitFor("the export audited", async () => (await auditOf("alice")).length > 0);
    assert.deepEqual((await auditOf("alice")).map((a) => [a.action, a.after]), [["export", { events: 30 }]]);
  });

  test("pages are a keyset: small pages give the same events once each", async () => {
    const pages: ExportedEvent[][] = [];
    for await (const page of userEventPages(gw.gateway.database, "alice", 4)) pages.push(page);
    assert.ok(pages.every((p) => p.length <= 4));
    assert.ok(pages.length >= 8);
    assert.deepEqual(pages.flat(), (await exportOf("alice")).lines);
  });

  test("a user without usage gets an empty export; a user no event could name gets 400", async () => {
    const none = await exportOf("nobody");
    assert.equal(none.status, 200);
    assert.deepEqual(none.lines, []);
    for (const bad of ["x".repeat(201), " alice"]) {
      const res = await gw.admin(`/api/users/${encodeURIComponent(bad)}/usage`);
      const body = (await res.json()) as { errors: { path: string }[] };
      assert.equal(res.status, 400);
      assert.match(res.headers.get("content-type") ?? "", /application\/problem\+json/);
      assert.deepEqual(body.errors.map((e) => e.path), ["user"]);
    }
    const del = await gw.admin(`/api/users/${"x".repeat(201)}/usage`, { method: "DELETE" });
    assert.equal(del.status, 400);
    assert.deepEqual(await eventCounts(), { alice: 30, bob: 20, carol: 12, "": 9 }, "nothing erased by a refused request");
  });
});

describe("erasure", () => {
  test("DELETE removes the user's events only, takes exactly their part off every rollup grain, and is audited with counts", async () => {
    const spendBefore = await (await gw.admin("/api/spend?period=2026-03&by=user")).json() as { groups: { key: string }[] };
    assert.ok(spendBefore.groups.some((g) => g.key === "alice"));

    const res = await gw.admin("/api/users/alice/usage", { method: "DELETE", headers: { "x-tollgate-actor": "dpo" } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { user: "alice", events: 30, batches: 3, rollup_rows_without_events: 0 });
    assert.deepEqual(await eventCounts(), { bob: 20, carol: 12, "": 9 });
    await assertRollupsMatchEvents(gw.gateway.database);
    const [left] = await gw.gateway.database.rows<{ n: number }>(sql`select count(*)::int as n from ${ALL_ROLLUPS} where "user" = 'alice'`);
    assert.equal(left!.n, 0);
    const spendAfter = await (await gw.admin("/api/spend?period=2026-03&by=user")).json() as { groups: { key: string }[] };
    assert.deepEqual(spendAfter.groups.map((g) => g.key).sort(), spendBefore.groups.map((g) => g.key).filter((k) => k !== "alice").sort());

    const [erased] = (await auditOf("alice")).filter((a) => a.action === "erase");
    assert.equal(erased!.actor, "admin:dpo");
    assert.deepEqual(erased!.after, { events: 30, batches: 3, rollup_rows_without_events: 0 }, "counts only, never the events' content");
    assert.deepEqual((await exportOf("alice")).lines, []);
  });

  test("a large user is erased in batches, each leaving the rollups equal to the remaining events", async () => {
    const erasure = await eraseUserUsage(gw.gateway.database, "bob", "test", 3);
    assert.equal(erasure.events, 20);
    assert.equal(erasure.batches, 8, "7, 7 and 6 events on the three days, 3 at a time");
    assert.deepEqual(await eventCounts(), { carol: 12, "": 9 });
    await assertRollupsMatchEvents(gw.gateway.database);
  });

  test("erasing again finds nothing and says so", async () => {
    const res = await gw.admin("/api/users/bob/usage", { method: "DELETE" });
    assert.deepEqual(await res.json(), { user: "bob", events: 0, batches: 0, rollup_rows_without_events: 0 });
    await assertRollupsMatchEvents(gw.gateway.database);
  });

  test("user-day rows whose events retention already deleted are erased too; the anonymous grains keep their sums", async () => {
    const grainSums = () =>
      gw.gateway.database.rows<{ grain: string; cost: string; requests: string }>(
        sql`select grain, sum(cost)::text as cost, sum(requests)::text as requests from usage_rollups where grain in ('hour', 'day') group by 1 order by 1`,
      );
    // Everything ingested is from March 2026: a 1-day retention at April 1 removes all raw events, rollups stay.
    const retained = await deleteExpiredEvents(gw.gateway.database, 1, new Date("2026-04-02T00:00:00Z"));
    assert.equal(retained?.deleted, 21);
    const before = await grainSums();
    const res = await gw.admin("/api/users/carol/usage", { method: "DELETE" });
    const body = (await res.json()) as { events: number; rollup_rows_without_events: number };
    assert.equal(body.events, 0);
    assert.ok(body.rollup_rows_without_events > 0);
    const [left] = await gw.gateway.database.rows<{ n: number }>(sql`select count(*)::int as n from ${ALL_ROLLUPS} where "user" = 'carol'`);
    assert.equal(left!.n, 0, "nothing names carol any more");
    assert.deepEqual(await grainSums(), before);
  });
});
