import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import type { Database } from "../../src/db/connection.ts";
import { type FakeUpstream, answerText } from "../fakes/fake-upstream.ts";
import { OPENAI_KEY } from "../fakes/openai.ts";
import { BIN_ARGS, cliEnv } from "./cli.ts";
import { openTestDatabase } from "./db.ts";
import { HANG_MS, waitFor } from "./wait.ts";

/*
 * The gateway as operators run it (`tollgate serve` in a process of its own) under proxied load,
 * for the journal's tests: every call a client got a whole answer for must end up in the ledger, once.
 */

export const ADMIN_TOKEN = "crash-admin-token-0123456789";
export const PG = process.env.TEST_DATABASE_URL;
export const NEEDS_PG = PG ? false : "needs TEST_DATABASE_URL: PGlite cannot hang";

export interface Server {
  child: ChildProcess;
  url: string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  stderr: () => string;
  /** The JSON log lines so far (LOG_LEVEL is silent unless `env` sets it). */
  logs: () => Record<string, unknown>[];
}

export async function startServer(upstream: FakeUpstream, dir: string, env: Record<string, string>): Promise<Server> {
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
      // A long batch window for proxied calls: events that waited in memory for it would be lost to a SIGKILL.
      TOLLGATE_PROXY_BATCH_WAIT_MS: "1000",
      ...env,
    }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  let stdout = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  const logs = () =>
    stdout
      .split("\n")
      .slice(0, -1) // the last piece is a line still being written
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  let url = "";
  await waitFor("the server to listen", async () => {
    assert.equal(child.exitCode, null, `the server exited early: ${stderr}`);
    if (!existsSync(join(dir, "server.json"))) return false;
    url = (JSON.parse(readFileSync(join(dir, "server.json"), "utf8")) as { url: string }).url;
    return (await fetch(`${url}/healthz`).catch(() => null))?.status === 200;
  });
  return { child, url, exited, stderr: () => stderr, logs };
}

export async function createKey(server: Server, kind: "virtual" | "ingest"): Promise<string> {
  const res = await fetch(`${server.url}/api/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ kind, name: `${kind}-${Math.random()}`, team: "crash" }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { key: string }).key;
}

/** One chat call, whole or streamed; its call id once the client has all of the answer, else undefined. */
export async function call(server: Server, key: string, stream: boolean, timeoutMs = HANG_MS): Promise<string | undefined> {
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
export function load(server: Server, key: string, clients: number) {
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
export async function drained(server: Server): Promise<void> {
  await waitFor("the journal drained into the ledger", async () => {
    const res = await fetch(`${server.url}/readyz`).catch(() => null);
    if (!res) return false;
    const body = (await res.json()) as { status: string; journal?: { unrecorded_events: number } };
    return body.status === "ok" && body.journal?.unrecorded_events === 0;
  });
}

export async function stop(server: Server): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill("SIGTERM");
  await server.exited;
}

/** How many times each call id is in the ledger. */
export async function countsOf(database: Database, ids: readonly string[]): Promise<Map<string, number>> {
  const rows = await database.rows<{ id: string; n: string }>(sql`
    select id, count(*)::text as n from usage_events where source = 'proxy' and id in (${sql.join(ids.map((id) => sql`${id}`), sql`, `)}) group by id`);
  return new Map(rows.map((r) => [r.id, Number(r.n)]));
}

export function assertOnce(counts: Map<string, number>, ids: readonly string[]): void {
  const missing = ids.filter((id) => !counts.has(id));
  assert.deepEqual(missing, [], `${missing.length} of ${ids.length} answered calls are missing from the ledger`);
  assert.ok([...counts.values()].every((n) => n === 1), "no call recorded twice");
}

/** A database of this test's own on the real Postgres, and its URL. */
export async function postgresDatabase(): Promise<{ database: Database; url: string }> {
  const database = await openTestDatabase();
  const [row] = await database.rows<{ name: string }>(sql`select current_database() as name`);
  const url = new URL(PG!);
  url.pathname = `/${row!.name}`;
  return { database, url: url.toString() };
}

/** A data folder of its own, removed when the process exits. */
export function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tollgate-crash-"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

