import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openDatabase } from "../src/db/connection.ts";
import { seedDataDir } from "./helpers/template.ts";
import { waitFor } from "./helpers/wait.ts";
import type { FakeUpstream } from "./fakes/fake-upstream.ts";
import { startFakeOpenAI } from "./fakes/openai.ts";
import { HANG_MS } from "./helpers/wait.ts";
import {
  PG,
  assertOnce,
  countsOf,
  createKey,
  dataDir,
  drained,
  load,
  postgresDatabase,
  startServer,
  stop,
} from "./helpers/served-gateway.ts";

let upstream: FakeUpstream;
before(async () => {
  upstream = await startFakeOpenAI();
});
after(() => upstream.close());

describe("journal: the gateway process is killed under proxied load", { concurrency: 1 }, () => {
  test("SIGKILL mid-load, restart: every call a client got a whole answer for is in the ledger exactly once", { timeout: HANG_MS }, async () => {
    const dir = dataDir();
    const pg = PG ? await postgresDatabase() : undefined;
    if (!pg) await seedDataDir(dir);
    const env: Record<string, string> = pg ? { DATABASE_URL: pg.url } : {};
    try {
      const first = await startServer(upstream, dir, env);
      const key = await createKey(first, "virtual");
      const traffic = load(first, key, 8);
      await waitFor("calls answered under load", () => traffic.answered.length >= 150);
      first.child.kill("SIGKILL");
      await first.exited;
      await traffic.stop();
      const answered = [...traffic.answered];
      assert.ok(answered.length >= 150);

      const second = await startServer(upstream, dir, env);
      await drained(second);
      await stop(second);
      const database = pg?.database ?? (await openDatabase({ dataDir: dir }));
      try {
        assertOnce(await countsOf(database, answered), answered);
      } finally {
        if (!pg) await database.close();
      }
    } finally {
      await pg?.database.close();
    }
  });
});
