import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { type Database, openDatabase } from "../src/db/connection.ts";
import { type FakeUpstream, answerText } from "./fakes/fake-upstream.ts";
import { OPENAI_KEY, startFakeOpenAI } from "./fakes/openai.ts";
import { TcpCutter } from "./fakes/tcp-cutter.ts";
import { BIN_ARGS, cliEnv } from "./helpers/cli.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { seedDataDir } from "./helpers/template.ts";
import { HANG_MS, waitFor } from "./helpers/wait.ts";

/*
 * The gateway as operators run it (`tollgate serve` in a process of its own), killed and stopped
 * under proxied load: every call a client got a whole answer for must end up in the ledger, once.
 */

const ADMIN_TOKEN = "crash-admin-token-0123456789";
const PG = process.env.TEST_DATABASE_URL;
const NEEDS_PG = PG ? false : "needs TEST_DATABASE_URL: PGlite cannot hang";

let upstream: FakeUpstream;
before(async () => {
  upstream = await startFakeOpenAI();
});
after(() => upstream.close());

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Server {
  child: ChildProcess;
  url: string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  stderr: () => string;
}

async function startServer(dir: string, env: Record<string, string>): Promise<Server> {
  rmSync(join(dir, "server.json"), { force: true });
  const child = spawn(process.execPath, [...BIN_ARGS, "serve"], {
    cwd: dir,
    env: cliEnv(dir, {
      PORT: "0",
      HOST: "127.0.0.1",
      TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN,
      TOLLGATE_JOBS: "off",
      OPENAI_BASE_URL: upstream.url,
      OPENAI_API_KEY: OPENAI_KEY,
      // A long batch window: events that waited in memory for it would be lost to a SIGKILL.
      TOLLGATE_BATCH_WAIT_MS: "1000",
      ...env,
    }),
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  let url = "";
  await waitFor("the server to listen", async () => {
    assert.equal(child.exitCode, null, `the server exited early: ${stderr}`);
    if (!existsSync(join(dir, "server.json"))) return false;
    url = (JSON.parse(readFileSync(join(dir, "server.json"), "utf8")) as { url: string }).url;
    return (await fetch(`${url}/healthz`).catch(() => null))?.status === 200;
  });
  return { child, url, exited, stderr: () => stderr };
}

async function createKey(server: Server, kind: "virtual" | "ingest"): Promise<string> {
  const res = await fetch(`${server.url}/api/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ kind, name: `${kind}-${Math.random()}`, team: "crash" }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { key: string }).key;
}

/** One chat call, whole or streamed; its call id once the client has all of the answer, else undefined. */
async function call(server: Server, key: string, stream: boolean, timeoutMs = HANG_MS): Promise<string | undefined> {
  try {
    const res = await fetch(`${server.url}/openai/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], ...(stream && { stream: true }) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (res.status !== 200) return undefined;
    const whole = stream ? text.includes("data: [DONE]") : (JSON.parse(text) as { choices: { message: { content: string } }[] }).choices[0]?.message.content === answerText();
    return whole ? res.headers.get("x-tollgate-request-id")! : undefined;
  } catch {
    return undefined; // cut off by the kill: not answered
  }
}

/** Clients calling in a loop until `stop()`; the ids of the calls they got whole answers for. */
function load(server: Server, key: string, clients: number) {
  const answered: string[] = [];
  let stopped = false;
  const workers = Array.from({ length: clients }, async (_, w) => {
    for (let i = 0; !stopped; i++) {
      const id = await call(server, key, (w + i) % 2 === 0);
      if (id) answered.push(id);
      else if (stopped || server.child.exitCode !== null || server.child.signalCode !== null) return;
    }
  });
  return {
    answered,
    async stop() {
      stopped = true;
      await Promise.all(workers);
    },
  };
}

/** Waits until the server's journal holds nothing unrecorded and its database answers. */
async function drained(server: Server): Promise<void> {
  await waitFor("the journal drained into the ledger", async () => {
    const res = await fetch(`${server.url}/readyz`).catch(() => null);
    if (!res) return false;
    const body = (await res.json()) as { status: string; journal?: { unrecorded_events: number } };
    return body.status === "ok" && body.journal?.unrecorded_events === 0;
  });
}

async function stop(server: Server): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill("SIGTERM");
  await server.exited;
}

/** How many times each call id is in the ledger. */
async function countsOf(database: Database, ids: readonly string[]): Promise<Map<string, number>> {
  const rows = await database.rows<{ id: string; n: string }>(sql`
    select id, count(*)::text as n from usage_events where source = 'proxy' and id in (${sql.join(ids.map((id) => sql`${id}`), sql`, `)}) group by id`);
  return new Map(rows.map((r) => [r.id, Number(r.n)]));
}

function assertOnce(counts: Map<string, number>, ids: readonly string[]): void {
  const missing = ids.filter((id) => !counts.has(id));
  assert.deepEqual(missing, [], `${missing.length} of ${ids.length} answered calls are missing from the ledger`);
  assert.ok([...counts.values()].every((n) => n === 1), "no call recorded twice");
}

/** A database of this test's own on the real Postgres, and its URL. */
async function postgresDatabase(): Promise<{ database: Database; url: string }> {
  const database = await openTestDatabase();
  const [row] = await database.rows<{ name: string }>(sql`select current_database() as name`);
  const url = new URL(PG!);
  url.pathname = `/${row!.name}`;
  return { database, url: url.toString() };
}

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tollgate-crash-"));
  dirs.push(dir);
  return dir;
}

describe("journal: the gateway process dies or stops under proxied load", { concurrency: 1 }, () => {
  test("SIGKILL mid-load, restart: every call a client got a whole answer for is in the ledger exactly once", { timeout: HANG_MS }, async () => {
    const dir = dataDir();
    const pg = PG ? await postgresDatabase() : undefined;
    if (!pg) await seedDataDir(dir);
    const env: Record<string, string> = pg ? { DATABASE_URL: pg.url } : {};
    try {
      const first = await startServer(dir, env);
      const key = await createKey(first, "virtual");
      const traffic = load(first, key, 8);
      await waitFor("calls answered under load", () => traffic.answered.length >= 150);
      first.child.kill("SIGKILL");
      await first.exited;
      await traffic.stop();
      const answered = [...traffic.answered];
      assert.ok(answered.length >= 150);

      const second = await startServer(dir, env);
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

  test("Postgres hangs: the proxy keeps answering, /readyz and ingest answer in bounded time, and once it is back every call is recorded once", { skip: NEEDS_PG, timeout: HANG_MS }, async () => {
    const dir = dataDir();
    const pg = await postgresDatabase();
    const target = new URL(pg.url);
    const cutter = await TcpCutter.start({ host: target.hostname, port: Number(target.port || 5432) });
    try {
      const server = await startServer(dir, { DATABASE_URL: cutter.url(pg.url), TOLLGATE_DB_TIMEOUT_MS: "1000", TOLLGATE_BATCH_WAIT_MS: "2" });
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

  test("SIGTERM with Postgres hung: the process exits within its shutdown deadline; the next start records what it could not", { skip: NEEDS_PG, timeout: HANG_MS }, async () => {
    const dir = dataDir();
    const pg = await postgresDatabase();
    const target = new URL(pg.url);
    const cutter = await TcpCutter.start({ host: target.hostname, port: Number(target.port || 5432) });
    try {
      const deadlineMs = 3000;
      const server = await startServer(dir, {
        DATABASE_URL: cutter.url(pg.url),
        TOLLGATE_DB_TIMEOUT_MS: "1000",
        TOLLGATE_SHUTDOWN_TIMEOUT_MS: String(deadlineMs),
        TOLLGATE_BATCH_WAIT_MS: "2",
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
      const again = await startServer(dir, { DATABASE_URL: pg.url });
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
