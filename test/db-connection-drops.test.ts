import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { withAdvisoryLock } from "../src/db/advisory-lock.ts";
import { type Database, openDatabase } from "../src/db/connection.ts";
import { MAX_RECONNECT_DELAY_SECONDS, reconnectDelaySeconds } from "../src/db/reconnect.ts";
import { isDroppedTypeFetch, passTypeFetchDrops } from "../src/db/type-fetch-drops.ts";
import { within } from "../src/deadline.ts";
import { TcpCutter } from "./fakes/tcp-cutter.ts";
import { NEEDS_POSTGRES_TO_CUT, databasesToCut } from "./helpers/db-outage.ts";

/*
 * The product's own Postgres client (src/db, postgres.js under drizzle) while its connections are
 * cut under it, on a real Postgres reached through a TcpCutter. postgres.js 3.4 ends the process
 * from inside itself in two ways when a connection drops at the wrong moment: a COMMIT or ROLLBACK
 * written to a connection that has closed (a TypeError thrown from a setImmediate), and a rejection
 * nothing handles when a connection drops while it fetches the array types it asks for on opening.
 * Either kills a gateway, so each test counts what reaches the process's last handlers.
 */

const dbs = databasesToCut(4);

/**
 * What would end a gateway's process while `run` runs, and a turn of the event loop after: uncaught
 * exceptions, and unhandled rejections but the one the product lets pass (its listener rethrows the
 * others, as uncaught exceptions). The test runner's own listener for unhandled rejections is set
 * aside meanwhile: a gateway's process does not have it.
 */
async function escapes(run: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const note = (err: unknown) => void seen.push(err);
  const runners = process.listeners("unhandledRejection").filter((l) => l !== passTypeFetchDrops);
  for (const l of runners) process.off("unhandledRejection", l);
  process.on("uncaughtException", note);
  try {
    await run();
    // What postgres.js defers to a setImmediate (its writes) has run by the next timer.
    await sleep(20);
  } finally {
    process.off("uncaughtException", note);
    for (const l of runners) process.on("unhandledRejection", l);
  }
  return seen;
}

const stack = (errors: unknown[]) => errors.map((e) => (e instanceof Error ? e.stack : String(e))).join("\n");

/** A query answered within 30 s of the network coming back (an attempt under way at the restore may still fail). */
async function answersAgain(database: Database): Promise<void> {
  const answered = async (): Promise<number | undefined> => {
    for (;;) {
      const rows = await database.rows<{ one: number }>(sql`select 1 as one`).catch(() => undefined);
      if (rows) return rows[0]?.one;
      await sleep(100);
    }
  };
  assert.equal(await within(answered(), 30_000), 1, "the pool answers once the network is back");
}

test("a transaction that outlives its connection (the advisory lock's, while its work runs) fails; the process lives on", { skip: NEEDS_POSTGRES_TO_CUT, timeout: 60_000 }, async () => {
  const errors = await escapes(async () => {
    const run = withAdvisoryLock(dbs.cuttable.database, "connection-drops", async () => {
      dbs.cuttable.cutter.cut();
      // The lock's connection hears of the cut before the work ends: its COMMIT is not written.
      await sleep(100);
      return "done";
    });
    await assert.rejects(run, /CONNECTION_CLOSED|ECONNRESET|write after end/);
    await dbs.cuttable.cutter.restore();
    await answersAgain(dbs.cuttable.database);
  });
  assert.equal(errors.length, 0, stack(errors));
});

test("a transaction whose query fails with its connection rejects with it; the process lives on", { skip: NEEDS_POSTGRES_TO_CUT, timeout: 60_000 }, async () => {
  const errors = await escapes(async () => {
    let started!: () => void;
    const inFlight = new Promise<void>((resolve) => (started = resolve));
    const run = dbs.cuttable.database.db.transaction(async (tx) => {
      await tx.execute(sql`select 1`);
      const sleeping = tx.execute(sql`select pg_sleep(5)`);
      started();
      await sleeping;
    });
    await inFlight;
    await sleep(50);
    dbs.cuttable.cutter.cut();
    await assert.rejects(run);
    await dbs.cuttable.cutter.restore();
    await answersAgain(dbs.cuttable.database);
  });
  assert.equal(errors.length, 0, stack(errors));
});

test("transactions and queries under load while the network is cut again and again, also as connections open: nothing escapes, all end, the pool recovers", { skip: NEEDS_POSTGRES_TO_CUT, timeout: 120_000 }, async () => {
  const errors = await escapes(async () => {
    let stop = false;
    let committed = 0;
    const pause = () => sleep(2);
    const worker = async (i: number) => {
      while (!stop) {
        try {
          if (i % 3 === 0) await dbs.cuttable.database.rows(sql`select pg_sleep(0.001)`);
          else if (i % 3 === 1) await withAdvisoryLock(dbs.cuttable.database, `drops-${i}`, pause);
          else
            await dbs.cuttable.database.db.transaction(async (tx) => {
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
      dbs.cuttable.cutter.cut();
      await sleep(50);
      await dbs.cuttable.cutter.restore();
    }
    await sleep(300);
    stop = true;
    assert.equal(await within(Promise.all(workers).then(() => "ended"), 60_000), "ended", "every worker's last call ended");
    assert.ok(committed > 0, "work got done between the cuts");
    await answersAgain(dbs.cuttable.database);
  });
  assert.equal(errors.length, 0, stack(errors));
});

test("connections that dropped with a write pending open again at the next attempt, not after connect_timeout", { skip: NEEDS_POSTGRES_TO_CUT, timeout: 120_000 }, async () => {
  const [row] = await dbs.direct.rows<{ name: string }>(sql`select current_database() as name`);
  const target = new URL(process.env.TEST_DATABASE_URL!);
  target.pathname = `/${row!.name}`;
  const cutter = await TcpCutter.start({ host: target.hostname, port: Number(target.port || 5432) });
  // A connect_timeout far past the bound below: a connection stuck until it is fails the test.
  const database = await openDatabase({ url: cutter.url(target.toString()), dataDir: "", maxConnections: 4, connectTimeoutMs: 120_000 });
  const errors = await escapes(async () => {
    let stop = false;
    try {
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
      // Twice as many queries as connections, each holding a connection for a while: every connection
      // must open. One that fails at once (an attempt under way at the restore) is sent again; one
      // held by a connection that never opens waits out the 120 s connect_timeout.
      const answer = async (): Promise<number | undefined> => {
        while (!stop) {
          const rows = await database.rows<{ one: number }>(sql`select 1 as one, pg_sleep(0.1)`).catch(() => undefined);
          if (rows) return rows[0]?.one;
          await sleep(100);
        }
      };
      stop = false;
      const answers = await within(Promise.all(Array.from({ length: 8 }, answer)), 30_000);
      assert.deepEqual(answers, Array(8).fill(1), "every query answered within 30 s of the network coming back");
    } finally {
      stop = true;
      await database.close();
      await cutter.close();
    }
  });
  assert.equal(errors.length, 0, stack(errors));
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

/** postgres.js's own array-type query (connection.js, fetchArrayTypes), as it sends it. */
const TYPE_QUERY = `
      select b.oid, b.typarray
      from pg_catalog.pg_type a
      left join pg_catalog.pg_type b on b.oid = a.typelem
      where a.typcategory = 'A'
      group by b.oid, b.typarray
      order by b.oid
    `;

test("the array-type query failing with its dropped connection is told from Postgres refusing it and from anything else", { skip: NEEDS_POSTGRES_TO_CUT, timeout: 60_000 }, async () => {
  // The driver's own query text, held up by the server so the cut comes while it runs.
  const slow = TYPE_QUERY.replace("where a.typcategory = 'A'", "where a.typcategory = 'A' and pg_sleep(5) is not null");
  let dropped: unknown;
  const errors = await escapes(async () => {
    const running = dbs.cuttable.database.rows(sql.raw(slow));
    await sleep(200);
    dbs.cuttable.cutter.cut();
    dropped = await running.then(() => undefined, (err: unknown) => err);
    await dbs.cuttable.cutter.restore();
    await answersAgain(dbs.cuttable.database);
  });
  assert.equal(errors.length, 0, stack(errors));
  // drizzle wraps the driver's error; postgres.js's own rejection is the driver's error itself.
  const driverError = (dropped as { cause?: unknown }).cause ?? dropped;
  assert.ok(isDroppedTypeFetch(driverError), `a dropped connection's error: ${String(driverError)}`);
  const refused = await dbs.cuttable.database.rows(sql.raw(TYPE_QUERY.replace("order by b.oid", "order by no_such_column"))).then(() => undefined, (err: unknown) => (err as { cause?: unknown }).cause ?? err);
  assert.ok(refused instanceof Error);
  assert.equal(isDroppedTypeFetch(refused), false, "Postgres answered: not a drop");
  assert.equal(isDroppedTypeFetch(new Error("connect ECONNREFUSED")), false);
});

test("in a process with a database open, that rejection passes with a warning; any other unhandled rejection still ends the process", () => {
  const run = (rejection: string) =>
    spawnSync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", `
        const { letTypeFetchDropsPass } = await import(${JSON.stringify(new URL("../src/db/type-fetch-drops.ts", import.meta.url).href)});
        letTypeFetchDropsPass();
        ${rejection}
        setTimeout(() => console.log("alive"), 100);`],
      { encoding: "utf8", timeout: 30_000 },
    );
  const passed = run(`Promise.reject(Object.assign(new Error("write CONNECTION_CLOSED"), { code: "CONNECTION_CLOSED", query: ${JSON.stringify(TYPE_QUERY)} }));`);
  assert.equal(passed.status, 0, passed.stderr);
  assert.match(passed.stdout, /alive/);
  assert.match(passed.stderr, /TOLLGATE_PG_TYPE_FETCH_DROPPED/);
  const other = run(`Promise.reject(new Error("something else"));`);
  assert.notEqual(other.status, 0);
  assert.doesNotMatch(other.stdout, /alive/);
  assert.match(other.stderr, /something else/);
  const refusedByPostgres = run(`Promise.reject(Object.assign(new Error("column does not exist"), { severity: "ERROR", code: "42703", query: ${JSON.stringify(TYPE_QUERY)} }));`);
  assert.notEqual(refusedByPostgres.status, 0);
});
