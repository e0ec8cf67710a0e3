import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { spendForBudgets } from "../src/budgets/spend-batch.ts";
import type { Database } from "../src/db/connection.ts";
import { openDatabase } from "../src/db/connection.ts";
import { type LedgerEvent, type Pricer, eventBuilder } from "../src/ledger/build-event.ts";
import { UsageEvent } from "../src/ledger/event.ts";
import { foldAll, foldOnce } from "../src/ledger/fold.ts";
import { registry } from "../src/metrics.ts";
import { resolvePeriod } from "../src/ledger/period.ts";
import { Recorder } from "../src/ledger/recorder.ts";
import { type SpendQuery, querySpend } from "../src/ledger/spend.ts";
import { eraseUserUsage } from "../src/ledger/user-data.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { ledgerEvent } from "./helpers/ledger-event.ts";
import { assertRollupsMatchEvents } from "./helpers/rollups.ts";
import { sampleBudget } from "./helpers/sample-budget.ts";
import { HANG_MS, waitFor } from "./helpers/wait.ts";
import type { FakeUpstream } from "./fakes/fake-upstream.ts";
import { startFakeOpenAI } from "./fakes/openai.ts";
import { PG, createKey, dataDir, postgresDatabase, startServer, stop } from "./helpers/served-gateway.ts";
import { seedDataDir } from "./helpers/template.ts";

/*
 * Every grain is folded after the write (src/ledger/fold.ts). Whatever has or has not been
 * folded, every read equals a plain sum over usage_events, and once folded the grains' rows do.
 */

const price: Pricer = (e) => (e.model === "m-free" ? { cost: 0n, priced: false } : { cost: BigInt(e.tokens.input) * 2_500_001n + BigInt(e.tokens.output) * 10_000_003n, priced: true });
const builder = eventBuilder(price);
const NOW = new Date("2026-03-20T12:00:00Z");
const USERS = ["ann", "bob", "cy", "dee", ""];

/** Events of this month and last, several users and attributions, some errors and unpriced. */
function events(tag: string, n: number, offset = 0): LedgerEvent[] {
  return Array.from({ length: n }, (_, k) => {
    const i = k + offset;
    return ledgerEvent(
      builder,
      UsageEvent.parse({
        source: "fold-test",
        id: `${tag}-${i}`,
        ts: new Date(NOW.getTime() - ((i * 7919) % (40 * 24)) * 3_600_000 - (i % 60) * 1000),
        provider: "openai",
        model: i % 7 === 0 ? "m-free" : ["m-a", "m-b"][i % 2],
        tokens: { input: 100 + i, cached_input: 0, cache_write: 0, output: 10 + (i % 13), reasoning: 0 },
        status: i % 11 === 0 ? "error" : "ok",
        team: ["t1", "t2", null][i % 3],
        user: USERS[i % USERS.length] || null,
      }),
    );
  });
}

const periodOf = (name: string, timeZone = "UTC") => {
  const r = resolvePeriod(name, { timeZone, now: NOW });
  assert.ok(r.ok);
  return r.period;
};
const thisMonth = () => periodOf("this-month");

/**
 * The user-grain reads (by user, one user's, and a user with another dimension: user-day rows),
 * and the hour and day grains' (by team over days and hours, and in a half-hour zone, whose edges
 * are parts of hours).
 */
const QUERIES: SpendQuery[] = [
  { period: thisMonth(), by: "user", filters: {}, now: NOW, top: 50 },
  { period: thisMonth(), filters: { user: "bob" }, now: NOW },
  { period: thisMonth(), by: "team", filters: { user: "ann" }, now: NOW },
  { period: thisMonth(), by: "team", filters: {}, now: NOW },
  { period: periodOf("last-7d", "Asia/Kolkata"), by: "model", filters: { team: "t1" }, now: NOW },
];

/** What each query answers, as plain text. */
async function answers(database: Database): Promise<string[]> {
  const reports = await Promise.all(QUERIES.map((q) => querySpend(database, q)));
  return reports.map((r) => JSON.stringify(r, (_, v) => (typeof v === "bigint" ? v.toString() : v)));
}

/** this month's cost per user (or team) straight from usage_events. */
async function plainCostByUser(database: Database, dim: "user" | "team" = "user"): Promise<Record<string, string>> {
  const rows = await database.rows<{ key: string; cost: string }>(sql`
    select coalesce(${sql.identifier(dim)}, '') as key, sum(cost)::text as cost from usage_events
    where ts >= '2026-03-01T00:00:00Z' and ts < ${NOW.toISOString()}::timestamptz group by 1`);
  return Object.fromEntries(rows.map((r) => [r.key || "(none)", r.cost]));
}

const queued = async (database: Database) => (await database.rows<{ n: number }>(sql`select count(*)::int as n from usage_rollup_queue`))[0]!.n;

describe("rollup folds", () => {
  let database: Database;
  before(async () => {
    database = await openTestDatabase();
  });
  after(() => database.close());

  test("spend reads are the events' sums before a fold, part way through the queue, and after", async () => {
    const recorder = new Recorder(database, builder, { batchSize: 40, maxWaitMs: 0, maxConcurrentFlushes: 2 });
    await recorder.record(events("a", 400));
    await recorder.close();
    assert.ok((await queued(database)) >= 10, "the writes queued their batches for a fold");
    const unfolded = await answers(database);
    const byUser = (await querySpend(database, QUERIES[0]!)).groups.map((g) => [g.key, g.cost.toString()]);
    assert.deepEqual(Object.fromEntries(byUser), await plainCostByUser(database));
    const byTeam = (await querySpend(database, QUERIES[3]!)).groups.map((g) => [g.key, g.cost.toString()]);
    assert.deepEqual(Object.fromEntries(byTeam), await plainCostByUser(database, "team"));

    const before = await queued(database);
    assert.deepEqual(await foldOnce(database, 3), { batches: 3, left: before - 3 });
    assert.deepEqual(await answers(database), unfolded, "a part folded");
    await foldAll(database, 4);
    assert.equal(await queued(database), 0);
    const gauge = await registry.getSingleMetric("tollgate_rollup_queue_batches")!.get();
    assert.equal(gauge.values[0]!.value, 0, "what a fold left queued is exported");
    assert.deepEqual(await answers(database), unfolded, "all folded");
    await assertRollupsMatchEvents(database);
  });

  test("a retried batch is all duplicates: it queues nothing and counts nothing twice", async () => {
    const batch = events("retry", 120);
    const first = new Recorder(database, builder, { batchSize: 1000, maxWaitMs: 0 });
    assert.ok((await first.record(batch)).every(Boolean));
    const before = [await queued(database), await answers(database)];
    const retry = new Recorder(database, builder, { batchSize: 1000, maxWaitMs: 0 });
    assert.ok((await retry.record(batch)).every((isNew) => !isNew));
    assert.deepEqual([await queued(database), await answers(database)], before);
    // Half new, half seen: only the new ones are queued, under the write's one batch.
    const mixed = [...events("retry", 60, 60), ...events("retry-new", 60)];
    const answered = await retry.record(mixed);
    assert.deepEqual(answered, [...Array(60).fill(false), ...Array(60).fill(true)]);
    assert.equal(await queued(database), (before[0] as number) + 1);
    assert.deepEqual(Object.fromEntries((await querySpend(database, QUERIES[0]!)).groups.map((g) => [g.key, g.cost.toString()])), await plainCostByUser(database));
    await assertRollupsMatchEvents(database);
  });

  test("budget spend over a user or a team sees events the moment they are written, folded or not", async () => {
    const budgets = [sampleBudget({ id: "cy", scope: { user: "cy" } }), sampleBudget({ id: "t2", scope: { team: "t2" } })];
    const spendOf = async () => { const spends = await spendForBudgets(database, budgets, NOW); return budgets.map((b) => spends.find((s) => s.budget.id === b.id)!.spend); };
    const plain = async () => [BigInt((await plainCostByUser(database)).cy ?? "0"), BigInt((await plainCostByUser(database, "team")).t2 ?? "0")];
    assert.deepEqual(await spendOf(), await plain());
    const recorder = new Recorder(database, builder, { batchSize: 1000, maxWaitMs: 0 });
    await recorder.record(events("budget", 50));
    assert.ok((await queued(database)) > 0);
    assert.deepEqual(await spendOf(), await plain());
    await foldAll(database);
    assert.deepEqual(await spendOf(), await plain());
  });

  test("erasing a user with events not folded yet keeps every grain equal to the events left", async () => {
    const recorder = new Recorder(database, builder, { batchSize: 25, maxWaitMs: 0 });
    await recorder.record(events("erase", 200));
    await foldOnce(database, 2);
    assert.ok((await queued(database)) > 0);
    const erased = await eraseUserUsage(database, "dee", "test");
    assert.ok(erased.events > 0);
    const [left] = await database.rows<{ n: number }>(sql`select count(*)::int as n from usage_events where "user" = 'dee'`);
    assert.equal(left!.n, 0);
    await assertRollupsMatchEvents(database);
  });
});

describe("a gateway killed with SIGKILL while it ingests and folds", { concurrency: 1 }, () => {
  let upstream: FakeUpstream;
  before(async () => {
    upstream = await startFakeOpenAI();
  });
  after(() => upstream.close());

  test("every acknowledged event is in the ledger once, reads stay exact, and the next start folds the rest exactly", { timeout: HANG_MS }, async () => {
    const dir = dataDir();
    const pg = PG ? await postgresDatabase() : undefined;
    if (!pg) await seedDataDir(dir);
    // Folds all the time, so the kill lands in one or between two.
    const env: Record<string, string> = { ...(pg ? { DATABASE_URL: pg.url } : {}), TOLLGATE_ROLLUP_FOLD_MS: "1", TOLLGATE_BATCH_WAIT_MS: "0" };
    try {
      const first = await startServer(upstream, dir, env);
      const key = await createKey(first, "ingest");
      const acknowledged: string[] = [];
      let next = 0;
      let killed = false;
      const client = async () => {
        while (!killed) {
          const ids = Array.from({ length: 200 }, () => `k-${next++}`);
          const body = JSON.stringify(ids.map((id, i) => ({ id, provider: "openai", model: "gpt-4o-mini", input_tokens: 100 + i, output_tokens: 7 + (i % 5), user: `u${i % 37}`, timestamp: new Date().toISOString() })));
          const ok = await fetch(`${first.url}/v1/usage`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body }).then(
            (r) => r.ok,
            () => false,
          );
          if (ok && !killed) acknowledged.push(...ids);
        }
      };
      const clients = [client(), client(), client()];
      await waitFor("events acknowledged under load", () => acknowledged.length >= 6000);
      first.child.kill("SIGKILL");
      killed = true;
      await first.exited;
      await Promise.all(clients);

      const database = pg?.database ?? (await openDatabase({ dataDir: dir }));
      let closed = false;
      try {
        const [stored] = await database.rows<{ n: number; distinct: number }>(sql`select count(*)::int as n, count(distinct id)::int as distinct from usage_events where id like 'k-%'`);
        assert.equal(stored!.n, stored!.distinct);
        const ids = new Set((await database.rows<{ id: string }>(sql`select id from usage_events where id like 'k-%'`)).map((r) => r.id));
        assert.deepEqual(acknowledged.filter((id) => !ids.has(id)), [], "no acknowledged event is missing");
        // Exact whatever the kill left queued.
        const now = new Date(Date.now() + 60_000);
        const period = resolvePeriod("today", { timeZone: "UTC", now });
        assert.ok(period.ok);
        const report = await querySpend(database, { period: period.period, by: "user", filters: {}, now, top: 100 });
        const plain = await database.rows<{ user: string; cost: string; n: string }>(sql`
          select coalesce("user", '') as "user", sum(cost)::text as cost, count(*)::text as n from usage_events
          where ts >= ${period.period.start.toISOString()}::timestamptz and ts < ${now.toISOString()}::timestamptz group by 1`);
        assert.deepEqual(
          Object.fromEntries(report.groups.map((g) => [g.key, `${g.cost} ${g.requests}`])),
          Object.fromEntries(plain.map((r) => [r.user || "(none)", `${r.cost} ${r.n}`])),
        );
        if (!pg) await database.close();
        closed = true;
        const second = await startServer(upstream, dir, env);
        await stop(second);
        const after = pg?.database ?? (await openDatabase({ dataDir: dir }));
        try {
          assert.equal(await queued(after), 0, "the next start folded what the killed one left queued");
          await assertRollupsMatchEvents(after);
        } finally {
          if (!pg) await after.close();
        }
      } finally {
        if (!pg && !closed) await database.close();
      }
    } finally {
      await pg?.database.close();
    }
  });
});
