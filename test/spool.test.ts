import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { pino } from "pino";
import { type Database, openDatabase } from "../src/db/connection.ts";
import { migrate } from "../src/db/migrate.ts";
import { type Built, type LedgerEvent, type Pricer, eventBuilder } from "../src/ledger/build-event.ts";
import { UsageEvent, type UsageEventInput } from "../src/ledger/event.ts";
import { Recorder } from "../src/ledger/recorder.ts";
import { type Decoded, Spool, decodeEvent, encodeEvent } from "../src/ledger/spool.ts";
import { type SinkTuning, SpoolingSink } from "../src/ledger/usage-sink.ts";
import { createLogger } from "../src/logger.ts";
import { TcpCutter } from "./fakes/tcp-cutter.ts";
import { assertRollupsMatchEvents } from "./helpers/rollups.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { seedDataDir } from "./helpers/template.ts";
import { HANG_MS, waitFor } from "./helpers/wait.ts";

let database: Database;
before(async () => {
  database = await openTestDatabase();
});
after(() => database.close());

const price: Pricer = (e) => ({ cost: BigInt(e.tokens.input) * 2_500_000n + BigInt(e.tokens.output) * 10_000_000n, priced: e.model !== "unknown" });
const silent = createLogger("silent");
const builder = eventBuilder(price);
/** Events as the proxy hands them to the sink: built, or refused by the builder. */
const built = (events: UsageEvent[]): Built[] => events.map((e) => builder.build(e));
/** Events the builder took, as the spool receives them. */
const ledgerEvents = (events: UsageEvent[]): LedgerEvent[] => built(events).flatMap((b) => (b.ok ? [b.event] : []));
/** The event on a spool line that holds one. */
const eventOn = (line: string): UsageEvent => (decodeEvent(line) as Decoded).event;

/** Short timers so outages, backoffs and replays play out in milliseconds. */
const FAST: Partial<SinkTuning> = {
  groupWindowMs: 5,
  idleSealMs: 50,
  replayIntervalMs: 20,
  maxBackoffMs: 100,
  idleScanMs: 100,
  replayBatchSize: 7,
  writeTimeoutMs: 2000,
};

function makeEvent(source: string, i: number, extra: Partial<UsageEventInput> = {}): UsageEvent {
  return UsageEvent.parse({
    source,
    id: `e-${String(i).padStart(4, "0")}`,
    ts: new Date(Date.UTC(2025, 0, 10) + i * 1_234_567),
    provider: "openai",
    model: i % 4 === 0 ? "unknown" : "gpt-x",
    tokens: { input: 100 + i, cached_input: i % 10, output: 20 + (i % 7), reasoning: i % 3 },
    team: ["t1", "t2", null][i % 3],
    user: i % 2 === 0 ? "u1" : null,
    ...extra,
  });
}
const eventsFor = (source: string, from: number, n: number) => Array.from({ length: n }, (_, i) => makeEvent(source, from + i));

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tollgate-spool-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const spoolDir = (dataDir: string) => join(dataDir, "spool");
const spoolFiles = (dataDir: string) => readdirSync(spoolDir(dataDir)).sort();
const linesIn = (dataDir: string) =>
  spoolFiles(dataDir).flatMap((f) => readFileSync(join(spoolDir(dataDir), f), "utf8").split("\n").filter(Boolean));

async function storedIds(db: Database, source: string): Promise<string[]> {
  const rows = await db.rows<{ id: string }>(sql`select id from usage_events where source = ${source} order by id`);
  return rows.map((r) => r.id);
}

/** A postgres.js database on a port nothing listens on: every query fails as in a real outage. */
const unreachableDatabase = () => openDatabase({ url: "postgres://postgres@127.0.0.1:1/none", dataDir: "" });

/** A pino logger whose lines the test can read. */
function capturingLogger() {
  const lines: string[] = [];
  return { logger: pino({ level: "info" }, { write: (line: string) => void lines.push(line) }), lines };
}

/** Counts fsyncs of spool data (directories are synced with sync(), not datasync()). */
async function countDatasyncs(): Promise<{ count: () => number; restore: () => void }> {
  const probe = await open(import.meta.filename, "r");
  const proto = Object.getPrototypeOf(probe) as FileHandle;
  await probe.close();
  const original = proto.datasync;
  let n = 0;
  proto.datasync = function (this: FileHandle) {
    n++;
    return original.call(this);
  };
  return { count: () => n, restore: () => void (proto.datasync = original) };
}


/**
 * Spools events through a sink whose database is unreachable, then closes it: what a stopped
 * gateway leaves. Its replay passes (which seal the open file) are held off, so files end only by
 * size or on close.
 */
async function leaveSpooled(dataDir: string, events: UsageEvent[], tuning: Partial<SinkTuning> = {}): Promise<void> {
  const dead = await unreachableDatabase();
  const recorder = new Recorder(dead, builder, { batchSize: 100, maxWaitMs: 1 });
  const held = { idleSealMs: 60_000, idleScanMs: 60_000, replayIntervalMs: 60_000, maxBackoffMs: 60_000 };
  const sink = await SpoolingSink.open({ recorder, database: dead, dataDir, logger: silent, ...FAST, ...held, ...tuning });
  // One group at a time: files rotate between groups, so small files need separate groups.
  for (let i = 0; i < events.length; i += 5) {
    sink.submit(built(events.slice(i, i + 5)));
    await waitFor("events spooled", () => sink.status().spooled_events === Math.min(i + 5, events.length));
  }
  assert.equal(sink.status().database, "degraded");
  await sink.close();
  await dead.close();
}

describe("spool serialisation", () => {
  test("every field round-trips exactly: bigints beyond 2^53, millisecond dates, tags, nulls", () => {
    const full = UsageEvent.parse({
      source: "proxy",
      id: "req_\"quoted\"\\slash",
      ts: new Date("2025-03-04T05:06:07.089Z"),
      provider: "anthropic",
      model: "claude-x",
      tokens: { input: 100_000_000, cached_input: 40, cache_write: 30, cache_write_1h: 10, output: 50, reasoning: 20 },
      service_tier: "priority",
      reported_cost: 123_456_789_012_345_678_901_234_567_890n,
      latency_ms: 86_400_000,
      status: "aborted",
      team: "tëam ☃",
      project: "p",
      feature: "f",
      user: "u\nwith newline",
      session: "s",
      api_key_id: "key_1",
      tags: { env: "prod", "odd key": "line1\nline2\u2028", empty: "" },
      request_id: "r-1",
    });
    const bare = UsageEvent.parse({ source: "s", id: "i", ts: new Date(0), tokens: {} });
    const negative = { ...bare, id: "neg", reported_cost: -5n, ts: new Date("+010000-01-01T00:00:00.001Z") };
    for (const event of [full, bare, negative]) {
      const line = encodeEvent(event);
      assert.ok(!line.includes("\n"), "one event is one line");
      const back = decodeEvent(line) as Decoded;
      assert.deepEqual(back, { event, price: undefined }, "a line spooled before prices were kept has none");
      assert.equal(typeof back.event.reported_cost === "bigint" || back.event.reported_cost === null, true);
      assert.ok(back.event.ts instanceof Date);
    }
    assert.equal(bare.reported_cost, null);
    assert.equal(eventOn(encodeEvent(full)).reported_cost, 123_456_789_012_345_678_901_234_567_890n);
    // A built event comes back with the price it was built with, to be restored rather than priced again
    // (with a reported cost a call can have: the builder refuses more than 1,000,000 USD).
    const priced = builder.build({ ...full, reported_cost: 987_654_321_987_654_321n });
    assert.ok(priced.ok);
    const { cost, priced: known, ...fields } = priced.event;
    assert.deepEqual(decodeEvent(encodeEvent(priced.event)), { event: fields, price: { cost, priced: known } });
  });

  test("lines that are not events are told apart: unreadable (torn) or invalid", () => {
    const line = encodeEvent(makeEvent("codec", 1));
    assert.equal(decodeEvent(line.slice(0, -1)), "unreadable");
    assert.equal(decodeEvent(line.slice(0, 20)), "unreadable");
    assert.equal(decodeEvent("[1,2]"), "unreadable");
    assert.equal(decodeEvent("12"), "unreadable");
    const raw = JSON.parse(line) as Record<string, unknown>;
    assert.equal(decodeEvent(JSON.stringify({ ...raw, ts: "not a date" })), "invalid");
    assert.equal(decodeEvent(JSON.stringify({ ...raw, reported_cost: "1.5" })), "invalid");
    assert.equal(decodeEvent(JSON.stringify({ ...raw, tokens: { input: -1 } })), "invalid");
    assert.equal(decodeEvent(JSON.stringify({ ...raw, id: undefined })), "invalid");
    assert.equal(decodeEvent(JSON.stringify({ ...raw, cost: "-1", priced: true })), "invalid");
    assert.equal(decodeEvent(JSON.stringify({ ...raw, cost: "5" })), "invalid", "a price is a cost and whether it is known");
  });
});

describe("spool files", () => {
  test("appends within one window share one write and one fsync; files rotate by size; close seals", async () => {
    const dataDir = tempDir();
    const spool = await Spool.open({
      dir: spoolDir(dataDir),
      rejectedFile: join(dataDir, "rejected.ndjson"),
      logger: silent,
      groupWindowMs: 30,
      groupMaxEvents: 1000,
      maxFileBytes: 16_000,
      idleSealMs: 60_000,
      staleAfterMs: 600_000,
    });
    const fsyncs = await countDatasyncs();
    try {
      await Promise.all(Array.from({ length: 10 }, (_, i) => spool.append(ledgerEvents(eventsFor("group", i * 3, 3)))));
      assert.equal(fsyncs.count(), 1, "ten appends in one window: one fsync");
      assert.equal(spool.stats().events, 30);
      const open1 = spoolFiles(dataDir);
      assert.equal(open1.length, 1);
      assert.match(open1[0]!, /\.writing-\d+\.[0-9a-f]{8}@/);

      // A full group is written at once, without waiting out the window.
      const started = Date.now();
      await spool.append(ledgerEvents(eventsFor("group", 100, 1000)));
      assert.ok(Date.now() - started < 1000);
      assert.equal(fsyncs.count(), 2);

      for (let i = 0; i < 5; i++) await spool.append(ledgerEvents(eventsFor("group", 2000 + i * 40, 40)));
      assert.ok(spoolFiles(dataDir).filter((f) => f.endsWith(".ndjson")).length >= 2, "big files were sealed and rotated");
    } finally {
      fsyncs.restore();
    }
    await spool.close();
    const files = spoolFiles(dataDir);
    assert.ok(files.every((f) => /^\d{15}-[0-9a-f]{8}\.ndjson$/.test(f)), `all sealed after close: ${files.join(", ")}`);
    const ids = linesIn(dataDir).map((l) => eventOn(l).id);
    assert.equal(ids.length, 1230);
    assert.equal(new Set(ids).size, 1230);
    assert.equal(spool.stats().events, 1230);
    await assert.rejects(spool.append(ledgerEvents(eventsFor("group", 9000, 1))), /closed/);
  });
});

describe("SpoolingSink", () => {
  test("with a working database, submitted events land once and nothing is spooled", async () => {
    const dataDir = tempDir();
    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const sink = await SpoolingSink.open({ recorder, database, dataDir, logger: silent, ...FAST });
    const events = eventsFor("working", 0, 40);
    for (let i = 0; i < 40; i += 4) sink.submit(built(events.slice(i, i + 4)));
    sink.submit([]);
    await waitFor("events stored", async () => (await storedIds(database, "working")).length === 40);
    await sink.close();
    assert.deepEqual(await storedIds(database, "working"), events.map((e) => e.id));
    assert.deepEqual(sink.status(), { spooled_events: 0, database: "ok" });
    assert.deepEqual(spoolFiles(dataDir), []);
    await assertRollupsMatchEvents(database);
  });

  test("outage: spooled while the database is down, replayed once when it is back, spool emptied", { timeout: HANG_MS }, async () => {
    const dataDir = tempDir();
    const before = eventsFor("outage", 0, 30);
    const during = eventsFor("outage", 30, 30);
    const afterwards = eventsFor("outage", 60, 6);
    const submitIn = (sink: SpoolingSink, events: UsageEvent[]) => {
      for (let i = 0; i < events.length; i += 3) sink.submit(built(events.slice(i, i + 3)));
    };
    const fsyncs = await countDatasyncs();
    try {
      if (process.env.TEST_DATABASE_URL) {
        // A real Postgres behind a forwarder that drops every connection and refuses new ones.
        const [row] = await database.rows<{ name: string }>(sql`select current_database() as name`);
        const target = new URL(process.env.TEST_DATABASE_URL);
        target.pathname = `/${row!.name}`;
        const cutter = await TcpCutter.start({ host: target.hostname, port: Number(target.port || 5432) });
        const through = await openDatabase({ url: cutter.url(target.toString()), dataDir: "", maxConnections: 2 });
        try {
          const recorder = new Recorder(through, builder, { batchSize: 50, maxWaitMs: 2 });
          const sink = await SpoolingSink.open({ recorder, database: through, dataDir, logger: silent, ...FAST });
          submitIn(sink, before);
          await waitFor("the first events stored", async () => (await storedIds(database, "outage")).length === 30);
          assert.equal(fsyncs.count(), 0, "nothing spooled while the database answers");

          cutter.cut();
          submitIn(sink, during);
          await waitFor("events spooled", () => sink.status().spooled_events === 30);
          assert.equal(sink.status().database, "degraded");
          assert.ok(sink.status().oldest instanceof Date);
          assert.deepEqual(linesIn(dataDir).map((l) => eventOn(l).id).sort(), during.map((e) => e.id));
          assert.ok(fsyncs.count() >= 1 && fsyncs.count() < 10, `spool appends were fsync'd in groups (${fsyncs.count()} fsyncs for 10 submits)`);

          await cutter.restore();
          await waitFor("the spool replayed", () => sink.status().spooled_events === 0 && sink.status().database === "ok");
          submitIn(sink, afterwards);
          await waitFor("all events stored", async () => (await storedIds(database, "outage")).length === 66);
          await sink.close();
        } finally {
          await through.close();
          await cutter.close();
        }
        assert.deepEqual(await storedIds(database, "outage"), [...before, ...during, ...afterwards].map((e) => e.id));
        await assertRollupsMatchEvents(database);
      } else {
        // PGlite has no network to cut: its data folder is closed under the sink (a real failure of
        // the real driver), then the gateway restarts on the same folder and replays the spool.
        await seedDataDir(dataDir); // a migrated folder without initdb's cost
        const first = await openDatabase({ dataDir });
        await migrate(first);
        const sink = await SpoolingSink.open({ recorder: new Recorder(first, builder, { batchSize: 50, maxWaitMs: 2 }), database: first, dataDir, logger: silent, ...FAST });
        submitIn(sink, before);
        await waitFor("the first events stored", async () => (await storedIds(first, "outage")).length === 30);
        assert.equal(fsyncs.count(), 0, "nothing spooled while the database answers");

        await first.close();
        submitIn(sink, during);
        await waitFor("events spooled", () => sink.status().spooled_events === 30);
        assert.equal(sink.status().database, "degraded");
        assert.ok(fsyncs.count() >= 1 && fsyncs.count() < 10, `spool appends were fsync'd in groups (${fsyncs.count()} fsyncs for 10 submits)`);
        await sink.close();
        assert.deepEqual(linesIn(dataDir).map((l) => eventOn(l).id).sort(), during.map((e) => e.id));

        const reopened = await openDatabase({ dataDir });
        try {
          const restarted = await SpoolingSink.open({ recorder: new Recorder(reopened, builder, { batchSize: 50, maxWaitMs: 2 }), database: reopened, dataDir, logger: silent, ...FAST });
          await waitFor("the spool replayed on start", () => restarted.status().spooled_events === 0 && spoolFiles(dataDir).length === 0);
          restarted.submit(built(afterwards));
          await waitFor("all events stored", async () => (await storedIds(reopened, "outage")).length === 66);
          await restarted.close();
          assert.deepEqual(await storedIds(reopened, "outage"), [...before, ...during, ...afterwards].map((e) => e.id));
          await assertRollupsMatchEvents(reopened);
        } finally {
          await reopened.close();
        }
      }
    } finally {
      fsyncs.restore();
    }
    assert.deepEqual(spoolFiles(dataDir), []);
  });

  test("restart: what one sink spooled, a new one replays on start, batch by batch", async () => {
    const dataDir = tempDir();
    const events = eventsFor("restart", 0, 25);
    await leaveSpooled(dataDir, events);
    assert.ok(spoolFiles(dataDir).length > 0 && spoolFiles(dataDir).every((f) => f.endsWith(".ndjson")), "sealed files left behind");
    const seen: number[] = [];
    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const counting = { builder, record: (batch: readonly LedgerEvent[]) => (seen.push(batch.length), recorder.record(batch)) };
    const sink = await SpoolingSink.open({ recorder: counting, database, dataDir, logger: silent, ...FAST });
    assert.equal(sink.status().spooled_events, 25, "the new sink knows what is spooled before replaying");
    await waitFor("replayed", () => sink.status().spooled_events === 0);
    assert.deepEqual(spoolFiles(dataDir), []);
    assert.deepEqual(sink.status(), { spooled_events: 0, database: "ok" });
    await sink.close();
    assert.deepEqual(await storedIds(database, "restart"), events.map((e) => e.id));
    assert.ok(Math.max(...seen) <= 7, "replayed in batches of replayBatchSize");
    assert.equal(seen.reduce((a, b) => a + b, 0), 25);
  });

  test("a replay that fails part-way hands the file back whole; replayed later, each event stored once", async () => {
    const dataDir = tempDir();
    const events = eventsFor("partway", 0, 20);
    await leaveSpooled(dataDir, events);
    const [file, ...others] = spoolFiles(dataDir);
    assert.deepEqual(others, [], "one file");

    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    let calls = 0;
    // The first batch commits, then the link breaks.
    const breaking = {
      builder,
      record: (batch: readonly LedgerEvent[]) =>
        ++calls === 1 ? recorder.record(batch) : Promise.reject(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })),
    };
    const sink = await SpoolingSink.open({ recorder: breaking, database, dataDir, logger: silent, ...FAST });
    await waitFor("the outage noticed", () => sink.status().database === "degraded");
    await sink.close();
    assert.deepEqual(await storedIds(database, "partway"), events.slice(0, 7).map((e) => e.id));
    assert.deepEqual(spoolFiles(dataDir), [file], "handed back under its sealed name");
    assert.equal(linesIn(dataDir).length, 20, "whole");

    const again = await SpoolingSink.open({ recorder, database, dataDir, logger: silent, ...FAST });
    await waitFor("replayed", () => again.status().spooled_events === 0);
    await again.close();
    assert.deepEqual(spoolFiles(dataDir), []);
    assert.deepEqual(await storedIds(database, "partway"), events.map((e) => e.id));
    await assertRollupsMatchEvents(database);
  });

  test("a torn final line is skipped with a warning; the rest is replayed", async () => {
    const dataDir = tempDir();
    const events = eventsFor("torn", 0, 10).map((e) => ({ ...e, team: "secret-team" }));
    await leaveSpooled(dataDir, events);
    const [file, ...others] = spoolFiles(dataDir);
    assert.deepEqual(others, [], "one file");
    // A crash mid-append: half an event, no newline.
    appendFileSync(join(spoolDir(dataDir), file!), encodeEvent(makeEvent("torn", 99)).slice(0, 50));

    const { logger, lines } = capturingLogger();
    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const sink = await SpoolingSink.open({ recorder, database, dataDir, logger, ...FAST });
    await waitFor("replayed", () => spoolFiles(dataDir).length === 0);
    await sink.close();
    assert.deepEqual(await storedIds(database, "torn"), events.map((e) => e.id));
    const warnings = lines.map((l) => JSON.parse(l) as { level: number; msg: string; torn?: boolean }).filter((l) => l.level === 40);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.torn, true);
    assert.match(warnings[0]!.msg, /torn/);
    assert.ok(!lines.join("").includes("secret-team"), "logs carry ids, never event contents");
  });

  test("two sinks on one spool folder: each file is claimed and replayed by one of them only", { timeout: HANG_MS }, async () => {
    const dataDir = tempDir();
    const events = eventsFor("shared", 0, 60);
    // Small files, so there are many to share out.
    await leaveSpooled(dataDir, events, { maxFileBytes: 1500 });
    const files = spoolFiles(dataDir);
    assert.ok(files.length >= 6, `${files.length} files`);

    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const replayedBy = [new Map<string, number>(), new Map<string, number>()];
    const sinks = await Promise.all(
      replayedBy.map((seen) => {
        const slow = {
          builder,
          // Slow enough that both sinks are replaying at the same time.
          record: async (batch: readonly LedgerEvent[]) => {
            for (const e of batch) seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
            await sleep(15);
            return recorder.record(batch);
          },
        };
        return SpoolingSink.open({ recorder: slow, database, dataDir, logger: silent, ...FAST });
      }),
    );
    await waitFor("replayed", () => spoolFiles(dataDir).length === 0);
    await Promise.all(sinks.map((s) => s.close()));
    const [a, b] = replayedBy as [Map<string, number>, Map<string, number>];
    assert.ok(a.size > 0 && b.size > 0, `both took part (${a.size} and ${b.size} events)`);
    assert.deepEqual([...a.keys()].filter((id) => b.has(id)), [], "no event replayed by both");
    assert.ok([...a.values(), ...b.values()].every((n) => n === 1), "no event replayed twice");
    assert.deepEqual([...a.keys(), ...b.keys()].sort(), events.map((e) => e.id));
    assert.deepEqual(await storedIds(database, "shared"), events.map((e) => e.id));
  });

  test("claims and open files of a gone owner are taken over; a live owner's claim is left alone", { timeout: HANG_MS }, async () => {
    const dataDir = tempDir();
    const events = eventsFor("stale", 0, 40);
    await leaveSpooled(dataDir, events, { maxFileBytes: 1500 });
    const files = spoolFiles(dataDir);
    assert.ok(files.length >= 4);
    const child = spawn(process.execPath, ["-e", ""]);
    await once(child, "exit");
    const deadPid = child.pid!;
    const host = hostname().replace(/[^A-Za-z0-9.-]/g, "_");
    const owned = (name: string, state: string, pid: number, instance: string) => {
      const to = name.replace(/\.ndjson$/, `.${state}-${pid}.${instance}@${host}`);
      renameSync(join(spoolDir(dataDir), name), join(spoolDir(dataDir), to));
      return to;
    };
    owned(files[0]!, "replaying", deadPid, "0badc0de"); // its process died mid-replay
    owned(files[1]!, "writing", deadPid, "0badc0de"); // its process died mid-append
    owned(files[2]!, "replaying", process.pid, "0badc0de"); // a restart that got the same pid back
    const live = owned(files[3]!, "replaying", process.ppid, "1eaf1eaf"); // another gateway, still replaying
    const liveIds = readFileSync(join(spoolDir(dataDir), live), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => eventOn(l).id);

    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const sink = await SpoolingSink.open({ recorder, database, dataDir, logger: silent, ...FAST });
    await waitFor("the rest replayed", () => spoolFiles(dataDir).length === 1);
    await sleep(150); // a few more passes: the live claim must still be left alone
    assert.deepEqual(spoolFiles(dataDir), [live]);
    assert.equal(sink.status().spooled_events, liveIds.length);
    await sink.close();
    const stored = await storedIds(database, "stale");
    assert.deepEqual(stored, events.map((e) => e.id).filter((id) => !liveIds.includes(id)));
  });

  test("events that cannot be stored are kept aside, alone; the others land and the database stays ok", async () => {
    const dataDir = tempDir();
    const { logger, lines } = capturingLogger();
    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const sink = await SpoolingSink.open({ recorder, database, dataDir, logger, ...FAST });
    const good = eventsFor("refused", 0, 8);
    // Foreseen by the builder, and refused by the database alone (a constraint).
    const yearZero = makeEvent("refused", 100, { ts: new Date("0000-06-01T00:00:00Z") });
    const nulTag = makeEvent("refused", 101, { tags: { secret: "a\u0000b" } });
    const boom = makeEvent("refused", 102, { team: "boom" });
    await database.rows(sql`alter table usage_rollups add constraint test_no_boom check (team <> 'boom')`);
    try {
      sink.submit(built([good[0]!, yearZero, good[1]!, good[2]!, nulTag, good[3]!]));
      sink.submit(built([good[4]!, boom, good[5]!]));
      sink.submit(built(good.slice(6)));
      await waitFor("good events stored", async () => (await storedIds(database, "refused")).length === 8);
      await sink.close();
    } finally {
      await database.rows(sql`alter table usage_rollups drop constraint test_no_boom`);
    }
    assert.deepEqual(await storedIds(database, "refused"), good.map((e) => e.id));
    assert.equal(sink.status().database, "ok");
    assert.deepEqual(spoolFiles(dataDir), []);
    const kept = readFileSync(join(dataDir, "spool-rejected.ndjson"), "utf8").split("\n").filter(Boolean);
    assert.deepEqual(kept.map((l) => eventOn(l).id).sort(), [yearZero.id, nulTag.id, boom.id]);
    for (const e of [yearZero, nulTag, boom]) assert.ok(lines.some((l) => l.includes(`refused/${e.id}`)), `${e.id} is logged`);
    const logged = lines.join("");
    assert.ok(!logged.includes("a\\u0000b") && !logged.includes("0000-06-01") && !logged.includes("boom"), "but not their contents");
    await assertRollupsMatchEvents(database);
  });

  test("submit never waits: a database that does not answer gets the events spooled after writeTimeoutMs", async () => {
    const dataDir = tempDir();
    const hanging = { record: () => new Promise<boolean[]>(() => {}), rows: () => new Promise<never>(() => {}), builder };
    const sink = await SpoolingSink.open({ recorder: hanging, database: hanging, dataDir, logger: silent, ...FAST, writeTimeoutMs: 100 });
    const started = performance.now();
    sink.submit(built(eventsFor("hang", 0, 5)));
    assert.ok(performance.now() - started < 5, "submit returns at once");
    assert.equal(sink.status().database, "ok");
    await waitFor("spooled after the timeout", () => sink.status().spooled_events === 5);
    assert.equal(sink.status().database, "degraded");
    await sink.close();
    assert.equal(linesIn(dataDir).length, 5);
  });
});
