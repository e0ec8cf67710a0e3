import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TcpCutter } from "./fakes/tcp-cutter.ts";
import type { FakeUpstream } from "./fakes/fake-upstream.ts";
import { startFakeOpenAI } from "./fakes/openai.ts";
import { HANG_MS } from "./helpers/wait.ts";
import {
  NEEDS_PG,
  assertOnce,
  call,
  countsOf,
  createKey,
  dataDir,
  drained,
  postgresDatabase,
  startServer,
  stop,
} from "./helpers/served-gateway.ts";

let upstream: FakeUpstream;
before(async () => {
  upstream = await startFakeOpenAI();
});
after(() => upstream.close());

describe("journal: SIGTERM while Postgres hangs", { concurrency: 1 }, () => {
  test("SIGTERM with Postgres hung: the process exits within its shutdown deadline; the next start records what it could not", { skip: NEEDS_PG, timeout: HANG_MS }, async () => {
    const dir = dataDir();
    const pg = await postgresDatabase();
    const target = new URL(pg.url);
    const cutter = await TcpCutter.start({ host: target.hostname, port: Number(target.port || 5432) });
    try {
      const deadlineMs = 3000;
      const server = await startServer(upstream, dir, {
        DATABASE_URL: cutter.url(pg.url),
        TOLLGATE_DB_TIMEOUT_MS: "1000",
        TOLLGATE_SHUTDOWN_TIMEOUT_MS: String(deadlineMs),
        TOLLGATE_PROXY_BATCH_WAIT_MS: "2",
      });
      const key = await createKey(server, "virtual");
      const answered: string[] = [];
      for (let i = 0; i < 4; i++) answered.push((await call(server, key, i % 2 === 0))!);
      cutter.hang();
      for (let i = 0; i < 10; i++) answered.push((await call(server, key, i % 2 === 0, 30_000))!);
      assert.ok(answered.every(Boolean), "every call answered");

      const stoppingAt = Date.now();
      server.child.kill("SIGTERM");
      await server.exited;
      const tookMs = Date.now() - stoppingAt;
      // The deadline plus a process's own exit; far below the minutes a hung database used to hold it.
      assert.ok(tookMs < deadlineMs + 5000, `exited after ${tookMs} ms`);

      cutter.resume();
      const again = await startServer(upstream, dir, { DATABASE_URL: pg.url });
      try {
        await drained(again);
        assertOnce(await countsOf(pg.database, answered), answered);
      } finally {
        await stop(again);
      }
    } finally {
      cutter.resume();
      await cutter.close();
      await pg.database.close();
    }
  });
});
