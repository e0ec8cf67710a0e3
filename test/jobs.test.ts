import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Database } from "../src/db/connection.ts";
import { type Job, Scheduler } from "../src/jobs/scheduler.ts";
import { createLogger } from "../src/logger.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { secondConnection } from "./helpers/second-connection.ts";
import { waitFor } from "./helpers/wait.ts";

const logger = createLogger("silent");

/** A promise and the function that settles it, so a job can be held mid-run. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe("scheduler", () => {
  // Two gateway processes: on Postgres two pools (separate sessions), on PGlite the one handle.
  let first: Database;
  let second: Database;
  before(async () => {
    first = await openTestDatabase();
    second = await secondConnection(first);
  });
  after(async () => {
    await second.close();
    await first.close();
  });

  test("a job started by two schedulers at once runs once; the other is told it is busy", async () => {
    const held = gate();
    const started = gate();
    let runs = 0;
    const job: Job = {
      name: "evaluate",
      cron: "0 * * * *",
      async run() {
        runs++;
        started.open();
        await held.promise;
      },
    };
    const a = new Scheduler(first, [job], logger);
    const b = new Scheduler(second, [job], logger);
    const running = a.runNow("evaluate");
    await started.promise;
    assert.equal(await b.runNow("evaluate"), "busy");
    assert.equal(await a.runNow("evaluate"), "busy", "not twice in one process either");
    held.open();
    assert.equal(await running, "ran");
    assert.equal(runs, 1);
    assert.equal(await b.runNow("evaluate"), "ran", "the lock is free once the run is over");
    assert.equal(runs, 2);
  });

  test("jobs are locked by name: different jobs run side by side", async () => {
    const held = gate();
    const both = gate();
    let running = 0;
    const job = (name: string): Job => ({
      name,
      cron: "0 * * * *",
      async run() {
        if (++running === 2) both.open();
        await held.promise;
      },
    });
    const a = new Scheduler(first, [job("digests")], logger);
    const b = new Scheduler(second, [job("retention")], logger);
    const runs = [a.runNow("digests"), b.runNow("retention")];
    await both.promise;
    held.open();
    assert.deepEqual(await Promise.all(runs), ["ran", "ran"]);
  });

  test("a failing run is reported and releases its lock", async () => {
    let fail = true;
    const job: Job = {
      name: "flaky",
      cron: "0 * * * *",
      async run() {
        if (fail) throw new Error("boom");
      },
    };
    const a = new Scheduler(first, [job], logger);
    assert.equal(await a.runNow("flaky"), "failed");
    fail = false;
    assert.equal(await new Scheduler(second, [job], logger).runNow("flaky"), "ran");
  });

  test("on schedule, each tick runs once across two schedulers", async () => {
    const ticks: string[] = [];
    const job: Job = {
      name: "every-second",
      cron: "* * * * * *",
      async run(now) {
        ticks.push(now.toISOString());
      },
    };
    const a = new Scheduler(first, [job], logger);
    const b = new Scheduler(second, [job], logger);
    a.start();
    b.start();
    try {
      await waitFor("three ticks", () => ticks.length >= 3);
    } finally {
      await a.stop();
      await b.stop();
    }
    assert.equal(new Set(ticks).size, ticks.length, `no tick ran twice: ${ticks.join(", ")}`);
    assert.ok(ticks.every((t) => t.endsWith(".000Z")), "runs are given their scheduled time");
  });

  test("a tick runs once however late another process's clock fires it; a later tick runs", async () => {
    const ran: string[] = [];
    const job: Job = {
      name: "digest-late-clock",
      cron: "0 9 * * *",
      async run(now) {
        ran.push(now.toISOString());
      },
    };
    const tick = new Date("2026-11-23T09:00:00.000Z");
    const a = new Scheduler(first, [job], logger);
    const late = new Scheduler(second, [job], logger);
    assert.equal(await a.runNow(job.name, tick), "ran");
    // Long after the first run let go of the lock: the same tick, and an older one, are taken.
    assert.equal(await late.runNow(job.name, new Date(tick)), "busy");
    assert.equal(await late.runNow(job.name, new Date(tick.getTime() - 86_400_000)), "busy");
    assert.equal(await late.runNow(job.name, new Date(tick.getTime() + 86_400_000)), "ran");
    assert.deepEqual(ran, ["2026-11-23T09:00:00.000Z", "2026-11-24T09:00:00.000Z"]);
  });

  test("a bad schedule or a repeated name stops start-up with the job's name", () => {
    const run = async () => {};
    assert.throws(() => new Scheduler(first, [{ name: "digests", cron: "every monday", run }], logger), /job digests: "every monday" is not a cron expression/);
    assert.throws(() => new Scheduler(first, [{ name: "x", cron: "* * * * *", run }, { name: "x", cron: "0 9 * * *", run }], logger), /two jobs are named x/);
    assert.throws(() => new Scheduler(first, [], logger).runNow("nope"), /no job named nope/);
  });
});
