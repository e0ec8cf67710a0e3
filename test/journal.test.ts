import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
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
import { type Decoded, decodeEvent, encodeEvent, isoText } from "../src/ledger/journal.ts";
import { DEFAULT_DRAIN_TUNING, type DrainTuning, JournalDrain, outageBackoffMs } from "../src/ledger/journal-drain.ts";
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
/** Events as the proxy hands them to the drain: built, or refused by the builder. */
const built = (events: UsageEvent[]): Built[] => events.map((e) => builder.build(e));
const submitAll = (drain: JournalDrain, events: UsageEvent[]) => {
  for (const b of built(events)) drain.submit(b);
};
/** Once what was submitted so far is written. */
const journaled = (drain: JournalDrain) => new Promise<void>((resolve) => drain.whenJournaled(resolve));
/** Each event in a turn of the event loop of its own, as calls answered apart: a write (and a segment size check) each. */
async function submitApart(drain: JournalDrain, events: UsageEvent[]): Promise<void> {
  for (const b of built(events)) {
    drain.submit(b);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
/** The event on a journal line that holds one. */
const eventOn = (line: string): UsageEvent => (decodeEvent(line) as Decoded).event;

/** Short timers so outages, backoffs and replays play out in milliseconds. */
const FAST: Partial<DrainTuning> = {
  syncIntervalMs: 5,
  rotateMs: 50,
  idleMs: 50,
  replayIntervalMs: 20,
  maxBackoffMs: 100,
  idleScanMs: 100,
  replayBatchSize: 7,
  recordWaitMs: 2,
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
  const dir = mkdtempSync(join(tmpdir(), "tollgate-journal-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const journalDir = (dataDir: string) => join(dataDir, "journal");
const journalFiles = (dataDir: string) => readdirSync(journalDir(dataDir)).sort();
const linesIn = (dataDir: string) =>
  journalFiles(dataDir).flatMap((f) => readFileSync(join(journalDir(dataDir), f), "utf8").split("\n").filter(Boolean));

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

/** A recorder on a database that cannot be reached: every write fails as in a real outage. */
async function deadRecorder(writeTimeoutMs = 2000) {
  const dead = await unreachableDatabase();
  return { recorder: new Recorder(dead, builder, { batchSize: 100, maxWaitMs: 1, writeTimeoutMs }), dead };
}

/**
 * Journals events through a drain whose database is unreachable, then closes it: what a stopped
 * gateway leaves. Its replay passes are held off, so segments end by size, idleness or on close.
 */
async function leaveJournaled(dataDir: string, events: UsageEvent[], tuning: Partial<DrainTuning> = {}): Promise<void> {
  const { recorder, dead } = await deadRecorder();
  const held = { idleScanMs: 60_000, replayIntervalMs: 60_000, maxBackoffMs: 60_000, idleMs: 60_000, rotateMs: 60_000 };
  const drain = await JournalDrain.open({ recorder, dataDir, logger: silent, ...FAST, ...held, ...tuning });
  submitAll(drain, events.slice(0, 1));
  await waitFor("the outage noticed", () => drain.status().database === "degraded");
  await submitApart(drain, events.slice(1));
  await drain.close();
  await dead.close();
}

describe("journal lines", () => {
  test("dates are written as toISOString writes them, the second's text reused or not", () => {
    const edges = [0, 1, 9, 10, 99, 100, 999, 1000, -1, -999, -1000, -1001, 253402300799999, 253402300800000, -62198755200001, 1765000000000];
    // Each alone, then runs within one second and across seconds, in and out of order.
    const runs = [...edges, ...Array.from({ length: 3000 }, (_, i) => 1765000000000 + ((i * 7919) % 5000) - 2500)];
    for (const ms of runs) assert.equal(isoText(new Date(ms)), new Date(ms).toISOString(), String(ms));
    assert.equal(isoText(new Date(Number.NaN)), null, "an invalid date as JSON.stringify writes it");
  });

  test("every field round-trips exactly: bigints beyond 2^53, millisecond dates, tags, nulls", () => {
    const full = UsageEvent.parse({
      source: "proxy",
      id: "req_\"quoted\"\\slash",
      ts: new Date("2025-03-04T05:06:07.089Z"),
      provider: "anthropic",
      model: "claude-x",
      tokens: { input: 100_000_000, cached_input: 40, cache_write: 30, cache_write_1h: 10, output: 50, reasoning: 20 },
      service_tier: "priority",
      reported_cost: 987_654_321_012_345_678n,
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
    const estimated = { ...bare, id: "est", estimated: true };
    const unknown = { ...bare, id: "unknown", usage_unknown: true };
    for (const event of [full, bare, negative, estimated, unknown]) {
      const line = encodeEvent(event);
      assert.ok(!line.includes("\n"), "one event is one line");
      const back = decodeEvent(line) as Decoded;
      assert.deepEqual(back, { event, price: undefined }, "a line written before prices were kept has none");
      assert.equal(typeof back.event.reported_cost === "bigint" || back.event.reported_cost === null, true);
      assert.ok(back.event.ts instanceof Date);
    }
    assert.equal(bare.reported_cost, null);
    assert.equal(eventOn(encodeEvent(full)).reported_cost, 987_654_321_012_345_678n);
    // A built event comes back with the price it was built with, to be restored rather than priced again.
    const priced = builder.build(full);
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

describe("journal files", () => {
  test("the events submitted in one turn are written together before any answer waiting on them is sent; recorded segments are deleted", async () => {
    const dataDir = tempDir();
    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const drain = await JournalDrain.open({ recorder, dataDir, logger: silent, ...FAST });
    const events = eventsFor("written", 0, 20);
    const bs = built(events);
    // As each answer would be sent: what a SIGKILL right then would leave behind.
    const atSend: string[][] = [];
    for (let i = 0; i < bs.length; i++) {
      drain.submit(bs[i]!);
      drain.whenJournaled(() => atSend.push(linesIn(dataDir).map((l) => eventOn(l).id)));
    }
    assert.deepEqual(atSend, [], "no answer is sent before its event is written");
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(atSend, events.map(() => events.map((e) => e.id)), "every answer waited for the turn's one write, of every event in order");
    let sent = false;
    drain.whenJournaled(() => (sent = true));
    assert.ok(sent, "with nothing waiting to be written, an answer is sent at once");
    const [segment, ...others] = journalFiles(dataDir);
    assert.deepEqual(others, [], "one segment while the calls come in");
    assert.match(segment!, /^\d{15}-[0-9a-f]{8}\.writing-\d+\.[0-9a-f]{8}@/);
    await waitFor("events stored", async () => (await storedIds(database, "written")).length === 20);
    await waitFor("the recorded segment deleted", () => journalFiles(dataDir).length === 0);
    assert.deepEqual(drain.status(), { unrecorded_events: 0, database: "ok" });
    await drain.close();
    assert.deepEqual(journalFiles(dataDir), []);
  });

  test("events let wait long in the recorder are written at once on close, not when their wait is up", { timeout: HANG_MS }, async () => {
    const dataDir = tempDir();
    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const drain = await JournalDrain.open({ recorder, dataDir, logger: silent, ...FAST, recordWaitMs: 60_000 });
    for (const b of built(eventsFor("patient", 0, 5))) drain.submit(b);
    await new Promise((resolve) => setImmediate(resolve));
    await sleep(50);
    assert.deepEqual(await storedIds(database, "patient"), [], "waiting for company");
    const closing = performance.now();
    await drain.close();
    assert.ok(performance.now() - closing < 10_000, "close did not wait out the minute");
    assert.equal((await storedIds(database, "patient")).length, 5);
    assert.deepEqual(journalFiles(dataDir), [], "recorded, so nothing is left to replay");
  });

  test("a segment an append fills is not decided before that event is accounted for: a failed write leaves every event on disk", async () => {
    const dataDir = tempDir();
    const { recorder, dead } = await deadRecorder();
    // Every append fills its segment; the database fails every write.
    const drain = await JournalDrain.open({ recorder, dataDir, logger: silent, ...FAST, maxSegmentBytes: 1 });
    const events = eventsFor("full", 0, 5);
    await submitApart(drain, events);
    await waitFor("the outage noticed", () => drain.status().database === "degraded");
    await drain.close();
    await dead.close();
    assert.deepEqual(linesIn(dataDir).map((l) => eventOn(l).id).sort(), events.map((e) => e.id));
    assert.equal(journalFiles(dataDir).length, 5);
  });

  test("segments stay bounded under steady traffic: each is deleted once recorded", async () => {
    const dataDir = tempDir();
    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const drain = await JournalDrain.open({ recorder, dataDir, logger: silent, ...FAST, maxSegmentBytes: 4000 });
    const events = eventsFor("bounded", 0, 300);
    let most = 0;
    for (let i = 0; i < events.length; i += 10) {
      submitAll(drain, events.slice(i, i + 10));
      most = Math.max(most, journalFiles(dataDir).length);
      await sleep(5);
    }
    await waitFor("events stored", async () => (await storedIds(database, "bounded")).length === 300);
    await waitFor("every segment deleted", () => journalFiles(dataDir).length === 0);
    assert.ok(most <= 20, `at most ${most} segments at once for ~${Math.ceil((300 * 450) / 4000)} written`);
    await drain.close();
    await assertRollupsMatchEvents(database);
  });
});

describe("JournalDrain", () => {
  test("outage: events wait in the journal while the database is down, replayed once when it is back", { timeout: HANG_MS }, async () => {
    const dataDir = tempDir();
    const before = eventsFor("outage", 0, 30);
    const during = eventsFor("outage", 30, 30);
    const afterwards = eventsFor("outage", 60, 6);
    if (process.env.TEST_DATABASE_URL) {
      // A real Postgres behind a forwarder that drops every connection and refuses new ones.
      const [row] = await database.rows<{ name: string }>(sql`select current_database() as name`);
      const target = new URL(process.env.TEST_DATABASE_URL);
      target.pathname = `/${row!.name}`;
      const cutter = await TcpCutter.start({ host: target.hostname, port: Number(target.port || 5432) });
      const through = await openDatabase({ url: cutter.url(target.toString()), dataDir: "", maxConnections: 2 });
      try {
        const recorder = new Recorder(through, builder, { batchSize: 50, maxWaitMs: 2, writeTimeoutMs: 2000 });
        const drain = await JournalDrain.open({ recorder, dataDir, logger: silent, ...FAST });
        submitAll(drain, before);
        await waitFor("the first events stored", async () => (await storedIds(database, "outage")).length === 30);

        cutter.cut();
        submitAll(drain, during);
        await waitFor("the outage noticed", () => drain.status().database === "degraded");
        assert.ok(drain.status().unrecorded_events >= 30);
        assert.ok(drain.status().oldest instanceof Date);
        const held = linesIn(dataDir).map((l) => eventOn(l).id);
        assert.ok(during.every((e) => held.includes(e.id)), "every event of the outage is in the journal");

        await cutter.restore();
        await waitFor("the journal replayed", () => drain.status().unrecorded_events === 0 && drain.status().database === "ok");
        submitAll(drain, afterwards);
        await waitFor("all events stored", async () => (await storedIds(database, "outage")).length === 66);
        await drain.close();
      } finally {
        await through.close();
        await cutter.close();
      }
      assert.deepEqual(await storedIds(database, "outage"), [...before, ...during, ...afterwards].map((e) => e.id));
      await assertRollupsMatchEvents(database);
    } else {
      // PGlite has no network to cut: its data folder is closed under the drain (a real failure of
      // the real driver), then the gateway restarts on the same folder and replays the journal.
      await seedDataDir(dataDir); // a migrated folder without initdb's cost
      const first = await openDatabase({ dataDir });
      await migrate(first);
      const drain = await JournalDrain.open({ recorder: new Recorder(first, builder, { batchSize: 50, maxWaitMs: 2 }), dataDir, logger: silent, ...FAST });
      submitAll(drain, before);
      await waitFor("the first events stored", async () => (await storedIds(first, "outage")).length === 30);

      await first.close();
      submitAll(drain, during);
      await waitFor("the outage noticed", () => drain.status().database === "degraded");
      await drain.close();
      const held = linesIn(dataDir).map((l) => eventOn(l).id);
      assert.ok(during.every((e) => held.includes(e.id)), "every event of the outage is in the journal");
      assert.ok(journalFiles(dataDir).every((f) => f.endsWith(".ndjson")), "sealed on close");

      const reopened = await openDatabase({ dataDir });
      try {
        const restarted = await JournalDrain.open({ recorder: new Recorder(reopened, builder, { batchSize: 50, maxWaitMs: 2 }), dataDir, logger: silent, ...FAST });
        await waitFor("the journal replayed on start", () => restarted.status().unrecorded_events === 0 && journalFiles(dataDir).length === 0);
        submitAll(restarted, afterwards);
        await waitFor("all events stored", async () => (await storedIds(reopened, "outage")).length === 66);
        await restarted.close();
        assert.deepEqual(await storedIds(reopened, "outage"), [...before, ...during, ...afterwards].map((e) => e.id));
        await assertRollupsMatchEvents(reopened);
      } finally {
        await reopened.close();
      }
    }
    assert.deepEqual(journalFiles(dataDir), []);
  });

  test("in an outage the database is asked again at most 2 s apart by default, however long it lasts: recording resumes that soon after", () => {
    const waits = Array.from({ length: 30 }, (_, n) => outageBackoffMs(n + 1, DEFAULT_DRAIN_TUNING));
    assert.deepEqual(waits.slice(0, 3), [1000, 2000, 2000]);
    assert.equal(Math.max(...waits), 2000);
    // Tuned: doubling from the replay interval up to the cap.
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => outageBackoffMs(n, { replayIntervalMs: 20, maxBackoffMs: 100 })), [20, 40, 80, 100, 100]);
  });

  test("restart: what one drain left, a new one replays on start, batch by batch", async () => {
    const dataDir = tempDir();
    const events = eventsFor("restart", 0, 25);
    await leaveJournaled(dataDir, events);
    assert.ok(journalFiles(dataDir).length > 0 && journalFiles(dataDir).every((f) => f.endsWith(".ndjson")), "sealed files left behind");
    const seen: number[] = [];
    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const counting = { builder, probe: () => recorder.probe(), flush: () => recorder.flush(), record: (batch: readonly LedgerEvent[]) => (seen.push(batch.length), recorder.record(batch)) };
    const drain = await JournalDrain.open({ recorder: counting, dataDir, logger: silent, ...FAST });
    assert.equal(drain.status().unrecorded_events, 25, "the new drain knows what is journaled before replaying");
    await waitFor("replayed", () => drain.status().unrecorded_events === 0);
    assert.deepEqual(journalFiles(dataDir), []);
    assert.deepEqual(drain.status(), { unrecorded_events: 0, database: "ok" });
    await drain.close();
    assert.deepEqual(await storedIds(database, "restart"), events.map((e) => e.id));
    assert.ok(Math.max(...seen) <= 7, "replayed in batches of replayBatchSize");
    assert.equal(seen.reduce((a, b) => a + b, 0), 25);
  });

  test("a spool folder an older gateway left is replayed too", async () => {
    const dataDir = tempDir();
    const events = eventsFor("old-spool", 0, 6);
    await leaveJournaled(dataDir, events);
    renameSync(journalDir(dataDir), join(dataDir, "spool"));
    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const drain = await JournalDrain.open({ recorder, dataDir, logger: silent, ...FAST });
    await waitFor("replayed", async () => (await storedIds(database, "old-spool")).length === 6);
    await drain.close();
    assert.deepEqual(readdirSync(dataDir).filter((f) => f === "spool"), []);
  });

  test("a replay that fails part-way hands the file back whole; replayed later, each event stored once", async () => {
    const dataDir = tempDir();
    const events = eventsFor("partway", 0, 20);
    await leaveJournaled(dataDir, events);
    const [file, ...others] = journalFiles(dataDir);
    assert.deepEqual(others, [], "one file");

    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    let calls = 0;
    // The first batch commits, then the link breaks.
    const breaking = {
      builder,
      probe: async () => calls === 0,
      flush: () => recorder.flush(),
      record: (batch: readonly LedgerEvent[]) =>
        ++calls === 1 ? recorder.record(batch) : Promise.reject(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })),
    };
    const drain = await JournalDrain.open({ recorder: breaking, dataDir, logger: silent, ...FAST });
    await waitFor("the outage noticed", () => drain.status().database === "degraded");
    await drain.close();
    assert.deepEqual(await storedIds(database, "partway"), events.slice(0, 7).map((e) => e.id));
    assert.deepEqual(journalFiles(dataDir), [file], "handed back under its sealed name");
    assert.equal(linesIn(dataDir).length, 20, "whole");

    const again = await JournalDrain.open({ recorder, dataDir, logger: silent, ...FAST });
    await waitFor("replayed", () => again.status().unrecorded_events === 0);
    await again.close();
    assert.deepEqual(journalFiles(dataDir), []);
    assert.deepEqual(await storedIds(database, "partway"), events.map((e) => e.id));
    await assertRollupsMatchEvents(database);
  });

  test("a torn final line is skipped with a warning; the rest is replayed", async () => {
    const dataDir = tempDir();
    const events = eventsFor("torn", 0, 10).map((e) => ({ ...e, team: "secret-team" }));
    await leaveJournaled(dataDir, events);
    const [file, ...others] = journalFiles(dataDir);
    assert.deepEqual(others, [], "one file");
    // A crash mid-append: half an event, no newline.
    appendFileSync(join(journalDir(dataDir), file!), encodeEvent(makeEvent("torn", 99)).slice(0, 50));

    const { logger, lines } = capturingLogger();
    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const drain = await JournalDrain.open({ recorder, dataDir, logger, ...FAST });
    await waitFor("replayed", () => journalFiles(dataDir).length === 0);
    await drain.close();
    assert.deepEqual(await storedIds(database, "torn"), events.map((e) => e.id));
    const warnings = lines.map((l) => JSON.parse(l) as { level: number; msg: string; torn?: boolean }).filter((l) => l.level === 40);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.torn, true);
    assert.match(warnings[0]!.msg, /torn/);
    assert.ok(!lines.join("").includes("secret-team"), "logs carry ids, never event contents");
  });

  test("two drains on one journal folder: each file is claimed and replayed by one of them only", { timeout: HANG_MS }, async () => {
    const dataDir = tempDir();
    const events = eventsFor("shared", 0, 60);
    // Small files, so there are many to share out.
    await leaveJournaled(dataDir, events, { maxSegmentBytes: 1500 });
    const files = journalFiles(dataDir);
    assert.ok(files.length >= 6, `${files.length} files`);

    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const replayedBy = [new Map<string, number>(), new Map<string, number>()];
    const drains = await Promise.all(
      replayedBy.map((seen) => {
        const slow = {
          builder,
          probe: () => recorder.probe(),
          flush: () => recorder.flush(),
          // Slow enough that both drains are replaying at the same time.
          record: async (batch: readonly LedgerEvent[]) => {
            for (const e of batch) seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
            await sleep(15);
            return recorder.record(batch);
          },
        };
        return JournalDrain.open({ recorder: slow, dataDir, logger: silent, ...FAST });
      }),
    );
    await waitFor("replayed", () => journalFiles(dataDir).length === 0);
    await Promise.all(drains.map((s) => s.close()));
    const [a, b] = replayedBy as [Map<string, number>, Map<string, number>];
    assert.ok(a.size > 0 && b.size > 0, `both took part (${a.size} and ${b.size} events)`);
    assert.deepEqual([...a.keys()].filter((id) => b.has(id)), [], "no event replayed by both");
    assert.ok([...a.values(), ...b.values()].every((n) => n === 1), "no event replayed twice");
    assert.deepEqual([...a.keys(), ...b.keys()].sort(), events.map((e) => e.id));
    assert.deepEqual(await storedIds(database, "shared"), events.map((e) => e.id));
  });

  test("two live drains appending to one folder: neither takes the other's open segment", async () => {
    const dataDir = tempDir();
    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const held = { rotateMs: 60_000, idleMs: 60_000 };
    const [one, two] = await Promise.all([0, 1].map(() => JournalDrain.open({ recorder, dataDir, logger: silent, ...FAST, ...held })));
    const events = eventsFor("two-live", 0, 40);
    for (let i = 0; i < 40; i++) (i % 2 === 0 ? one! : two!).submit(built([events[i]!])[0]!);
    await waitFor("events stored", async () => (await storedIds(database, "two-live")).length === 40);
    await sleep(100); // several replay passes: each must leave the other's writing segment alone
    assert.equal(journalFiles(dataDir).filter((f) => f.includes(".writing-")).length, 2, "both segments still open, each by its owner");
    await Promise.all([one!.close(), two!.close()]);
    assert.deepEqual(journalFiles(dataDir), []);
  });

  test("claims and open files of a gone owner are taken over; a live owner's claim is left alone", { timeout: HANG_MS }, async () => {
    const dataDir = tempDir();
    const events = eventsFor("stale", 0, 40);
    await leaveJournaled(dataDir, events, { maxSegmentBytes: 1500 });
    const files = journalFiles(dataDir);
    assert.ok(files.length >= 4);
    const child = spawn(process.execPath, ["-e", ""]);
    await once(child, "exit");
    const deadPid = child.pid!;
    const host = hostname().replace(/[^A-Za-z0-9.-]/g, "_");
    const owned = (name: string, state: string, pid: number, instance: string) => {
      const to = name.replace(/\.ndjson$/, `.${state}-${pid}.${instance}@${host}`);
      renameSync(join(journalDir(dataDir), name), join(journalDir(dataDir), to));
      return to;
    };
    owned(files[0]!, "replaying", deadPid, "0badc0de"); // its process died mid-replay
    owned(files[1]!, "writing", deadPid, "0badc0de"); // its process died mid-append (a SIGKILL)
    owned(files[2]!, "replaying", process.pid, "0badc0de"); // a restart that got the same pid back
    const live = owned(files[3]!, "replaying", process.ppid, "1eaf1eaf"); // another gateway, still replaying
    const liveIds = readFileSync(join(journalDir(dataDir), live), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => eventOn(l).id);

    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const drain = await JournalDrain.open({ recorder, dataDir, logger: silent, ...FAST });
    await waitFor("the rest replayed", () => journalFiles(dataDir).length === 1);
    await sleep(150); // a few more passes: the live claim must still be left alone
    assert.deepEqual(journalFiles(dataDir), [live]);
    assert.equal(drain.status().unrecorded_events, liveIds.length);
    await drain.close();
    const stored = await storedIds(database, "stale");
    assert.deepEqual(stored, events.map((e) => e.id).filter((id) => !liveIds.includes(id)));
  });

  test("a schema this build does not know (a table gone, as after a newer build's migration) is an outage, not bad events: they wait in the journal", { timeout: HANG_MS }, async () => {
    const dataDir = tempDir();
    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const drain = await JournalDrain.open({ recorder, dataDir, logger: silent, ...FAST });
    const events = eventsFor("schema", 0, 6);
    await database.rows(sql`alter table usage_rollup_queue rename to usage_rollup_queue_moved`);
    try {
      submitAll(drain, events);
      await waitFor("the ledger counted degraded", () => drain.status().database === "degraded");
      await sleep(300);
      assert.equal(existsSync(join(dataDir, "journal-rejected.ndjson")), false, "nothing kept aside as unstorable");
      assert.equal(drain.status().unrecorded_events, 6);
    } finally {
      await database.rows(sql`alter table usage_rollup_queue_moved rename to usage_rollup_queue`);
    }
    await waitFor("recorded once the schema is back", async () => (await storedIds(database, "schema")).length === 6);
    await drain.close();
    assert.deepEqual(journalFiles(dataDir), []);
    await assertRollupsMatchEvents(database);
  });

  test("events that cannot be stored are kept aside, alone; the others land and the database stays ok", async () => {
    const dataDir = tempDir();
    const { logger, lines } = capturingLogger();
    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const drain = await JournalDrain.open({ recorder, dataDir, logger, ...FAST });
    const good = eventsFor("refused", 0, 8);
    // Foreseen by the builder, and refused by the database alone (a constraint).
    const yearZero = makeEvent("refused", 100, { ts: new Date("0000-06-01T00:00:00Z") });
    const nulTag = makeEvent("refused", 101, { tags: { secret: "a\u0000b" } });
    const boom = makeEvent("refused", 102, { team: "boom" });
    await database.rows(sql`alter table usage_events add constraint test_no_boom check (team <> 'boom')`);
    try {
      submitAll(drain, [good[0]!, yearZero, good[1]!, good[2]!, nulTag, good[3]!]);
      submitAll(drain, [good[4]!, boom, good[5]!]);
      submitAll(drain, good.slice(6));
      await waitFor("good events stored", async () => (await storedIds(database, "refused")).length === 8);
      await waitFor("the refused one kept aside", () => existsSync(join(dataDir, "journal-rejected.ndjson")) && readFileSync(join(dataDir, "journal-rejected.ndjson"), "utf8").includes(boom.id));
      await drain.close();
    } finally {
      await database.rows(sql`alter table usage_events drop constraint test_no_boom`);
    }
    assert.deepEqual(await storedIds(database, "refused"), good.map((e) => e.id));
    assert.equal(drain.status().database, "ok");
    assert.deepEqual(journalFiles(dataDir), []);
    const kept = readFileSync(join(dataDir, "journal-rejected.ndjson"), "utf8").split("\n").filter(Boolean);
    assert.deepEqual(kept.map((l) => eventOn(l).id).sort(), [yearZero.id, nulTag.id, boom.id]);
    for (const e of [yearZero, nulTag, boom]) assert.ok(lines.some((l) => l.includes(`refused/${e.id}`)), `${e.id} is logged`);
    const logged = lines.join("");
    assert.ok(!logged.includes("a\\u0000b") && !logged.includes("0000-06-01") && !logged.includes("boom"), "but not their contents");
    await assertRollupsMatchEvents(database);
  });

  test("a database that refuses writes for its own state (out of disk, read-only) is an outage: nothing is kept aside, and the events are recorded once it takes writes", { timeout: HANG_MS }, async () => {
    const dataDir = tempDir();
    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const drain = await JournalDrain.open({ recorder, dataDir, logger: silent, ...FAST });
    const events = eventsFor("full", 0, 6);
    await database.rows(sql.raw(`create function test_disk_full() returns trigger language plpgsql as $$ begin raise exception 'could not extend file' using errcode = '53100'; end $$`));
    await database.rows(sql.raw(`create trigger test_disk_full before insert on usage_events for each statement execute function test_disk_full()`));
    try {
      submitAll(drain, events.slice(0, 3));
      await waitFor("the ledger counted degraded", () => drain.status().database === "degraded");
      submitAll(drain, events.slice(3));
      await sleep(300);
      assert.equal(existsSync(join(dataDir, "journal-rejected.ndjson")), false, "nothing kept aside as unstorable");
      assert.equal(drain.status().unrecorded_events, 6);
    } finally {
      await database.rows(sql.raw(`drop trigger test_disk_full on usage_events`));
      await database.rows(sql.raw(`drop function test_disk_full()`));
    }
    await waitFor("recorded once the database takes writes", async () => (await storedIds(database, "full")).length === 6);
    await drain.close();
    assert.deepEqual(journalFiles(dataDir), []);
    assert.equal(existsSync(join(dataDir, "journal-rejected.ndjson")), false);
  });

  test("an event that cannot be stored stays in the journal while journal-rejected.ndjson cannot take it; kept aside once it can", { timeout: HANG_MS }, async () => {
    const dataDir = tempDir();
    const recorder = new Recorder(database, builder, { batchSize: 50, maxWaitMs: 2 });
    const drain = await JournalDrain.open({ recorder, dataDir, logger: silent, ...FAST });
    const good = eventsFor("unkept", 0, 3);
    const boom = makeEvent("unkept", 100, { team: "boom" });
    // A folder where the file should be: every write to it fails, as on a full or read-only disk.
    const rejected = join(dataDir, "journal-rejected.ndjson");
    mkdirSync(rejected);
    await database.rows(sql`alter table usage_events add constraint test_no_boom check (team <> 'boom')`);
    try {
      submitAll(drain, [good[0]!, boom, ...good.slice(1)]);
      await waitFor("the good events stored", async () => (await storedIds(database, "unkept")).length === 3);
      await sleep(300);
      assert.ok(linesIn(dataDir).some((l) => eventOn(l).id === boom.id), "the refused event is still in the journal");
      rmSync(rejected, { recursive: true });
      await waitFor("the refused event kept aside", () => existsSync(rejected) && readFileSync(rejected, "utf8").includes(boom.id));
      await waitFor("the journal emptied", () => journalFiles(dataDir).length === 0);
      await drain.close();
    } finally {
      await database.rows(sql`alter table usage_events drop constraint test_no_boom`);
    }
    assert.deepEqual(await storedIds(database, "unkept"), good.map((e) => e.id));
    assert.deepEqual(readFileSync(rejected, "utf8").split("\n").filter(Boolean).map((l) => eventOn(l).id), [boom.id]);
  });

  test("submit never waits: a database that does not answer leaves the events in the journal after the write timeout", async () => {
    const dataDir = tempDir();
    // A database that never answers: not a refusal, the hang of a stopped or partitioned server.
    const hung = { ...database, rows: () => new Promise<never>(() => {}), prepared: () => new Promise<never>(() => {}) };
    const recorder = new Recorder(hung, builder, { batchSize: 50, maxWaitMs: 2, writeTimeoutMs: 100 });
    const drain = await JournalDrain.open({ recorder, dataDir, logger: silent, ...FAST });
    // The events are in the journal by the end of the turn they were submitted in, whatever the database does.
    submitAll(drain, eventsFor("hang", 0, 5));
    await journaled(drain);
    assert.equal(linesIn(dataDir).length, 5);
    assert.equal(drain.status().database, "ok");
    await waitFor("the hang noticed", () => drain.status().database === "degraded");
    assert.equal(drain.status().unrecorded_events, 5);
    // While it hangs, the recorder fails at once rather than queue behind it.
    const refused = recorder.record(built(eventsFor("hang", 10, 1)).map((b) => (b as { event: LedgerEvent }).event));
    const settled = refused.then(() => "recorded", () => "refused");
    // Refused before the next turn of the event loop: nothing waits on the hung database.
    assert.equal(await Promise.race([settled, new Promise((resolve) => setImmediate(() => resolve("pending")))]), "refused");
    await assert.rejects(refused, /did not answer within 100 ms/);
    submitAll(drain, eventsFor("hang", 5, 5));
    await journaled(drain);
    assert.equal(drain.status().unrecorded_events, 10);
    await drain.close();
    assert.equal(linesIn(dataDir).length, 10);
    assert.ok(journalFiles(dataDir).every((f) => f.endsWith(".ndjson")), "sealed for the next start");
  });
});
