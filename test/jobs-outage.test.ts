import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import type { Database } from "../src/db/connection.ts";
import { within } from "../src/deadline.ts";
import { type Job, Scheduler } from "../src/jobs/scheduler.ts";
import { createLogger } from "../src/logger.ts";
import { NEEDS_POSTGRES_TO_CUT, databasesToCut } from "./helpers/db-outage.ts";

/*
 * Scheduled jobs across a database outage, on a real Postgres reached through a TcpCutter. A job
 * whose run never ends is a job that never runs again (node-cron skips the ticks of a task still
 * running) and a gateway whose shutdown never ends.
 */

// Two connections: one for the run's lock, one for its work.
const dbs = databasesToCut(2);

test(
  "a job run asked for while the database is away ends, and the job runs again, however the pool's connections came back",
  { skip: NEEDS_POSTGRES_TO_CUT, timeout: 120_000 },
  async () => {
    let runs = 0;
    const job: Job = { name: "outage-job", cron: "0 * * * *", run: async () => void runs++ };
    const scheduler = new Scheduler(dbs.cuttable.database, [job], createLogger("silent"));
    const query = () => dbs.cuttable.database.rows(sql`select 1`);
    await Promise.all([query(), query()]);

    dbs.cuttable.cutter.cut();
    // Each refused reconnect lengthens the driver's wait before the next (src/db/reconnect.ts:
    // doubling from 50 ms, up to halved at random, at most 1 s): after these four the next attempt
    // waits 0.4 s or more, far longer than the 50 ms the run takes to queue below.
    for (let i = 0; i < 4; i++) await assert.rejects(query());
    // Both connections start their next attempt for a query each; the run, asking for a
    // connection meanwhile, waits in the pool's queue and is handed to the attempt after the first
    // of these fails.
    const failing = [assert.rejects(query()), assert.rejects(query())];
    await sleep(50);
    const run = scheduler.runNow("outage-job", new Date());
    await Promise.all(failing);
    // The network is back before that attempt: its connection opens, and the run must hear of it.
    await dbs.cuttable.cutter.restore();

    const result = await within(run, 30_000);
    assert.ok(result === "ran" || result === "failed", `the run ended instead of waiting forever (${result})`);
    assert.equal(runs, result === "ran" ? 1 : 0);
    assert.equal(await within(scheduler.runNow("outage-job", new Date(Date.now() + 1000)), 30_000), "ran", "the next tick runs");
    assert.equal(runs, result === "ran" ? 2 : 1);
    // Stopping waits for runs under way: none is left hanging.
    assert.equal(await within(scheduler.stop().then(() => "stopped"), 10_000), "stopped");
  },
);
