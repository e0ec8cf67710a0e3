import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { type Database, openDatabase } from "../src/db/connection.ts";
import { migrate } from "../src/db/migrate.ts";
import { type LedgerEvent, type Pricer, eventBuilder } from "../src/ledger/build-event.ts";
import { UsageEvent, type UsageEventInput } from "../src/ledger/event.ts";
import { foldAll } from "../src/ledger/fold.ts";
import { Recorder, type RecorderOptions } from "../src/ledger/recorder.ts";
import { capturingLogger } from "./helpers/capturing-logger.ts";
import { ALL_ROLLUPS, assertRollupsMatchEvents } from "./helpers/rollups.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { seedDataDir } from "./helpers/template.ts";
import { HANG_MS, waitFor } from "./helpers/wait.ts";
import { ledgerEvent } from "./helpers/ledger-event.ts";
import { NEEDS_POSTGRES_TO_CUT, throughCutter } from "./helpers/db-outage.ts";

let database: Database;
before(async () => {
  database = await openTestDatabase();
});
after(() => database.close());

/** pico-USD per token, by model; any other model is unpriced. */
const RATES: Record<string, { input: bigint; output: bigint }> = {
  "m-a": { input: 2_500_000n, output: 10_000_000n },
  "m-b": { input: 150_000n, output: 600_000n },
};
const price: Pricer = (e) => {
  const rate = RATES[e.model];
  if (!rate) return { cost: 0n, priced: false };
  return { cost: BigInt(e.tokens.input) * rate.input + BigInt(e.tokens.output) * rate.output, priced: true };
};

const BASE = Date.UTC(2025, 0, 10);
const HOUR = 3_600_000;

const builder = eventBuilder(price);

/** Built, as every door hands events to the recorder. */
const makeEvent = (source: string, id: string, i: number, extra: Partial<UsageEventInput> = {}): LedgerEvent => ledgerEvent(builder, seenEvent(source, id, i, extra));

/** A deterministic, varied event: three days of hours, three models, optional attribution. */
function seenEvent(source: string, id: string, i: number, extra: Partial<UsageEventInput> = {}): UsageEvent {
  return UsageEvent.parse({
    source,
    id,
    ts: new Date(BASE + ((i * 7919) % 72) * HOUR + ((i * 37) % 3600) * 1000),
    provider: i % 2 === 0 ? "openai" : "acme",
    model: ["m-a", "m-b", "m-unknown"][i % 3],
    tokens: { input: 100 + i, cached_input: i % 50, cache_write: i % 3, output: 10 + (i % 7), reasoning: i % 5 },
    status: i % 11 === 0 ? "error" : "ok",
    team: [null, "t1", "t2", "t3"][i % 4],
    project: [null, "p1"][i % 2],
    feature: [null, "f1", "f2"][(i >> 1) % 3],
    user: [null, "u1", "u2", "u3", "u4"][i % 5],
    api_key_id: i % 6 === 0 ? "key-1" : null,
    ...extra,
  });
}

/**
 * Records `event` and keeps its write under way (its flush listener is part of it) until
 * release(); `sizes` collects the size of every write that follows.
 */
async function holdFirstWrite(recorder: Recorder, event: LedgerEvent) {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const sizes: number[] = [];
  recorder.onFlush(async (inserted) => {
    sizes.push(inserted.length);
    if (sizes.length === 1) await held;
  });
  const first = recorder.record([event]);
  await waitFor("the first write", () => sizes.length === 1);
  return { sizes, first, release };
}

const recorderOn = (db: Database, opts: Partial<RecorderOptions> = {}) =>
  new Recorder(db, builder, { batchSize: 50, maxWaitMs: 2, ...opts });

/** A second connection pool to the same test database (Postgres only). */
async function secondHandle(maxConnections?: number): Promise<Database | undefined> {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) return undefined;
  const [row] = await database.rows<{ name: string }>(sql`select current_database() as name`);
  const target = new URL(url);
  target.pathname = `/${row!.name}`;
  return openDatabase({ url: target.toString(), dataDir: "", maxConnections });
}

async function storedIds(source: string): Promise<string[]> {
  const rows = await database.rows<{ id: string }>(sql`select id from usage_events where source = ${source} order by id`);
  return rows.map((r) => r.id);
}

async function storedCost(source: string): Promise<bigint> {
  const [row] = await database.rows<{ cost: string }>(sql`select coalesce(sum(cost), 0)::text as cost from usage_events where source = ${source}`);
  return BigInt(row!.cost);
}

const assertRollups = (db: Database = database) => assertRollupsMatchEvents(db);

/** Deterministic pseudo-random numbers, so a failure can be replayed. */
function lcg(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    return s / 2_147_483_648;
  };
}

describe("Recorder", () => {
  test("many concurrent, overlapping record() calls: each event stored once, one caller told true", async () => {
    const extra = await secondHandle();
    try {
      const recorders = [
        recorderOn(database, { batchSize: 16, maxWaitMs: 1, maxConcurrentFlushes: 4 }),
        recorderOn(database, { batchSize: 50, maxWaitMs: 4 }),
        ...(extra ? [recorderOn(extra, { batchSize: 23, maxWaitMs: 2, maxConcurrentFlushes: 3 })] : []),
      ];
      const pool = Array.from({ length: 300 }, (_, i) => makeEvent("conc", `c-${i}`, i));
      const rand = lcg(42);
      const expectedTrue = new Map<string, number>();
      const picked = new Set<string>();
      for (const wave of [0, 1]) {
        const calls = Array.from({ length: 40 }, (_, c) => ({
          recorder: recorders[c % recorders.length]!,
          // Some callers in the same tick share flushes, the delayed ones land in later ones.
          delay: c % 3 === 0 ? 0 : Math.floor(rand() * 6),
          events: Array.from({ length: 1 + Math.floor(rand() * 60) }, () => ({ ...pool[Math.floor(rand() * (wave === 0 ? 200 : 300))]! })),
        }));
        const answers = await Promise.all(
          calls.map(async ({ recorder, delay, events }) => {
            if (delay > 0) await sleep(delay);
            return recorder.record(events);
          }),
        );
        const trues = new Map<string, number>();
        calls.forEach(({ events }, c) => {
          assert.equal(answers[c]!.length, events.length, "every event is answered");
          events.forEach((e, i) => {
            if (answers[c]![i]) trues.set(e.id, (trues.get(e.id) ?? 0) + 1);
          });
        });
        const fresh = new Set(calls.flatMap(({ events }) => events.map((e) => e.id)).filter((id) => !picked.has(id)));
        for (const id of fresh) picked.add(id);
        for (const id of fresh) expectedTrue.set(id, 1);
        // Exactly the events new in this wave were told true, each to exactly one caller.
        assert.deepEqual(
          [...trues].sort(([a], [b]) => a.localeCompare(b)),
          [...fresh].sort().map((id) => [id, 1]),
        );
      }
      assert.deepEqual(await storedIds("conc"), [...picked].sort());
      const expectedCost = pool.filter((e) => picked.has(e.id)).reduce((sum, e) => sum + price(e).cost, 0n);
      assert.ok(expectedCost > 0n);
      assert.equal(await storedCost("conc"), expectedCost);
      // Everything again: all duplicates, nothing changes.
      const again = await Promise.all(recorders.map((r) => r.record(pool.filter((e) => picked.has(e.id)))));
      assert.ok(again.flat().every((a) => a === false));
      assert.equal(await storedCost("conc"), expectedCost);
      await Promise.all(recorders.map((r) => r.close()));
      await assertRollups();
    } finally {
      await extra?.close();
    }
  });

  test("the same event twice in one call and in one flush: the first is new, the rest duplicates", async () => {
    const recorder = recorderOn(database, { batchSize: 100, maxWaitMs: 20 });
    const e = makeEvent("same-flush", "s-1", 1);
    const [a, b] = await Promise.all([recorder.record([e, { ...e }, e]), recorder.record([{ ...e }])]);
    assert.deepEqual([...a!, ...b!], [true, false, false, false]);
    assert.deepEqual(await storedIds("same-flush"), ["s-1"]);
    await recorder.close();
    await assertRollups();
  });

  test("on PostgreSQL its write is a prepared statement, run again by name batch after batch (not parsed and planned each time)", { skip: process.env.TEST_DATABASE_URL ? false : "needs TEST_DATABASE_URL: PGlite has no prepared statements to see" }, async () => {
    const own = (await secondHandle(1))!;
    try {
      const recorder = recorderOn(own, { batchSize: 5, maxWaitMs: 1 });
      for (let call = 0; call < 3; call++) await recorder.record(Array.from({ length: 5 }, (_, i) => makeEvent("prepared", `pr-${call}-${i}`, i)));
      await recorder.close();
      // The same connection (a pool of one): its prepared statements, and how often each ran.
      const rows = await own.rows<{ runs: number }>(
        sql`select (generic_plans + custom_plans)::int as runs from pg_prepared_statements where statement like '%insert into usage_events%'`,
      );
      assert.deepEqual(rows.map((r) => r.runs), [3]);
    } finally {
      await own.close();
    }
    assert.equal((await storedIds("prepared")).length, 15);
    await assertRollups();
  });

  test("calls cut where batches end: each event answered in its call's order, a repeat across the cut and a stored one false", { timeout: HANG_MS }, async () => {
    const stored = makeEvent("cut-runs", "r-stored", 0);
    assert.deepEqual(await recorderOn(database).record([stored]), [true]);
    // Batches of 4 over calls of 3, 6 and 5 events: the second call is cut twice, the third once.
    const recorder = recorderOn(database, { batchSize: 4, maxWaitMs: 600_000, maxConcurrentFlushes: 1 });
    const e = (n: number) => makeEvent("cut-runs", `r-${n}`, n);
    const calls = [
      [e(1), e(2), e(3)],
      [e(4), e(1), { ...stored }, e(5), e(6), e(4)],
      [e(7), e(8), e(6), e(9), e(10)],
    ];
    const answers = calls.map((events) => recorder.record(events));
    await recorder.flush();
    assert.deepEqual(await Promise.all(answers), [
      [true, true, true],
      [true, false, false, true, true, false],
      [true, true, false, true, true],
    ]);
    assert.deepEqual((await storedIds("cut-runs")).sort(), ["r-1", "r-10", "r-2", "r-3", "r-4", "r-5", "r-6", "r-7", "r-8", "r-9", "r-stored"]);
    await recorder.close();
    await assertRollups();
  });

  test("a call larger than batchSize is split into batches and every event is answered", { timeout: HANG_MS }, async () => {
    // The wait is far longer than the test may run: only full batches can be written on their own.
    const recorder = recorderOn(database, { batchSize: 10, maxWaitMs: 600_000, maxConcurrentFlushes: 2 });
    const sizes: number[] = [];
    recorder.onFlush((inserted) => {
      sizes.push(inserted.length);
    });
    const events = Array.from({ length: 100 }, (_, i) => makeEvent("split", `sp-${String(i).padStart(3, "0")}`, i));
    const answers = await recorder.record(events);
    assert.equal(answers.length, 100);
    assert.ok(answers.every((a) => a === true));
    assert.deepEqual(sizes, Array(10).fill(10));
    // A remainder below batchSize waits for flush() (or its timer), then is answered too.
    const rest = Array.from({ length: 25 }, (_, i) => makeEvent("split", `sp-${100 + i}`, 100 + i));
    const pending = recorder.record(rest);
    await recorder.flush();
    assert.deepEqual(await pending, Array(25).fill(true));
    assert.deepEqual(sizes.slice(10).sort(), [10, 10, 5]);
    assert.equal((await storedIds("split")).length, 125);
    await recorder.close();
    await assertRollups();
  });

  test("events that queue while every writer is busy go into the next write together, up to batchSize", { timeout: HANG_MS }, async () => {
    const recorder = recorderOn(database, { batchSize: 25, maxWaitMs: 1, maxConcurrentFlushes: 1 });
    const { sizes, first, release } = await holdFirstWrite(recorder, makeEvent("group", "g-00", 0));
    // Three senders, each after its wait for company is over: none of them may be written alone.
    const later: Promise<boolean[]>[] = [];
    for (let call = 0; call < 3; call++) {
      later.push(recorder.record(Array.from({ length: 10 }, (_, i) => makeEvent("group", `g-${call + 1}${i}`, i))));
      await sleep(5);
    }
    release();
    assert.deepEqual(await first, [true]);
    for (const answers of later) assert.deepEqual(await answers, Array(10).fill(true));
    assert.deepEqual(sizes, [1, 25, 5]);
    await recorder.close();
    await assertRollups();
  });

  test("a writer freed before the window is over waits for it: calls trickling in are committed together", { timeout: HANG_MS }, async () => {
    // Proxied calls arrive one event at a time; a write ending must not take the one that came during it alone.
    const WAIT_MS = 300;
    const recorder = recorderOn(database, { batchSize: 100, maxWaitMs: WAIT_MS, maxConcurrentFlushes: 4 });
    const { sizes, first, release } = await holdFirstWrite(recorder, makeEvent("trickle", "t-0", 0));
    const queuedAt = performance.now();
    const later = [recorder.record([makeEvent("trickle", "t-1", 1)])];
    await sleep(5);
    release();
    assert.deepEqual(await first, [true]);
    for (let i = 2; i <= 4; i++) {
      later.push(recorder.record([makeEvent("trickle", `t-${i}`, i)]));
      await sleep(5);
    }
    for (const answers of later) assert.deepEqual(await answers, [true]);
    // Answered once the oldest of them had waited the window, all in one write.
    assert.ok(performance.now() - queuedAt >= WAIT_MS - 1);
    assert.deepEqual(sizes, [1, 4]);
    await recorder.close();
    await assertRollups();
  });

  test("a call's own wait: events allowed to wait long are written with the first call that may not, or when their own wait is over", { timeout: HANG_MS }, async () => {
    const LONG_MS = 60_000;
    const recorder = recorderOn(database, { batchSize: 100, maxWaitMs: 5 });
    const sizes: number[] = [];
    recorder.onFlush((events) => void sizes.push(events.length));
    // Journaled events (the proxy's) may wait a minute: nothing is written for them alone...
    const patient = [recorder.record([makeEvent("waits", "w-0", 0)], LONG_MS), recorder.record([makeEvent("waits", "w-1", 1)], LONG_MS)];
    await sleep(50);
    assert.deepEqual(sizes, []);
    // ...until a sender that waits for its answer (a post to /v1/usage) comes: all go in its write.
    const hurried = recorder.record([makeEvent("waits", "w-2", 2)]);
    assert.deepEqual(await hurried, [true]);
    for (const answers of patient) assert.deepEqual(await answers, [true]);
    assert.deepEqual(sizes, [3]);
    // A long wait that is over is written on its own.
    const queuedAt = performance.now();
    assert.deepEqual(await recorder.record([makeEvent("waits", "w-3", 3)], 100), [true]);
    assert.ok(performance.now() - queuedAt >= 99);
    assert.deepEqual(sizes, [3, 1]);
    await recorder.close();
    await assertRollups();
  });

  test("onFlush listeners get exactly the newly inserted events; a throwing listener fails nothing", async () => {
    const earlier = makeEvent("listen", "l-0", 0);
    const warmup = recorderOn(database);
    assert.deepEqual(await warmup.record([earlier]), [true]);
    await warmup.close();

    const recorder = recorderOn(database, { batchSize: 4, maxWaitMs: 1 });
    const seen: LedgerEvent[] = [];
    let calls = 0;
    recorder.onFlush(() => {
      calls++;
      throw new Error("listener fails synchronously");
    });
    recorder.onFlush(async (inserted) => {
      await sleep(1);
      seen.push(...inserted);
    });
    recorder.onFlush(async () => {
      throw new Error("listener fails asynchronously");
    });
    const events = [earlier, ...Array.from({ length: 9 }, (_, i) => makeEvent("listen", `l-${i + 1}`, i + 1))];
    const calls1 = [events.slice(0, 6), [...events.slice(3, 10), events[4]!], [events[0]!, events[9]!]];
    const answers = await Promise.all(calls1.map((c) => recorder.record(c)));
    const told = calls1.flatMap((c, i) => c.filter((_, j) => answers[i]![j]).map((e) => e.id));
    assert.deepEqual([...told].sort(), events.slice(1).map((e) => e.id).sort());
    // Listeners run after the callers are answered; close() waits for them.
    await recorder.close();
    assert.deepEqual(seen.map((e) => e.id).sort(), [...told].sort());
    assert.ok(calls >= 3, "every flush called the listeners");
    for (const e of seen) {
      const original = events.find((x) => x.id === e.id)!;
      assert.equal(e.cost, price(original).cost);
      assert.equal(e.priced, price(original).priced);
    }
    assert.equal((await storedIds("listen")).length, 10);
  });

  test("close() writes what is queued; record() afterwards, or while closing, rejects", { timeout: HANG_MS }, async () => {
    const recorder = recorderOn(database, { batchSize: 100, maxWaitMs: 600_000 });
    const queued = recorder.record([makeEvent("closing", "q-1", 1)]);
    const closing = recorder.close();
    await assert.rejects(recorder.record([makeEvent("closing", "q-2", 2)]), /closed/);
    await closing;
    assert.deepEqual(await queued, [true]);
    await assert.rejects(recorder.record([makeEvent("closing", "q-3", 3)]), /closed/);
    await sleep(20);
    assert.deepEqual(await storedIds("closing"), ["q-1"]);
  });

  test("a write that fails part-way leaves nothing behind; another sender's events in its batch still land; the retry stores each event once", async () => {
    // The statement fails for this team's event, after it took its fold batch, inside the same transaction.
    await database.rows(sql`alter table usage_events add constraint test_no_boom check (team <> 'boom')`);
    const events = [makeEvent("partial", "pw-1", 1, { team: "fine" }), makeEvent("partial", "pw-2", 2, { team: "boom" })];
    const { logger, lines } = capturingLogger();
    const recorder = recorderOn(database, { batchSize: 10, maxWaitMs: 5, logger });
    const queued = async () => (await database.rows<{ n: number }>(sql`select count(*)::int as n from usage_rollup_queue`))[0]!.n;
    try {
      // One sender's events are all or nothing, and nothing is queued for a fold.
      const before = await queued();
      await assert.rejects(recorder.record(events));
      assert.deepEqual(await storedIds("partial"), []);
      assert.equal(await queued(), before);
      // Two senders sharing one batch: the refused event fails its own sender only.
      const [a, b] = await Promise.allSettled([recorder.record([events[0]!]), recorder.record([events[1]!])]);
      assert.deepEqual(a, { status: "fulfilled", value: [true] });
      assert.equal(b.status, "rejected");
      assert.deepEqual(await storedIds("partial"), ["pw-1"]);
      await foldAll(database);
      const rollups = await database.rows<{ team: string; requests: string }>(sql`select team, sum(requests)::text as requests from usage_rollups where grain = 'hour' and team in ('fine', 'boom') group by team`);
      assert.deepEqual(rollups.map((r) => ({ ...r })), [{ team: "fine", requests: "1" }]);
      // Logged with its kind, never with its contents.
      const logged = lines.map((l) => JSON.parse(l) as { code?: string; kind?: string; msg: string });
      assert.ok(logged.some((l) => l.code === "23514" && l.kind === "integrity_constraint_violation" && /senders' events apart/.test(l.msg)), lines.join("\n"));
      assert.ok(!lines.join("").includes("boom"));
    } finally {
      await database.rows(sql`alter table usage_events drop constraint test_no_boom`);
    }
    assert.deepEqual(await recorder.record(events), [false, true]);
    assert.deepEqual(await recorder.record(events), [false, false]);
    assert.deepEqual(await storedIds("partial"), ["pw-1", "pw-2"]);
    await recorder.close();
    await assertRollups();
  });

  test("a link that breaks under a batch of several senders fails the batch once: a driver's connection error is not a refusal of the data", { skip: NEEDS_POSTGRES_TO_CUT, timeout: HANG_MS }, async () => {
    const link = await throughCutter(database, 1);
    const { logger, lines } = capturingLogger();
    const recorder = recorderOn(link.database, { batchSize: 10, maxWaitMs: 50, logger });
    try {
      await link.cutter.cut();
      // Two senders in one batch: written apart, each would fail again on the same broken link.
      const outcomes = await Promise.allSettled([recorder.record([makeEvent("cut", "c-1", 1)]), recorder.record([makeEvent("cut", "c-2", 2)])]);
      assert.deepEqual(outcomes.map((o) => o.status), ["rejected", "rejected"]);
      const logged = lines.map((l) => JSON.parse(l) as { code?: string | null; kind?: string; calls?: number; msg: string });
      assert.equal(logged.length, 1, lines.join("\n"));
      assert.equal(logged[0]!.msg, "the ledger refused a batch");
      assert.equal(logged[0]!.code, null);
      assert.equal(logged[0]!.calls, 2);
    } finally {
      await recorder.close();
      await link.cutter.restore();
      await link.close();
    }
    assert.deepEqual(await storedIds("cut"), []);
  });

  test("a database that goes away: record() rejects; the retry on a working database stores once", { timeout: HANG_MS }, async () => {
    const events = Array.from({ length: 5 }, (_, i) => makeEvent("gone", `g-${i}`, i));
    if (database.driver === "postgres") {
      // A connection killed while its write waits on a lock: the write fails, nothing is kept.
      const doomed = (await secondHandle(1))!;
      const recorder = recorderOn(doomed, { batchSize: 100, maxWaitMs: 1 });
      const [{ pid }] = (await doomed.rows<{ pid: number }>(sql`select pg_backend_pid() as pid`)) as [{ pid: number }];
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holder = database.db.transaction(async (tx) => {
        await tx.execute(sql`lock table usage_events in exclusive mode`);
        locked();
        await released;
      });
      await isLocked;
      const write = recorder.record(events);
      write.catch(() => {});
      await waitFor("the write to wait on the lock", async () => {
        const [w] = await database.rows<{ waiting: boolean }>(
          sql`select wait_event_type = 'Lock' as waiting from pg_stat_activity where pid = ${pid}`,
        );
        return w?.waiting === true;
      });
      await database.rows(sql`select pg_terminate_backend(${pid})`);
      await assert.rejects(write);
      release();
      await holder;
      assert.deepEqual(await storedIds("gone"), []);
      // The same recorder, as a sender retrying on 503 would: a pooled connection may report the
      // termination once more before it reconnects; a failed attempt stores nothing.
      let answers: boolean[] | undefined;
      for (let attempt = 0; attempt < 3 && !answers; attempt++) answers = await recorder.record(events).catch(() => undefined);
      assert.deepEqual(answers, Array(5).fill(true));
      await recorder.close();
      await doomed.close();
      const other = recorderOn(database);
      assert.deepEqual(await other.record(events), Array(5).fill(false));
      await other.close();
      assert.deepEqual(await storedIds("gone"), events.map((e) => e.id));
      await assertRollups();
      return;
    }
    // PGlite: a data folder closed under the recorder, then opened again.
    const dir = mkdtempSync(join(tmpdir(), "tollgate-recorder-"));
    try {
      await seedDataDir(dir); // a migrated folder without initdb's cost
      const first = await openDatabase({ dataDir: dir });
      await migrate(first);
      const recorder = recorderOn(first);
      assert.deepEqual(await recorder.record(events.slice(0, 2)), [true, true]);
      await first.close();
      await assert.rejects(recorder.record(events));
      const reopened = await openDatabase({ dataDir: dir });
      try {
        const retry = recorderOn(reopened);
        assert.deepEqual(await retry.record(events), [false, false, true, true, true]);
        assert.deepEqual(await retry.record(events), Array(5).fill(false));
        await retry.close();
        const rows = await reopened.rows<{ id: string }>(sql`select id from usage_events order by id`);
        assert.deepEqual(rows.map((r) => r.id), events.map((e) => e.id));
        await assertRollups(reopened);
      } finally {
        await reopened.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an event Postgres could never store, or beyond what one call can be, is refused when built, so it never shares a batch with others", async () => {
    const refused = [
      seenEvent("poison", "bad\u0000id", 2),
      seenEvent("poison", "bad-tag", 3, { tags: { env: "a\u0000b" } }),
      seenEvent("poison", "bad-year", 4, { ts: new Date("0000-06-01T00:00:00Z") }),
      // 9.3 M USD overflows bigint pico-USD: it failed every sender's events in its batch.
      seenEvent("poison", "bad-cost", 5, { reported_cost: 9_300_000n * 1_000_000_000_000n }),
      seenEvent("poison", "negative-cost", 6, { reported_cost: -1n }),
      // Doors other than the webhook build events without its schema: the builder bounds them all.
      { ...seenEvent("poison", "bad-tokens", 7), tokens: { input: 1.5, cached_input: 0, cache_write: 0, cache_write_1h: 0, output: 0, reasoning: 0 } },
      { ...seenEvent("poison", "long-team", 8), team: "t".repeat(201) },
      { ...seenEvent("poison", "bad-latency", 9), latency_ms: 2 ** 31 },
    ].map((seen) => builder.build(seen));
    assert.deepEqual(
      refused.map((b) => (b.ok ? "built" : [b.field, b.reason])),
      [
        ["id", "its id must not contain NUL characters"],
        ["tags", "its tags must not contain NUL characters"],
        ["ts", "its time must be within the years 1 to 9999"],
        ["reported_cost", "its reported cost must be from 0 to 1000000 USD"],
        ["reported_cost", "its reported cost must be from 0 to 1000000 USD"],
        ["tokens.input", "its input token count must be a whole number from 0 to 100000000"],
        ["team", "its team must be at most 200 characters, got 201"],
        ["latency_ms", "its latency must be a whole number of milliseconds from 0 to 86400000"],
      ],
    );
    const recorder = recorderOn(database, { batchSize: 100, maxWaitMs: 20 });
    assert.deepEqual(await recorder.record([makeEvent("poison", "ok-1", 1)]), [true]);
    assert.deepEqual(await storedIds("poison"), ["ok-1"]);
    await recorder.close();
  });

  test("the builder names the provider as every door does, and prices the event once", () => {
    const built = builder.build(seenEvent("names", "n-1", 0, { provider: " X-AI ", model: "m-a" }));
    assert.ok(built.ok);
    assert.equal(built.event.provider, "xai");
    assert.deepEqual({ cost: built.event.cost, priced: built.event.priced }, price(built.event));
    const kept = builder.restore(seenEvent("names", "n-2", 0, { provider: "Google" }), { cost: 7n, priced: true });
    assert.ok(kept.ok);
    assert.deepEqual([kept.event.provider, kept.event.cost], ["gemini", 7n], "a restored event keeps the price it was built with");
  });

  test("timestamps at hour and day boundaries land in their UTC buckets whatever the session time zone", async () => {
    // +05:30 would put hour buckets on the half hour if anything truncated in the session's zone.
    const zoned = (await secondHandle(1)) ?? database;
    await zoned.rows(sql`set timezone to 'Asia/Kolkata'`);
    try {
      const at = (iso: string, id: string) => makeEvent("tz", id, 1, { ts: new Date(iso), team: "tz-team", user: "tz-user" });
      const recorder = recorderOn(zoned);
      await recorder.record([
        at("2024-12-31T23:59:59.999Z", "before-midnight"),
        at("2025-01-01T00:00:00.000Z", "midnight"),
        at("2025-01-01T00:59:59.999Z", "end-of-first-hour"),
        at("2025-01-01T01:00:00.000Z", "one-am"),
      ]);
      await recorder.close();
      // The user grains are folded in the same session zone.
      await foldAll(zoned);
    } finally {
      if (zoned === database) await database.rows(sql`reset timezone`);
      else await zoned.close();
    }
    const rows = (await database.rows<{ grain: string; bucket: string; user: string; requests: string }>(sql`
      select grain, to_char(bucket at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') as bucket, "user", requests::text
      from ${ALL_ROLLUPS} where team = 'tz-team' order by grain, bucket`)).map((r) => ({ ...r }));
    assert.deepEqual(rows, [
      { grain: "day", bucket: "2024-12-31T00:00:00", user: "", requests: "1" },
      { grain: "day", bucket: "2025-01-01T00:00:00", user: "", requests: "3" },
      { grain: "hour", bucket: "2024-12-31T23:00:00", user: "", requests: "1" },
      { grain: "hour", bucket: "2025-01-01T00:00:00", user: "", requests: "2" },
      { grain: "hour", bucket: "2025-01-01T01:00:00", user: "", requests: "1" },
      { grain: "user-day", bucket: "2024-12-31T00:00:00", user: "tz-user", requests: "1" },
      { grain: "user-day", bucket: "2025-01-01T00:00:00", user: "tz-user", requests: "3" },
    ]);
    const stored = await database.rows<{ id: string; ts: string }>(
      sql`select id, to_char(ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS') as ts from usage_events where source = 'tz' order by ts`,
    );
    assert.deepEqual(stored.map((r) => r.ts), ["2024-12-31T23:59:59.999", "2025-01-01T00:00:00.000", "2025-01-01T00:59:59.999", "2025-01-01T01:00:00.000"]);
    await assertRollups();
  });

  test("times travel as epoch milliseconds and tags as text: both are stored exactly, at the edges too", async () => {
    const tags = { quote: 'say "hi"', "back\\slash": "a\\b", brace: "{x}", comma: "a,b", unicode: "日本 ü 🎉", empty: "" };
    const cases = [
      ["first-ms", "0001-01-01T00:00:00.001Z", {}],
      ["before-epoch", "1969-12-31T23:59:59.999Z", tags],
      ["epoch", "1970-01-01T00:00:00.000Z", { only: "one" }],
      ["last-ms", "9999-12-31T23:59:59.999Z", tags],
    ] as const;
    const recorder = recorderOn(database);
    const answers = await recorder.record(cases.map(([id, iso, t], i) => makeEvent("edges", id, i, { ts: new Date(iso), tags: t })));
    await recorder.close();
    assert.deepEqual(answers, [true, true, true, true]);
    const rows = await database.rows<{ id: string; ts: string; tags: Record<string, string> }>(sql`
      select id, to_char(ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as ts, tags from usage_events where source = 'edges'`);
    const stored = new Map(rows.map((r) => [r.id, r]));
    for (const [id, iso, t] of cases) {
      assert.equal(stored.get(id)?.ts, iso, id);
      assert.deepEqual(stored.get(id)?.tags, t, id);
    }
    await assertRollupsMatchEvents(database);
  });

  test("optional fields empty at the end of a batch (their NULLs are not sent) are stored as NULL, the rest in their rows", async () => {
    const given = [
      ["n1", { latency_ms: 5, request_id: null, session: "s1", reported_cost: 7n }],
      ["n2", { latency_ms: null, request_id: "r2", session: null, reported_cost: null }],
      ["n3", { latency_ms: 9, request_id: null, session: null, reported_cost: null }],
      ["n4", { latency_ms: null, request_id: null, session: null, reported_cost: null }],
    ] as const;
    const recorder = recorderOn(database);
    assert.deepEqual(await recorder.record(given.map(([id, extra], i) => makeEvent("nulls", id, i, extra))), [true, true, true, true]);
    await recorder.close();
    const rows = await database.rows<{ id: string; latency_ms: number | null; request_id: string | null; session: string | null; reported_cost: string | null }>(sql`
      select id, latency_ms, request_id, session, reported_cost::text as reported_cost from usage_events where source = 'nulls'`);
    const stored = new Map(rows.map((r) => [r.id, r]));
    for (const [id, extra] of given) {
      const row = stored.get(id);
      assert.deepEqual(
        [row?.latency_ms ?? null, row?.request_id ?? null, row?.session ?? null, row?.reported_cost ?? null],
        [extra.latency_ms, extra.request_id, extra.session, extra.reported_cost?.toString() ?? null],
        id,
      );
    }
  });
});
