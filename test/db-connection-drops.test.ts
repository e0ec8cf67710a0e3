import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { withAdvisoryLock } from "../src/db/advisory-lock.ts";
import { type Database, openDatabase } from "../src/db/connection.ts";
import { MAX_RECONNECT_DELAY_SECONDS, reconnectDelaySeconds } from "../src/db/reconnect.ts";
import { within } from "../src/deadline.ts";
import { TcpCutter } from "./fakes/tcp-cutter.ts";
import { type CuttableDatabase, throughCutter } from "./helpers/db-outage.ts";
import { openTestDatabase } from "./helpers/db.ts";

/*
 * The product's own Postgres client (src/db, postgres.js under drizzle) while its connections are
 * cut under it, on a real Postgres reached through a TcpCutter. postgres.js 3.4 ends the process
 * from inside itself in two ways when a connection drops at the wrong moment: a COMMIT or ROLLBACK
 * written to a connection that has closed (a TypeError thrown from a setImmediate), and a rejection
 * nothing handles when a connection drops while it fetches the array types it asks for on opening.
 * Either kills a gateway, so each test counts what reaches the process's last handlers.
 */

const needsPostgres = process.env.TEST_DATABASE_URL ? false : "needs TEST_DATABASE_URL: PGlite has no network to cut";

let direct: Database;
let cuttable: CuttableDatabase;
before(async () => {
  if (needsPostgres) return;
  direct = await openTestDatabase();
  cuttable = await throughCutter(direct, 4);
});
after(async () => {
  await cuttable?.close();
  await direct?.close();
});

/** Uncaught exceptions and unhandled rejections while `run` runs, and a turn of the event loop after. */
async function escapes(run: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const note = (err: unknown) => void seen.push(err);
  process.on("uncaughtException", note);
  process.on("unhandledRejection", note);
  try {
    await run();
    // What postgres.js defers to a setImmediate (its writes) has run by the next timer.
    await sleep(20);
  } finally {
    process.off("uncaughtException", note);
    process.off("unhandledRejection", note);
  }
  return seen;
}

const stack = (errors: unknown[]) => errors.map((e) => (e instanceof Error ? e.stack : String(e))).join("\n");

async function answersAgain(database: Database): Promise<void> {
  const rows = await within(database.rows<{ one: number }>(sql`select 1 as one`), 30_000);
  assert.equal(rows?.[0]?.one, 1, "the pool answers once the network is back");
}

test("a transaction that outlives its connection (the advisory lock's, while its work runs) fails; the process lives on", { skip: needsPostgres, timeout: 60_000 }, async () => {
  const errors = await escapes(async () => {
    const run = withAdvisoryLock(cuttable.database, "connection-drops", async () => {
      cuttable.cutter.cut();
      // The lock's connection hears of the cut before the work ends: its COMMIT is not written.
      await sleep(100);
      return "done";
    });
    await assert.rejects(run, /CONNECTION_CLOSED|ECONNRESET|write after end/);
    await cuttable.cutter.restore();
    await answersAgain(cuttable.database);
  });
  assert.equal(errors.length, 0, stack(errors));
});

test("a transaction whose query fails with its connection rejects with it; the process lives on", { skip: needsPostgres, timeout: 60_000 }, async () => {
  const errors = await escapes(async () => {
    let started!: () => void;
    const inFlight = new Promise<void>((resolve) => (started = resolve));
    const run = cuttable.database.db.transaction(async (tx) => {
      await tx.execute(sql`select 1`);
      const sleeping = tx.execute(sql`select pg_sleep(5)`);
      started();
      await sleeping;
    });
    await inFlight;
    await sleep(50);
    cuttable.cutter.cut();
    await assert.rejects(run);
    await cuttable.cutter.restore();
    await answersAgain(cuttable.database);
  });
  assert.equal(errors.length, 0, stack(errors));
});

test("transactions and queries under load while the network is cut again and again, also as connections open: nothing escapes, all end, the pool recovers", { skip: needsPostgres, timeout: 120_000 }, async () => {
  const errors = await escapes(async () => {
    let stop = false;
    let committed = 0;
    const pause = () => sleep(2);
    const worker = async (i: number) => {
      while (!stop) {
        try {
          if (i % 3 === 0) await cuttable.database.rows(sql`select pg_sleep(0.001)`);
          else if (i % 3 === 1) await withAdvisoryLock(cuttable.database, `drops-${i}`, pause);
          else
            await cuttable.database.db.transaction(async (tx) => {
              await tx.execute(sql`select 1`);
              await tx.transaction(async (inner) => void (await inner.execute(sql`select pg_sleep(0.001)`)));
            });
          committed++;
        } catch {
          await pause();
        }
      }
    };
    const workers = Array.from({ length: 12 }, (_, i) => worker(i));
    for (let round = 0; round < 8; round++) {
      // Every other round the cut comes soon after the network is back, while connections open.
      await sleep(round % 2 === 0 ? 150 : 5);
      cuttable.cutter.cut();
      await sleep(50);
      await cuttable.cutter.restore();
    }
    await sleep(300);
    stop = true;
    assert.equal(await within(Promise.all(workers).then(() => "ended"), 60_000), "ended", "every worker's last call ended");
    assert.ok(committed > 0, "work got done between the cuts");
    await answersAgain(cuttable.database);
  });
  assert.equal(errors.length, 0, stack(errors));
});

test("connections that dropped with a write pending open again at the next attempt, not after connect_timeout", { skip: needsPostgres, timeout: 120_000 }, async () => {
  const [row] = await direct.rows<{ name: string }>(sql`select current_database() as name`);
  const target = new URL(process.env.TEST_DATABASE_URL!);
  target.pathname = `/${row!.name}`;
  const cutter = await TcpCutter.start({ host: target.hostname, port: Number(target.port || 5432) });
  // A connect_timeout far past the bound below: a connection stuck until it is fails the test.
  const database = await openDatabase({ url: cutter.url(target.toString()), dataDir: "", maxConnections: 4, connectTimeoutMs: 120_000 });
  try {
    let stop = false;
    let cut = false;
    // Failed queries are sent again at once, from the turn in which the first connection hears of
    // the cut: they are written to connections whose close comes later in the same turn.
    const worker = async () => {
      while (!stop) {
        try {
          await database.rows(sql`select 1`);
        } catch {
          if (cut) await sleep(1);
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    await sleep(300);
    cutter.cut();
    await sleep(0);
    cut = true;
    await sleep(200);
    stop = true;
    await Promise.all(workers);
    await cutter.restore();
    // Twice as many queries as connections, each needing a connection of its own for a while: every connection must open.
    const answers = await within(Promise.all(Array.from({ length: 8 }, () => database.rows<{ one: number }>(sql`select 1 as one, pg_sleep(0.1)`))), 30_000);
    assert.ok(answers, "every query answered within 30 s of the network coming back");
    assert.ok(answers.every((rows) => rows[0]?.one === 1));
  } finally {
    await database.close();
    await cutter.close();
  }
});

test("a pool connection tries Postgres again within a second, however many attempts failed before", () => {
  // postgres.js's own schedule waited 3^n / 100 s up to 20 s: after a dozen refusals, 10-20 s.
  const worst = Array.from({ length: 40 }, (_, retries) => reconnectDelaySeconds(retries, 1));
  const least = Array.from({ length: 40 }, (_, retries) => reconnectDelaySeconds(retries, 0));
  assert.equal(Math.max(...worst), MAX_RECONNECT_DELAY_SECONDS);
  assert.ok(MAX_RECONNECT_DELAY_SECONDS <= 1);
  assert.deepEqual(worst.slice(0, 6), [0.05, 0.1, 0.2, 0.4, 0.8, 1]);
  assert.ok(least.every((s, n) => s === worst[n]! / 2), "at random down to half, so workers do not knock in step");
});
