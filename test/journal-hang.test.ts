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

describe("journal: Postgres hangs under proxied load", { concurrency: 1 }, () => {
  test("Postgres hangs: the proxy keeps answering, /readyz and ingest answer in bounded time, and once it is back every call is recorded once", { skip: NEEDS_PG, timeout: HANG_MS }, async () => {
    const dir = dataDir();
    const pg = await postgresDatabase();
    const target = new URL(pg.url);
    const cutter = await TcpCutter.start({ host: target.hostname, port: Number(target.port || 5432) });
    try {
      const server = await startServer(upstream, dir, { DATABASE_URL: cutter.url(pg.url), TOLLGATE_DB_TIMEOUT_MS: "1000", TOLLGATE_PROXY_BATCH_WAIT_MS: "2" });
      try {
        const key = await createKey(server, "virtual");
        const ingestKey = await createKey(server, "ingest");
        const ingest = (id: string) =>
          fetch(`${server.url}/v1/usage`, {
            method: "POST",
            headers: { authorization: `Bearer ${ingestKey}`, "content-type": "application/json" },
            body: JSON.stringify({ id, timestamp: new Date().toISOString(), provider: "openai", model: "gpt-4o", input_tokens: 10, output_tokens: 1 }),
          });
        const answered: string[] = [];
        for (let i = 0; i < 6; i++) answered.push((await call(server, key, i % 2 === 0))!);
        assert.equal((await ingest("before-the-hang")).status, 200);

        cutter.hang();
        // Every call of the hang is answered (a bound far below a hang: the upstream answers at once).
        for (let i = 0; i < 20; i++) {
          const id = await call(server, key, i % 2 === 0, 30_000);
          assert.ok(id, `call ${i} during the hang was answered`);
          answered.push(id);
        }
        const readyAt = Date.now();
        const ready = (await (await fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(30_000) })).json()) as { status: string; journal: { unrecorded_events: number } };
        assert.ok(Date.now() - readyAt < 10_000, "readyz answers within its timeout, not when the database does");
        assert.equal(ready.status, "degraded");
        assert.ok(ready.journal.unrecorded_events >= 20, `the hang's calls wait in the journal (${ready.journal.unrecorded_events})`);
        const ingestAt = Date.now();
        const refused = await ingest("during-the-hang");
        assert.ok(Date.now() - ingestAt < 10_000, "ingest answers within its timeout");
        assert.equal(refused.status, 503);
        assert.equal(refused.headers.get("retry-after"), "5");
        assert.match(((await refused.json()) as { detail: string }).detail, /did not answer|could not be written/);

        cutter.resume();
        await drained(server);
        assertOnce(await countsOf(pg.database, answered), answered);
        assert.equal(answered.length, 26);
        assert.equal(new Set(answered).size, 26);
        // A resend of what was refused is recorded once the database answers.
        assert.equal((await ingest("during-the-hang")).status, 200);
      } finally {
        await stop(server);
      }
    } finally {
      cutter.resume();
      await cutter.close();
      await pg.database.close();
    }
  });
});
