import { type ChildProcess, fork, spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { freshDatabase, percentile } from "./postgres.ts";
import { MOCK_KEY, MOCK_MODEL } from "./proxy-shared.ts";

/*
 * The crash bench: `tollgate serve` on real Postgres under closed-loop proxied load (whole and
 * streamed calls) against the bench's mock upstream, killed with SIGKILL mid-load, restarted on the
 * same data folder; then every call a client got a whole answer for is looked up in the ledger.
 * The bar: none missing, none twice. BENCH_CRASH_ROOT runs another checkout's gateway (say, one
 * from before the journal) to compare.
 */

const ROOT = process.env.BENCH_CRASH_ROOT ?? fileURLToPath(new URL("..", import.meta.url));
const ADMIN = "bench-crash-admin-token-0123456789";

export interface CrashRound {
  /** Calls the clients got a whole answer for before the kill. */
  answered: number;
  /** Of those, not in the ledger after the restart. */
  missing: number;
  /** Of those, in the ledger more than once. */
  doubled: number;
  /** Answered calls per second under the load, before the kill. */
  ratePerSecond: number;
  /** From the restart's first look to an empty journal. */
  replayMs: number;
}

export interface CrashResult {
  rounds: CrashRound[];
  clients: number;
  loadSeconds: number;
  syncIntervalMs: number;
  /** fdatasync of a 64 KiB append on the data folder's disk, ms. */
  fdatasyncP50: number;
  fdatasyncP99: number;
  loadAverage: number;
  root: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function startMock(): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(fileURLToPath(new URL("./proxy-mock.ts", import.meta.url)), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    child.once("message", (m) => resolve({ child, port: (m as { port: number }).port }));
    child.once("exit", (code) => reject(new Error(`the mock exited (${code})`)));
  });
}

async function startGateway(dataDir: string, env: Record<string, string>): Promise<{ child: ChildProcess; base: string }> {
  const port = 18900 + Math.floor(Math.random() * 500);
  mkdirSync(dataDir, { recursive: true });
  // tsx by its full address: the gateway's working directory is its data folder.
  const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), join(ROOT, "bin/main.ts"), "serve"], {
    cwd: dataDir,
    env: { ...process.env, ...env, PORT: String(port), HOST: "127.0.0.1", TOLLGATE_DATA_DIR: dataDir, TOLLGATE_ADMIN_TOKEN: ADMIN, TOLLGATE_JOBS: "off", LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) return { child, base };
    if (child.exitCode !== null) break;
    await sleep(200);
  }
  child.kill("SIGKILL");
  throw new Error("the gateway did not start");
}

/** One call; its id once the whole answer is in, undefined if it was cut off. */
async function call(base: string, key: string, stream: boolean): Promise<string | undefined> {
  try {
    const res = await fetch(`${base}/openai/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: MOCK_MODEL, messages: [{ role: "user", content: "hi" }], ...(stream && { stream: true }) }),
    });
    const text = await res.text();
    if (res.status !== 200) return undefined;
    if (stream ? !text.includes("data: [DONE]") : !text.includes('"finish_reason":"stop"')) return undefined;
    return res.headers.get("x-tollgate-request-id") ?? undefined;
  } catch {
    return undefined;
  }
}

/** Waits for the restarted gateway's journal to be empty (or, for a gateway without one, its spool). */
async function drained(base: string): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    const body = (await fetch(`${base}/readyz`).then((r) => r.json(), () => undefined)) as
      | { status: string; journal?: { unrecorded_events: number }; spool?: { spooled_events: number } }
      | undefined;
    if (body?.status === "ok" && (body.journal?.unrecorded_events ?? body.spool?.spooled_events) === 0) return;
    await sleep(200);
  }
  throw new Error("the journal did not drain");
}

function fdatasyncFigures(dir: string): { p50: number; p99: number } {
  const file = join(dir, "fdatasync-probe");
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(64 * 1024, 120);
  const times: number[] = [];
  try {
    for (let i = 0; i < 100; i++) {
      writeSync(fd, chunk);
      const started = performance.now();
      fdatasyncSync(fd);
      times.push(performance.now() - started);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

export async function benchCrash(opts: { rounds: number; clients: number; loadSeconds: number }): Promise<CrashResult> {
  const mock = await startMock();
  const rounds: CrashRound[] = [];
  const dataRoot = mkdtempSync(join(tmpdir(), "tollgate-crash-bench-"));
  const load: number[] = [];
  try {
    for (let r = 0; r < opts.rounds; r++) {
      const url = await freshDatabase(`tollgate_bench_crash_${r}`);
      const dataDir = join(dataRoot, `round-${r}`);
      const env = { DATABASE_URL: url, OPENAI_BASE_URL: `http://127.0.0.1:${mock.port}`, OPENAI_API_KEY: MOCK_KEY };
      const first = await startGateway(dataDir, env);
      const keyRes = await fetch(`${first.base}/api/keys`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify({ kind: "virtual", name: "crash", team: "bench" }),
      });
      const { key } = (await keyRes.json()) as { key: string };
      const answered: string[] = [];
      let killed = false;
      const exited = once(first.child, "exit");
      const started = performance.now();
      const workers = Array.from({ length: opts.clients }, async (_, w) => {
        for (let i = 0; !killed; i++) {
          const id = await call(first.base, key, (w + i) % 2 === 0);
          if (id) answered.push(id);
        }
      });
      await sleep(opts.loadSeconds * 1000);
      load.push(loadavg()[0]!);
      const elapsed = (performance.now() - started) / 1000;
      const atKill = answered.length;
      first.child.kill("SIGKILL");
      killed = true;
      await exited;
      await Promise.all(workers);

      const restartedAt = performance.now();
      const second = await startGateway(dataDir, env);
      await drained(second.base);
      const replayMs = performance.now() - restartedAt;
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      let counts: Map<string, number>;
      try {
        const rows = await sql<{ id: string; n: string }[]>`select id, count(*)::text as n from usage_events where source = 'proxy' and id = any(${answered}) group by id`;
        counts = new Map(rows.map((row) => [row.id, Number(row.n)]));
      } finally {
        await sql.end();
      }
      second.child.kill("SIGTERM");
      await once(second.child, "exit");
      const round = {
        answered: answered.length,
        missing: answered.filter((id) => !counts.has(id)).length,
        doubled: [...counts.values()].filter((n) => n > 1).length,
        ratePerSecond: Math.round(atKill / elapsed),
        replayMs: Math.round(replayMs),
      };
      console.log("crash round", r, round);
      rounds.push(round);
    }
    const sync = fdatasyncFigures(dataRoot);
    return {
      rounds,
      clients: opts.clients,
      loadSeconds: opts.loadSeconds,
      syncIntervalMs: Number(process.env.TOLLGATE_JOURNAL_SYNC_MS ?? 100),
      fdatasyncP50: sync.p50,
      fdatasyncP99: sync.p99,
      loadAverage: load.reduce((a, b) => a + b, 0) / load.length,
      root: ROOT,
    };
  } finally {
    mock.child.kill();
    rmSync(dataRoot, { recursive: true, force: true });
  }
}

export function crashSection(r: CrashResult, ranAt: string): string {
  const rows = r.rounds.map((x, i) => `| ${i + 1} | ${x.answered.toLocaleString("en-US")} | ${x.ratePerSecond.toLocaleString("en-US")} | **${x.missing}** | ${x.doubled} | ${x.replayMs.toLocaleString("en-US")} ms |`).join("\n");
  const rate = Math.max(...r.rounds.map((x) => x.ratePerSecond));
  const windowMs = r.syncIntervalMs + r.fdatasyncP99;
  return `## Crash: SIGKILL under proxied load, answered vs recorded (target: 0 missing, 0 doubled)

${ranAt}

| round | answered before the kill | answered/s | missing after restart | recorded twice | restart (start-up included) to empty journal |
|---:|---:|---:|---:|---:|---:|
${rows}

\`tollgate serve\` on Postgres, ${r.clients} closed-loop clients (half whole, half streamed calls) against
the bench's mock upstream for ${r.loadSeconds} s, then SIGKILL; the gateway is restarted on the same data
folder and every call whose whole answer a client received is looked up in the ledger by its call id.
Load average (1 min) during the load: ${r.loadAverage.toFixed(2)}.

Power cut: the journal is fdatasync'd every ${r.syncIntervalMs} ms (\`TOLLGATE_JOURNAL_SYNC_MS\`); fdatasync of a
64 KiB append on this disk took p50 ${r.fdatasyncP50.toFixed(2)} ms, p99 ${r.fdatasyncP99.toFixed(2)} ms. So a power cut
loses at most the calls answered in the last ~${windowMs.toFixed(0)} ms: at the ${rate.toLocaleString("en-US")} calls/s
measured here, about ${Math.ceil((rate * windowMs) / 1000).toLocaleString("en-US")} calls; at the proxy bench's 1,000 calls/s, about ${Math.ceil(windowMs).toLocaleString("en-US")}.`;
}
