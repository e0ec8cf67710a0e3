import { type ChildProcess, execSync, fork, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { request } from "undici";
import { SERVER_URL, freshDatabase } from "./postgres.ts";
import { type Usage, quiet, treeRssMb, watch } from "./proc.ts";
import { type ProfileSummary, summariseProfile } from "./cpu-profile.ts";
import { type ClosedLoop, type ClosedResult, MOCK_KEY, type Phase, type PhaseResult, type Target } from "./proxy-shared.ts";

/**
 * Proxy overhead against a peer (DESIGN.md §6, issue 13): one load generator sends OpenAI chat
 * completions to a mock upstream on loopback, straight to it ("direct"), through `tollgate serve`
 * (compiled dist/, real Postgres, recording on, one hard budget matching every call) and through
 * Portkey's open-source gateway (headless, routed to the same mock by its `x-portkey-provider` and
 * `x-portkey-custom-host` headers) and through the floor, a bare Node pass-through
 * (bench/proxy-floor.ts), each rate's phases back to back, then each at its closed-loop maximum. Portkey 1.15.2 answers streamed calls with 500 as installed, so streams are compared
 * against direct only. Generator, mock, the gateways and Postgres share the machine's cores.
 */

export type TargetName = "direct" | "floor" | "tollgate" | "portkey";
/** Each rate's phases, in order: the floor just before Tollgate. Portkey answers streams with 500 (above). */
export const PLAIN_TARGETS = ["direct", "floor", "tollgate", "portkey"] as const;
export const STREAM_TARGETS = ["direct", "floor", "tollgate"] as const;

export interface ProxyBenchOptions {
  /** Length of each open-loop phase. */
  seconds: number;
  warmupSeconds: number;
  /** Length of each closed-loop run, and its connections. */
  closedSeconds: number;
  closedConnections: number;
  rates: number[];
  /** TOLLGATE_WORKERS of the gateway measured. */
  workers: number;
}

export interface Measured {
  result: PhaseResult;
  usage: Usage;
  /** False when the machine was still busy with other work after waiting for it to settle. */
  startedQuiet: boolean;
}

/** One rate, one kind: the targets' phases, run back to back. */
export interface RateRow {
  stream: boolean;
  rate: number;
  runs: Partial<Record<TargetName, Measured>>;
}

export interface ClosedMeasured {
  result: ClosedResult;
  usage: Usage;
  startedQuiet: boolean;
}

export interface ProxyResult {
  options: ProxyBenchOptions;
  startedAt: Date;
  /** The commit the gateway ran from, and whether src/ differed from it. */
  source: string;
  portkeyVersion: string;
  /** 1-, 5- and 15-minute load averages as the run began and as it ended. */
  loadBefore: number[];
  loadAfter: number[];
  rows: RateRow[];
  closed: Partial<Record<TargetName, ClosedMeasured>>;
  /** Every request sent through Tollgate in the run: sanity checks, warm-up, phases, closed loop. */
  proxyRequests: number;
  /** usage_events rows after the gateway shut down, by status. */
  recorded: Record<string, number>;
  /** Bytes left in the gateway's journal after shutdown (events it could not write to Postgres). */
  journalBytes: number;
  /** After start-up and the sanity checks, before any load; and again after all of it, once idle. */
  idleRssMb: { tollgate: number; portkey: number; tollgateAfter: number };
  /** Peak over the measured open-loop phases (warm-up and closed loop excluded) and over the closed loop. */
  rssPeakMb: { tollgate: number; portkey: number; tollgateClosed: number; portkeyClosed: number };
  seconds: number;
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ADMIN = "bench-admin-token-0123456789";
const DATABASE = "tollgate_bench_proxy";
const PORTKEY = fileURLToPath(new URL("../node_modules/@portkey-ai/gateway/build/start-server.js", import.meta.url));
/**
 * Before each phase, up to QUIET_WAIT_MS for a second with the machine under QUIET_CPU (100 = one
 * core busy): the previous phase's recording has landed, and other work on the machine is not
 * measured with the proxy. Short, so a busy shared machine cannot stretch the run past ten minutes:
 * a phase that starts without it is marked, and other work's CPU is reported beside every phase.
 */
export const QUIET_CPU = 40;
/**
 * Node options for the gateway alone (BENCH_GATEWAY_NODE_ARGS, space-separated), e.g.
 * `--max-semi-space-size=4` to measure a smaller young generation (docs/operations.md, memory).
 */
const GATEWAY_NODE_ARGS = (process.env.BENCH_GATEWAY_NODE_ARGS ?? "").split(" ").filter(Boolean);
export const QUIET_WAIT_MS = 4_000;
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
function forkBench(file: string, env: Record<string, string> = {}, nodeArgs: string[] = []): ChildProcess {
  return fork(fileURLToPath(new URL(file, import.meta.url)), [], { execArgv: ["--import", "tsx", ...nodeArgs], env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit", "ipc"] });
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

async function stop(child: ChildProcess | undefined, timeoutMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  await exited;
  clearTimeout(timer);
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

export function gatewaySource(root = ROOT): string {
  try {
    const commit = execSync("git rev-parse --short HEAD", { cwd: root }).toString().trim();
    const dirty = execSync("git status --porcelain -- src", { cwd: root }).toString().trim() !== "";
    return dirty ? `${commit} with uncommitted changes in src/` : commit;
  } catch {
    return "unknown (not a git checkout)";
  }
}

async function waitReady(child: ChildProcess, url: string, what: string): Promise<void> {
  // Up to two minutes: start-up on a machine shared with others' builds and benches can be slow.
  for (let i = 0; i < 600; i++) {
    if (await fetch(url).then((r) => r.status < 500, () => false)) return;
    if (child.exitCode !== null) break;
    await sleep(200);
  }
  child.kill();
  throw new Error(`${what} did not become ready`);
}

async function startGateway(env: Record<string, string>, base: string, nodeArgs: string[], root: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, "bin/tollgate.js", "serve"], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit"] });
  await waitReady(child, `${base}/readyz`, "the gateway");
  return child;
}

/** Portkey's gateway, headless (no console UI), as its own `npx @portkey-ai/gateway --headless` starts it. */
async function startPortkey(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [PORTKEY, "--headless", `--port=${port}`], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
  await waitReady(child, `http://127.0.0.1:${port}/`, "Portkey's gateway");
  return child;
}

async function admin(base: string, path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`POST ${path} answered ${res.status}: ${await res.text()}`);
  return res.json();
}

/**
 * One call of each kind through the gateway, checked before any load: the answer is whole and
 * priced (the budget's hold settled with it), and the usage chunk the gateway asked for on the
 * client's behalf is not passed on. Each other proxy's (Portkey's, the floor's) non-streamed answer
 * is checked too.
 */
async function sanityCheck(tollgate: Target, others: Target[]): Promise<void> {
  const ask = (target: Target, stream: boolean) =>
    request(`${target.origin}${target.path}`, {
      method: "POST",
      headers: target.headers,
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], ...(stream ? { stream: true } : {}) }),
    });
  const plain = await ask(tollgate, false);
  const text = await plain.body.text();
  if (plain.statusCode !== 200 || plain.headers["x-tollgate-cost-usd"] === undefined)
    throw new Error(`sanity: a non-streamed call answered ${plain.statusCode} with cost ${String(plain.headers["x-tollgate-cost-usd"])}: ${text}`);
  const streamed = await ask(tollgate, true);
  const events = await streamed.body.text();
  if (streamed.statusCode !== 200 || !events.endsWith("data: [DONE]\n\n") || events.includes('"choices":[]'))
    throw new Error(`sanity: the streamed call answered ${streamed.statusCode}: ${events}`);
  for (const other of others) {
    const peer = await ask(other, false);
    const peerText = await peer.body.text();
    if (peer.statusCode !== 200 || !peerText.includes('"usage"')) throw new Error(`sanity: ${other.origin} answered ${peer.statusCode}: ${peerText}`);
  }
}

/** One `tollgate serve` of the bench: its own port, data folder and database. */
interface Gateway {
  workers: number;
  child: ChildProcess;
  dataDir: string;
  database: string;
  databaseUrl: string;
  target: Target;
}

/** The bench's processes, started and wired: the mock, Tollgate (and Portkey), the load generator. */
export interface Stack {
  /** The first gateway: the one the main report calls Tollgate. */
  databaseUrl: string;
  dataDir: string;
  gateway: ChildProcess;
  /** Every gateway started, by target name: `tollgate` for the first, `tollgate-<n>w` for one with n workers after it. */
  gateways: Map<string, Gateway>;
  peer: ChildProcess | undefined;
  serverOf: Record<string, number>;
  targets: Record<string, Target>;
  /** Requests sent through Tollgate so far. */
  proxyRequests: number;
  measure<T>(name: string, message: Phase | ClosedLoop): Promise<{ result: T; usage: Usage; startedQuiet: boolean }>;
  run(name: string, stream: boolean, rate: number, seconds: number): Promise<Measured>;
  /** Stops every process (Tollgate with SIGTERM, so it flushes), drops the databases. */
  close(): Promise<void>;
}

/** The target name of a gateway with `workers` workers, after the first. */
export const workersTarget = (workers: number) => `tollgate-${workers}w`;

/** Which gateways a stack runs: worker counts (one gateway each), their databases' name, the build. */
export interface StackOptions {
  /** TOLLGATE_WORKERS of each gateway; the first is the one the reports call Tollgate. */
  workers?: readonly number[];
  /** The first gateway's database; the others add `_<workers>w`. */
  database?: string;
  /** The checkout (with its dist/ built) the gateways run from. */
  root?: string;
  /** Added to every gateway's environment. */
  env?: Record<string, string>;
  /** Also start the bare Node pass-through (bench/proxy-floor.ts), target `floor`. */
  floor?: boolean;
  /** Node options for the floor (a CPU profile's). */
  floorArgs?: string[];
}

/**
 * Starts the mock, one Tollgate per entry of `workers` (node run with `gatewayArgs`, from `root`)
 * and, with `peer`, Portkey; makes each gateway's virtual key and hard budget; checks one call of
 * each kind. Ctrl-C or a kill stops the children, which fails the phase under way, so the
 * caller's close() still runs.
 */
export async function startStack(gatewayArgs: string[], peer: boolean, options: StackOptions = {}): Promise<Stack> {
  const { workers = [1], database: databaseName = DATABASE, root = ROOT, env = {}, floor = false, floorArgs = [] } = options;
  const children: ChildProcess[] = [];
  const gateways = new Map<string, Gateway>();
  const interrupted = new AbortController();
  const interrupt = () => {
    interrupted.abort();
    for (const child of children) child.kill("SIGTERM");
    for (const g of gateways.values()) g.child.kill("SIGTERM");
  };
  process.once("SIGINT", interrupt).once("SIGTERM", interrupt);
  const close = async () => {
    process.off("SIGINT", interrupt).off("SIGTERM", interrupt);
    for (const g of gateways.values()) await stop(g.child, 60_000);
    for (const child of children) await stop(child, 10_000);
    for (const g of gateways.values()) {
      await dropDatabase(g.database);
      rmSync(g.dataDir, { recursive: true, force: true });
    }
  };
  try {
    const mock = forkBench("./proxy-mock.ts");
    children.push(mock);
    const { port: mockPort } = await reply<{ port: number }>(mock);
    const upstream = `http://127.0.0.1:${mockPort}`;
    const json = { "content-type": "application/json" };
    for (const [i, count] of workers.entries()) {
      const name = i === 0 ? "tollgate" : workersTarget(count);
      const database = i === 0 ? databaseName : `${databaseName}_${count}w`;
      const databaseUrl = await freshDatabase(database);
      const dataDir = mkdtempSync(join(tmpdir(), "tollgate-bench-proxy-"));
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      const child = await startGateway(
        {
          DATABASE_URL: databaseUrl,
          PORT: String(port),
          HOST: "127.0.0.1",
          TOLLGATE_DATA_DIR: dataDir,
          TOLLGATE_ADMIN_TOKEN: ADMIN,
          TOLLGATE_WORKERS: String(count),
          OPENAI_BASE_URL: upstream,
          OPENAI_API_KEY: MOCK_KEY,
          // Per-request access logs would measure pino and the terminal, not the proxy.
          LOG_LEVEL: "warn",
          ...env,
        },
        base,
        [...GATEWAY_NODE_ARGS, ...gatewayArgs],
        root,
      );
      const gateway: Gateway = { workers: count, child, dataDir, database, databaseUrl, target: { origin: base, path: "/openai/v1/chat/completions", headers: {} } };
      gateways.set(name, gateway);
      const { key } = (await admin(base, "/api/keys", { kind: "virtual", name: "bench", team: "bench" })) as { key: string };
      // A hard budget every call matches: each call is checked against it and settled with its cost.
      await admin(base, "/api/budgets", { name: "bench-hard", scope: { team: "bench" }, amount_usd: "1000000", period: "month", timezone: "UTC", thresholds: [100], mode: "hard" });
      gateway.target.headers = { ...json, authorization: `Bearer ${key}` };
    }
    const bare = floor ? forkBench("./proxy-floor.ts", { FLOOR_UPSTREAM: upstream }, floorArgs) : undefined;
    if (bare) children.push(bare);
    const floorPort = bare ? (await reply<{ port: number }>(bare)).port : NaN;
    const peerPort = await freePort();
    const portkey = peer ? await startPortkey(peerPort) : undefined;
    if (portkey) children.push(portkey);
    const first = gateways.get("tollgate")!;
    const targets: Record<string, Target> = {
      direct: { origin: upstream, path: "/v1/chat/completions", headers: { ...json, authorization: `Bearer ${MOCK_KEY}` } },
      portkey: {
        origin: `http://127.0.0.1:${peerPort}`,
        path: "/v1/chat/completions",
        headers: { ...json, authorization: `Bearer ${MOCK_KEY}`, "x-portkey-provider": "openai", "x-portkey-custom-host": `${upstream}/v1` },
      },
    };
    if (bare) targets.floor = { origin: `http://127.0.0.1:${floorPort}`, path: "/v1/chat/completions", headers: { ...json, authorization: `Bearer ${MOCK_KEY}` } };
    for (const [name, g] of gateways) targets[name] = g.target;
    const others = (name: string) => name === "tollgate" ? [...(portkey ? [targets.portkey!] : []), ...(bare ? [targets.floor!] : [])] : [];
    for (const [name, g] of gateways) await sanityCheck(g.target, others(name));
    const load = forkBench("./proxy-load.ts");
    children.push(load);
    const serverOf: Record<string, number> = { direct: mock.pid!, portkey: portkey?.pid ?? NaN, floor: bare?.pid ?? NaN };
    for (const [name, g] of gateways) serverOf[name] = g.child.pid!;
    const benchOf = (name: string) => [process.pid, load.pid!, ...(name === "direct" ? [] : [mock.pid!])];
    const databaseOf = (name: string) => gateways.get(name)?.database ?? databaseName;
    const stack: Stack = {
      databaseUrl: first.databaseUrl,
      dataDir: first.dataDir,
      gateway: first.child,
      gateways,
      peer: portkey,
      serverOf,
      targets,
      proxyRequests: 2,
      async measure<T>(name: string, message: Phase | ClosedLoop) {
        const startedQuiet = await quiet(QUIET_CPU, QUIET_WAIT_MS, interrupted.signal);
        if (interrupted.signal.aborted) throw new Error("interrupted");
        const watched = await watch({ server: serverOf[name]!, bench: benchOf(name), database: databaseOf(name) }, () => {
          load.send(message);
          return reply<T>(load).then(nullsToNaN);
        });
        return { ...watched, startedQuiet };
      },
      async run(name, stream, rate, seconds) {
        const measured = await stack.measure<PhaseResult>(name, { target: targets[name]!, stream, rate, seconds });
        if (name === "tollgate") stack.proxyRequests += measured.result.scheduled;
        console.log(`${name} ${stream ? "streamed" : "non-streamed"} ${rate}/s:`, JSON.stringify(measured));
        return measured;
      },
      close,
    };
    return stack;
  } catch (err) {
    await close();
    throw err;
  }
}

export async function benchProxy(options: ProxyBenchOptions): Promise<ProxyResult> {
  const startedAt = new Date();
  const loadBefore = loadavg();
  const stack = await startStack([], true, { workers: [options.workers], floor: true });
  try {
    const { serverOf } = stack;
    // Let the budget's lease and the first writes settle before reading idle memory.
    await sleep(2000);
    const idleRssMb = { tollgate: round1(treeRssMb(serverOf.tollgate!)), portkey: round1(treeRssMb(serverOf.portkey!)), tollgateAfter: NaN };

    // Warm-up: JIT, connection pools, the budget's lease.
    for (const name of PLAIN_TARGETS) await stack.run(name, false, 500, options.warmupSeconds);
    for (const name of STREAM_TARGETS) await stack.run(name, true, 500, options.warmupSeconds);

    const rows: RateRow[] = [];
    const rssPeakMb = { tollgate: 0, portkey: 0, tollgateClosed: 0, portkeyClosed: 0 };
    for (const stream of [false, true]) {
      for (const rate of options.rates) {
        const row: RateRow = { stream, rate, runs: {} };
        for (const name of stream ? STREAM_TARGETS : PLAIN_TARGETS) {
          const measured = await stack.run(name, stream, rate, options.seconds);
          row.runs[name] = measured;
          if (name === "tollgate" || name === "portkey") rssPeakMb[name] = Math.max(rssPeakMb[name], measured.usage.rssPeakMb);
        }
        rows.push(row);
      }
    }

    const closed: ProxyResult["closed"] = {};
    for (const name of PLAIN_TARGETS) {
      const measured = await stack.measure<ClosedResult>(name, { target: stack.targets[name]!, connections: options.closedConnections, seconds: options.closedSeconds });
      if (name === "tollgate") stack.proxyRequests += measured.result.completed + measured.result.errors;
      console.log(`${name} closed loop:`, JSON.stringify(measured));
      closed[name] = measured;
    }
    rssPeakMb.tollgateClosed = closed.tollgate!.usage.rssPeakMb;
    rssPeakMb.portkeyClosed = closed.portkey!.usage.rssPeakMb;
    await sleep(5000);
    idleRssMb.tollgateAfter = round1(treeRssMb(serverOf.tollgate!));

    // Shut down first: the gateway flushes its recorder on SIGTERM, so every row it will ever write is in.
    await stop(stack.gateway, 60_000);
    const recorded = await countRecorded(stack.databaseUrl);
    return {
      options,
      startedAt,
      source: gatewaySource(),
      portkeyVersion: portkeyVersion(),
      loadBefore,
      loadAfter: loadavg(),
      rows,
      closed,
      proxyRequests: stack.proxyRequests,
      recorded,
      journalBytes: bytesUnder(join(stack.dataDir, "journal")),
      idleRssMb,
      rssPeakMb,
      seconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    };
  } finally {
    await stack.close();
  }
}

export interface ProfileResult {
  startedAt: Date;
  source: string;
  /** Whose profile: Tollgate's or the floor's (the bare Node pass-through). */
  target: "tollgate" | "floor";
  rate: number;
  seconds: number;
  loadBefore: number[];
  phase: Measured;
  profile: ProfileSummary;
}

/**
 * A CPU profile (`node --cpu-prof`) of Tollgate (compiled dist/) or of the floor under the
 * open-loop load at `rate`, non-streamed, after a warm-up: where its CPU time goes.
 */
export async function profileProxy(rate: number, seconds: number, target: ProfileResult["target"] = "tollgate"): Promise<ProfileResult> {
  const startedAt = new Date();
  const loadBefore = loadavg();
  const dir = mkdtempSync(join(tmpdir(), "tollgate-bench-profile-"));
  const profiling = ["--cpu-prof", `--cpu-prof-dir=${dir}`, "--cpu-prof-interval=500"];
  const stack = target === "floor" ? await startStack([], false, { floor: true, floorArgs: profiling }) : await startStack(profiling, false);
  try {
    await stack.run(target, false, 500, 4);
    const phase = await stack.run(target, false, rate, seconds);
    // The profile is written as the process exits: the floor's when the stack closes.
    if (target === "tollgate") await stop(stack.gateway, 60_000);
    else await stack.close();
    const file = readdirSync(dir).find((name) => name.endsWith(".cpuprofile"));
    if (!file) throw new Error(`the ${target} wrote no CPU profile`);
    return { startedAt, source: gatewaySource(), target, rate, seconds, loadBefore, phase, profile: summariseProfile(join(dir, file)) };
  } finally {
    await stack.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A percentile of no answers is NaN, which crosses IPC as JSON null: back to NaN, so sums with it stay NaN. */
function nullsToNaN<T>(value: T): T {
  if (value === null) return NaN as T;
  if (typeof value !== "object") return value;
  for (const key of Object.keys(value as object)) (value as Record<string, unknown>)[key] = nullsToNaN((value as Record<string, unknown>)[key]);
  return value;
}

export const round1 = (v: number) => Math.round(v * 10) / 10;

export function portkeyVersion(): string {
  try {
    return (JSON.parse(execSync("npm ls @portkey-ai/gateway --json", { cwd: ROOT }).toString()) as { dependencies: Record<string, { version: string }> }).dependencies["@portkey-ai/gateway"]!.version;
  } catch {
    return "unknown";
  }
}
