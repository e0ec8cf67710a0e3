import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import { freshDatabase } from "./postgres.ts";
import { watch } from "./proc.ts";

/**
 * Usage webhook throughput into real Postgres: `tollgate serve` in its own process, batches of
 * 1,000 events posted over HTTP by concurrent clients for a fixed time, every event new (dedupe
 * is checked on each). Counts only events the gateway answered as accepted.
 */
export interface IngestResult {
  seconds: number;
  events: number;
  eventsPerSecond: number;
  batches: number;
  concurrency: number;
  batchLatencyP50Ms: number;
  batchLatencyP99Ms: number;
  /** CPU time per accepted event, in microseconds: the gateway's process, and Postgres serving its database. */
  gatewayCpuUsPerEvent: number;
  postgresCpuUsPerEvent: number;
  /** The machine's load average (1 min) as the load ended: absolute rates mean little when it is high. */
  loadAverage: number;
}

export const ADMIN = "bench-admin-token-0123456789";
const TEAMS = ["search", "support", "growth", "platform", "data", "ml", "infra", "mobile"];
const MODELS = [
  ["openai", "gpt-4o"],
  ["openai", "gpt-4o-mini"],
  ["anthropic", "claude-sonnet-4-5"],
  ["anthropic", "claude-haiku-4-5"],
  ["google", "gemini-2.5-flash"],
  ["google", "gemini-2.5-pro"],
];

/** `tollgate serve` in its own process on Postgres, with `env` added to its environment; resolves once it is ready. */
export async function startServer(databaseUrl: string, port: number, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, "bin/tollgate.js", "serve"], {
    env: { ...process.env, DATABASE_URL: databaseUrl, PORT: String(port), TOLLGATE_ADMIN_TOKEN: ADMIN, LOG_LEVEL: "warn", TOLLGATE_DATA_DIR: mkdtempSync(join(tmpdir(), "tollgate-bench-")), ...env },
    stdio: ["ignore", "inherit", "inherit"],
  });
  for (let i = 0; i < 100; i++) {
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
    if (ready) return child;
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill();
  throw new Error("the gateway did not become ready");
}

/** The body of one posted batch: `size` events numbered from batch × size, users u0..u1999. */
export function batchBody(batch: number, size: number, ts: string): string {
  const items: string[] = [];
  for (let i = 0; i < size; i++) {
    const n = batch * size + i;
    const [provider, model] = MODELS[n % MODELS.length]!;
    items.push(
      `{"id":"b${n}","timestamp":"${ts}","provider":"${provider}","model":"${model}","input_tokens":${1000 + (n % 5000)},"cached_input_tokens":${n % 3 === 0 ? 500 : 0},"output_tokens":${100 + (n % 700)},"team":"${TEAMS[n % TEAMS.length]}","project":"p${n % 24}","feature":"f${n % 48}","user":"u${n % 2000}"}`,
    );
  }
  return `[${items.join(",")}]`;
}

export async function benchIngest(opts: { seconds: number; concurrency: number; batchSize: number; port: number; database?: string; nodeArgs?: string[] }): Promise<IngestResult> {
  const database = opts.database ?? "tollgate_bench_ingest";
  const databaseUrl = await freshDatabase(database);
  const server = await startServer(databaseUrl, opts.port, {}, opts.nodeArgs);
  const base = `http://127.0.0.1:${opts.port}`;
  try {
    const keyRes = await fetch(`${base}/api/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ kind: "ingest", name: "bench" }),
    });
    const { key } = (await keyRes.json()) as { key: string };
    const pool = new Pool(base, { connections: opts.concurrency });
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    let next = 0;
    let accepted = 0;
    const latencies: number[] = [];
    const ts = new Date().toISOString();
    const started = performance.now();
    const deadline = started + opts.seconds * 1000;
    const client = async () => {
      while (performance.now() < deadline) {
        const body = batchBody(next++, opts.batchSize, ts);
        const t0 = performance.now();
        const res = await pool.request({ path: "/v1/usage", method: "POST", headers, body });
        const answer = (await res.body.json()) as { accepted: number };
        if (res.statusCode !== 200) throw new Error(`ingest answered ${res.statusCode}: ${JSON.stringify(answer)}`);
        latencies.push(performance.now() - t0);
        accepted += answer.accepted;
      }
    };
    // CPU per event is what a loaded machine changes least: rates alone swing with other work.
    const { usage } = await watch({ server: server.pid!, bench: [process.pid], database }, () => Promise.all(Array.from({ length: opts.concurrency }, client)));
    const seconds = (performance.now() - started) / 1000;
    const perEvent = (cpuPercent: number) => Math.round(((cpuPercent / 100) * usage.seconds * 1e6) / Math.max(accepted, 1));
    await pool.close();
    latencies.sort((a, b) => a - b);
    return {
      seconds,
      events: accepted,
      eventsPerSecond: Math.round(accepted / seconds),
      batches: latencies.length,
      concurrency: opts.concurrency,
      batchLatencyP50Ms: Math.round(latencies[Math.floor(latencies.length / 2)]!),
      batchLatencyP99Ms: Math.round(latencies[Math.floor(latencies.length * 0.99)]!),
      gatewayCpuUsPerEvent: Math.round((usage.serverCpuSeconds * 1e6) / Math.max(accepted, 1)),
      postgresCpuUsPerEvent: perEvent(usage.postgresCpu),
      loadAverage: Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]),
    };
  } finally {
    server.kill("SIGTERM");
  }
}
