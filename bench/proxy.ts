import { type ChildProcess, execSync, fork, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { request } from "undici";
import { SERVER_URL, freshDatabase } from "./postgres.ts";
import { type Usage, quiet, rssMb, watch } from "./proc.ts";
import { MOCK_KEY, type Phase, type PhaseResult } from "./proxy-shared.ts";

/**
 * Proxy overhead (DESIGN.md §6): the same open-loop load generator, in the same run, sends OpenAI
 * chat completions to a mock upstream on loopback, once directly and once through `tollgate
 * serve` with recording on, non-streamed and streamed, at each rate; then steps the rate up
 * through the proxy to find the highest it sustains with p99 ≤ 10 ms. Generator, mock and gateway
 * are three processes, and share the machine's cores with Postgres.
 */

export interface ProxyBenchOptions {
  /** Length of each measured direct or proxy phase. */
  seconds: number;
  warmupSeconds: number;
  /** Length of each step of the max-rate search. */
  stepSeconds: number;
  rates: number[];
  searchRates: number[];
}

export interface Measured {
  result: PhaseResult;
  usage: Usage;
  /** False when the machine was still busy with other work after waiting for it to settle. */
  startedQuiet: boolean;
}

export interface Comparison {
  stream: boolean;
  rate: number;
  direct: Measured;
  proxy: Measured;
  /** Runs of the pair it took to get one undisturbed by other work (at most ATTEMPTS). */
  attempts: number;
}

export interface SearchStep {
  rate: number;
  proxy: Measured;
  attempts: number;
  /** Why the step does not count as sustained; undefined when it does. */
  failed: string | undefined;
  /** The same rate sent directly, run after a failed step to show whether the generator and mock could take it. */
  direct: Measured | undefined;
}

export interface ProxyResult {
  options: ProxyBenchOptions;
  startedAt: Date;
  /** The commit the gateway ran from, and whether src/ differed from it. */
  source: string;
  comparisons: Comparison[];
  search: SearchStep[];
  maxSustainedRate: number | undefined;
  /** Every request sent through the gateway in the run: sanity checks, warm-up, phases and search. */
  proxyRequests: number;
  /** usage_events rows after the gateway shut down, by status. */
  recorded: Record<string, number>;
  /** Bytes left in the gateway's journal after shutdown (events it could not write to Postgres). */
  journalBytes: number;
  /** After start-up and the sanity checks, before any load. */
  gatewayIdleRssMb: number;
  /** Over the whole run, warm-up included. */
  gatewayRssPeakMb: number;
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ADMIN = "bench-admin-token-0123456789";
const DATABASE = "tollgate_bench_proxy";
export const P99_LIMIT_MS = 10;
/**
 * Before each phase, up to QUIET_WAIT_MS for a second with the machine under QUIET_CPU (100 = one
 * core busy): the previous phase's recording has landed, and other work on the machine (a test run
 * next door) is not measured with the proxy. A phase that starts without it says so.
 */
export const QUIET_CPU = 25;
export const QUIET_WAIT_MS = 60_000;
/**
 * Builds and test runs may share this machine. A phase during which work other than the bench's
 * own processes and Postgres took more than FOREIGN_CPU (100 = one core) measured that work too:
 * its pair is run again, up to ATTEMPTS times in all, and the last run is kept either way.
 */
export const FOREIGN_CPU = 15;
export const ATTEMPTS = 2;

async function undisturbed<T extends Measured[]>(measure: () => Promise<T>): Promise<{ measured: T; attempts: number }> {
  for (let attempts = 1; ; attempts++) {
    const measured = await measure();
    if (attempts === ATTEMPTS || measured.every((m) => m.usage.foreignCpu <= FOREIGN_CPU)) return { measured, attempts };
    console.log(`other work on the machine during the run (attempt ${attempts}); running it again`);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** A bench module in its own node process, spoken to over IPC. */
function forkBench(file: string): ChildProcess {
  return fork(fileURLToPath(new URL(file, import.meta.url)), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
}

/** The child's next message; a `{ failed }` message or the child's exit is an error. */
function reply<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown) => {
      off();
      if (typeof message === "object" && message !== null && "failed" in message) reject(new Error(`bench child failed: ${String(message.failed)}`));
      else resolve(message as T);
    };
    const onExit = (code: number | null) => {
      off();
      reject(new Error(`bench child exited (${code})`));
    };
    const off = () => {
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.on("exit", onExit);
  });
}

async function startGateway(env: Record<string, string>, base: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["bin/tollgate.js", "serve"], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit"] });
  for (let i = 0; i < 150; i++) {
    if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) return child;
    if (child.exitCode !== null) break;
    await sleep(200);
  }
  child.kill();
  throw new Error("the gateway did not become ready");
}

async function stop(child: ChildProcess | undefined, timeoutMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  await exited;
  clearTimeout(timer);
}

async function createVirtualKey(base: string): Promise<string> {
  const res = await fetch(`${base}/api/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ kind: "virtual", name: "bench", team: "bench" }),
  });
  if (!res.ok) throw new Error(`creating the virtual key answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { key: string }).key;
}

/**
 * One call of each kind through the gateway, checked before any load: the answer is whole and
 * priced, and the usage chunk the gateway asked for on the client's behalf is not passed on.
 */
async function sanityCheck(base: string, key: string): Promise<void> {
  const ask = (stream: boolean) =>
    request(`${base}/openai/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], ...(stream ? { stream: true } : {}) }),
    });
  const plain = await ask(false);
  const text = await plain.body.text();
  if (plain.statusCode !== 200 || plain.headers["x-tollgate-cost-usd"] === undefined)
    throw new Error(`sanity: a non-streamed call answered ${plain.statusCode} with cost ${String(plain.headers["x-tollgate-cost-usd"])}: ${text}`);
  const streamed = await ask(true);
  const events = await streamed.body.text();
  if (streamed.statusCode !== 200 || !events.endsWith("data: [DONE]\n\n") || events.includes('"choices":[]'))
    throw new Error(`sanity: the streamed call answered ${streamed.statusCode}: ${events}`);
}

async function countRecorded(databaseUrl: string): Promise<Record<string, number>> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ status: string; n: string }[]>`select status, count(*) as n from usage_events group by status order by status`;
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  } finally {
    await sql.end();
  }
}

async function dropDatabase(name: string): Promise<void> {
  const sql = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`drop database if exists ${name} with (force)`);
  } finally {
    await sql.end();
  }
}

function bytesUnder(dir: string): number {
  try {
    return readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
  } catch {
    return 0;
  }
}

function gatewaySource(): string {
  try {
    const commit = execSync("git rev-parse --short HEAD", { cwd: ROOT }).toString().trim();
    const dirty = execSync("git status --porcelain -- src", { cwd: ROOT }).toString().trim() !== "";
    return dirty ? `${commit} with uncommitted changes in src/` : commit;
  } catch {
    return "unknown (not a git checkout)";
  }
}

/** Why a search step is not sustained, or undefined when it is. */
function shortfall(result: PhaseResult): string | undefined {
  if (result.errors > 0) return `${result.errors} errors (${result.firstError})`;
  if (result.latency.p99 > P99_LIMIT_MS) return `p99 ${result.latency.p99} ms`;
  // Requests that left late were queued in the generator: the gateway never saw the rate asked for.
  if (result.lag.p99 > P99_LIMIT_MS) return `the generator fell behind (send lag p99 ${result.lag.p99} ms)`;
  return undefined;
}

export async function benchProxy(options: ProxyBenchOptions): Promise<ProxyResult> {
  const startedAt = new Date();
  const dataDir = mkdtempSync(join(tmpdir(), "tollgate-bench-proxy-"));
  let mock: ChildProcess | undefined;
  let load: ChildProcess | undefined;
  let gateway: ChildProcess | undefined;
  // Ctrl-C or a kill stops the children, which fails the phase under way, so the finally below
  // still shuts the gateway down and drops the database.
  const interrupted = new AbortController();
  const interrupt = () => {
    interrupted.abort();
    for (const child of [load, mock, gateway]) child?.kill("SIGTERM");
  };
  process.once("SIGINT", interrupt).once("SIGTERM", interrupt);
  try {
    const databaseUrl = await freshDatabase(DATABASE);
    mock = forkBench("./proxy-mock.ts");
    const { port: mockPort } = await reply<{ port: number }>(mock);
    const mockPid = mock.pid!;
    const upstream = `http://127.0.0.1:${mockPort}`;
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    gateway = await startGateway(
      {
        DATABASE_URL: databaseUrl,
        PORT: String(port),
        HOST: "127.0.0.1",
        TOLLGATE_DATA_DIR: dataDir,
        TOLLGATE_ADMIN_TOKEN: ADMIN,
        OPENAI_BASE_URL: upstream,
        OPENAI_API_KEY: MOCK_KEY,
        // Per-request access logs would measure pino and the terminal, not the proxy.
        LOG_LEVEL: "warn",
      },
      base,
    );
    const gatewayPid = gateway.pid!;
    const key = await createVirtualKey(base);
    await sanityCheck(base, key);
    const gatewayIdleRssMb = Math.round(rssMb(gatewayPid) * 10) / 10;
    let proxyRequests = 2;
    let rssPeakMb = gatewayIdleRssMb;
    load = forkBench("./proxy-load.ts");
    const loader = load;

    const targets = {
      direct: { origin: upstream, path: "/v1/chat/completions", authorization: `Bearer ${MOCK_KEY}` },
      proxy: { origin: base, path: "/openai/v1/chat/completions", authorization: `Bearer ${key}` },
    };
    const run = async (target: keyof typeof targets, stream: boolean, rate: number, seconds: number): Promise<Measured> => {
      const phase: Phase = { ...targets[target], stream, rate, seconds };
      const startedQuiet = await quiet(QUIET_CPU, QUIET_WAIT_MS, interrupted.signal);
      if (interrupted.signal.aborted) throw new Error("interrupted");
      const watched = await watch({ gateway: gatewayPid, bench: [process.pid, loader.pid!, mockPid], database: DATABASE }, () => {
        loader.send(phase);
        return reply<PhaseResult>(loader);
      });
      const measured = { ...watched, startedQuiet };
      rssPeakMb = Math.max(rssPeakMb, measured.usage.rssPeakMb);
      if (target === "proxy") proxyRequests += measured.result.scheduled;
      console.log(`${target} ${stream ? "streamed" : "non-streamed"} ${rate}/s:`, JSON.stringify(measured));
      return measured;
    };

    for (const stream of [false, true]) {
      await run("direct", stream, 500, options.warmupSeconds);
      await run("proxy", stream, 500, options.warmupSeconds);
    }

    const comparisons: Comparison[] = [];
    for (const stream of [false, true]) {
      for (const rate of options.rates) {
        const { measured, attempts } = await undisturbed(async () => [await run("direct", stream, rate, options.seconds), await run("proxy", stream, rate, options.seconds)]);
        comparisons.push({ stream, rate, direct: measured[0]!, proxy: measured[1]!, attempts });
      }
    }

    const search: SearchStep[] = [];
    for (const rate of options.searchRates) {
      const { measured, attempts } = await undisturbed(async () => [await run("proxy", false, rate, options.stepSeconds)]);
      const proxy = measured[0]!;
      const failed = shortfall(proxy.result);
      const direct = failed ? await run("direct", false, rate, options.stepSeconds) : undefined;
      search.push({ rate, proxy, attempts, failed, direct });
      if (failed) break;
    }
    const sustained = search.filter((s) => s.failed === undefined);

    // Shut down first: the gateway flushes its recorder on SIGTERM, so every row it will ever write is in.
    await stop(gateway, 60_000);
    const recorded = await countRecorded(databaseUrl);
    return {
      options,
      startedAt,
      source: gatewaySource(),
      comparisons,
      search,
      maxSustainedRate: sustained.length > 0 ? sustained[sustained.length - 1]!.rate : undefined,
      proxyRequests,
      recorded,
      journalBytes: bytesUnder(join(dataDir, "journal")),
      gatewayIdleRssMb,
      gatewayRssPeakMb: rssPeakMb,
    };
  } finally {
    process.off("SIGINT", interrupt).off("SIGTERM", interrupt);
    if (load?.connected) load.disconnect();
    if (mock?.connected) mock.disconnect();
    await stop(gateway, 60_000);
    await dropDatabase(DATABASE);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
