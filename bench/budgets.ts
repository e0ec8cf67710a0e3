import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:http";
import { loadavg } from "node:os";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { Pool } from "undici";
import { OutboxNotifier } from "../src/alerts/outbox.ts";
import type { Scope } from "../src/budgets/budget.ts";
import { BudgetEvaluator } from "../src/budgets/evaluator.ts";
import { openDatabase } from "../src/db/connection.ts";
import { budgets, channels } from "../src/db/schema.ts";
import { createLogger } from "../src/logger.ts";
import { PICO_PER_USD } from "../src/pricing/money.ts";
import type { GateBenchRow } from "./budget-gate.ts";
import { ADMIN, startServer } from "./ingest.ts";
import { freshDatabase, percentile } from "./postgres.ts";
import { fill } from "./spend.ts";

/**
 * The budget bars of DESIGN.md §6 on real Postgres:
 * 1. 10,000 budgets evaluated in ≤ 1 s: `evaluateAll` in-process over a ledger filled as the spend
 *    bench fills it (the last 10 days), budgets of eight scope shapes, three periods and three
 *    time zones. The first run records and sends what the ledger already crossed; later runs
 *    find nothing new, which is the steady state of the every-minute job.
 * 2. Event to outbox ≤ 5 s (p95) under a steady 5,000 events/s: `tollgate serve` in its own
 *    process on the same database and budgets, jobs on (the minute job, the delivery worker
 *    posting to a local receiver), usage posted in batches of 1,000 every 200 ms. Every half second
 *    a probe event is posted alone for a budget it alone crosses; its latency is from just before
 *    its POST to when its alert's outbox row is seen by a poller reading every 25 ms.
 */
export interface BudgetsBenchResult {
  ledgerEvents: number;
  fillSeconds: number;
  budgets: number;
  userBudgets: number;
  firstRun: { ms: number; alerts: number; recorded: number };
  /** The machine's 1-minute load average as the evaluation runs began. */
  evaluationLoadAverage: number;
  steady: { runs: number; p50Ms: number; p95Ms: number; maxMs: number };
  latency: {
    seconds: number;
    targetRate: number;
    eventsPerSecond: number;
    /** Requests the gateway did not answer 200 (or at all). */
    failedRequests: number;
    probes: number;
    seen: number;
    p50Ms: number;
    p95Ms: number;
    maxMs: number;
    /** How long the gateway took to answer a probe's POST (the event recorded): part of the latency above. */
    ackP50Ms: number;
    ackP95Ms: number;
    /** The machine's 1-minute load average as the ingest began. */
    loadAverage: number;
  };
}

const DAY_MS = 86_400_000;
const ZONES = ["UTC", "Europe/Berlin", "America/New_York"];
const PERIODS = ["day", "week", "month"];
const MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "claude-haiku-4-5", "gemini-2.5-flash", "gemini-2.5-pro"];
const PROVIDERS = ["openai", "openai", "anthropic", "anthropic", "google", "google"];

/** Scopes over the values the spend bench's ledger uses: 12 teams, 48 projects, 96 features, 24 keys, 5,000 users. */
function scopeOf(i: number): Scope {
  switch (i % 20) {
    case 0:
      return {};
    case 1:
    case 2:
    case 3:
    case 4:
      return { team: `team-${i % 12}` };
    case 5:
    case 6:
    case 7:
    case 8:
      return { project: `project-${i % 48}` };
    case 9:
    case 10:
    case 11:
    case 12:
      return { feature: `feature-${i % 96}` };
    case 13:
    case 14:
      return { team: `team-${i % 12}`, model: MODELS[i % 6] };
    case 15:
    case 16:
      return { feature: `feature-${i % 96}`, model: MODELS[i % 6] };
    case 17:
    case 18:
      return { key: `key-${i % 24}` };
    default:
      return { user: `user-${(i * 7) % 5000}` };
  }
}

/** Amounts spread evenly on a log scale from $10 to $1,000,000, so some budgets of every shape are crossed. */
const amountOf = (i: number) => BigInt(Math.round(10 ** (1 + 5 * ((i * 0.618_033_988_75) % 1)) * 100)) * (PICO_PER_USD / 100n);

function budgetRows(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    id: randomUUID(),
    name: `bench-${i}`,
    scope: scopeOf(i),
    amount: amountOf(i).toString(),
    period: PERIODS[i % 3]!,
    timezone: ZONES[Math.floor(i / 3) % 3]!,
    thresholds: [50, 80, 100],
    mode: "soft",
  }));
}

const round = (n: number) => Math.round(n * 10) / 10;

async function evaluationBench(url: string, count: number): Promise<Pick<BudgetsBenchResult, "budgets" | "userBudgets" | "firstRun" | "evaluationLoadAverage" | "steady">> {
  const database = await openDatabase({ url, dataDir: "" });
  try {
    const rows = budgetRows(count);
    for (let i = 0; i < rows.length; i += 1000) await database.db.insert(budgets).values(rows.slice(i, i + 1000));
    // A channel no deliverer serves: the outbox rows are written, and stay.
    await database.db.insert(channels).values({ id: "bench-sink", platform: "bench", name: "sink", address: {}, kinds: ["alerts"] });
    const notifier = new OutboxNotifier(database, { scheduleMs: [1000, 1000] });
    const evaluator = new BudgetEvaluator(database, notifier, { anomalyMinSpend: 5n * PICO_PER_USD, logger: createLogger("silent") });
    const evaluationLoadAverage = round(loadavg()[0] ?? 0);
    let t0 = performance.now();
    const first = await evaluator.evaluateAll(new Date());
    const firstRun = { ms: Math.round(performance.now() - t0), alerts: first.alerts.length, recorded: first.recorded };
    const times: number[] = [];
    for (let i = 0; i < 12; i++) {
      t0 = performance.now();
      await evaluator.evaluateAll(new Date());
      if (i >= 2) times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    await database.db.delete(channels);
    return {
      budgets: count,
      userBudgets: rows.filter((r) => "user" in r.scope).length,
      firstRun,
      evaluationLoadAverage,
      steady: { runs: times.length, p50Ms: round(percentile(times, 50)), p95Ms: round(percentile(times, 95)), maxMs: round(times.at(-1) ?? 0) },
    };
  } finally {
    await database.close();
  }
}

function loadBody(batch: number, size: number): string {
  const ts = new Date().toISOString();
  const items: string[] = [];
  for (let i = 0; i < size; i++) {
    const n = batch * size + i;
    const m = n % 6;
    items.push(
      `{"id":"l${n}","timestamp":"${ts}","provider":"${PROVIDERS[m]}","model":"${MODELS[m]}","input_tokens":${1000 + (n % 5000)},"output_tokens":${100 + (n % 700)},"team":"team-${n % 12}","project":"project-${n % 48}","feature":"feature-${n % 96}","user":"user-${(n * 7919) % 5000}"}`,
    );
  }
  return `[${items.join(",")}]`;
}

async function latencyBench(url: string, opts: { seconds: number; rate: number; port: number }): Promise<BudgetsBenchResult["latency"]> {
  const receiver = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(204).end());
  });
  receiver.listen(0, "127.0.0.1");
  await once(receiver, "listening");
  const server = await startServer(url, opts.port, { TOLLGATE_JOBS: "on", LOG_LEVEL: process.env.BENCH_GATEWAY_LOG ?? "warn" });
  const base = `http://127.0.0.1:${opts.port}`;
  const admin = (path: string, body: unknown) =>
    fetch(base + path, { method: "POST", headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" }, body: JSON.stringify(body) }).then(async (r) => {
      if (!r.ok) throw new Error(`${path} answered ${r.status}: ${await r.text()}`);
      return (await r.json()) as Record<string, unknown>;
    });
  const database = await openDatabase({ url, dataDir: "" });
  try {
    const { key } = (await admin("/api/keys", { kind: "ingest", name: "bench" })) as { key: string };
    await admin("/api/channels", { platform: "webhook", name: "bench", url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, subscriptions: { kinds: ["alerts"] } });
    const probeCount = Math.ceil(opts.seconds * 2) + 2;
    for (let k = 0; k < probeCount; k++) await admin("/api/budgets", { name: `probe-${k}`, scope: { team: `probe-${k}` }, amount_usd: "0.000001", period: "month", thresholds: [100] });
    const [{ last }] = (await database.rows<{ last: string }>(sql`select coalesce(max(id), 0)::text as last from notifications`)) as [{ last: string }];

    const sentAt = new Map<string, number>();
    const seenAt = new Map<string, number>();
    let after = Number(last);
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const rows = await database
          .rows<{ id: string; names: string[] }>(
            sql`select id::text, jsonb_path_query_array(payload, '$.alerts[*].budget.name') as names from notifications where id > ${after} order by id`,
          )
          .catch(() => []);
        const now = Date.now();
        for (const r of rows) {
          after = Math.max(after, Number(r.id));
          for (const name of r.names) if (name?.startsWith("probe-") && !seenAt.has(name)) seenAt.set(name, now);
        }
        await sleep(25);
      }
    })();

    const pool = new Pool(base, { connections: 16 });
    // Probes have connections of their own: they wait for the gateway, never behind the load's requests in this client.
    const probePool = new Pool(base, { connections: 2 });
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    const post = async (body: string, via = pool) => {
      const res = await via.request({ path: "/v1/usage", method: "POST", headers, body });
      const answer = (await res.body.json()) as { accepted: number };
      if (res.statusCode !== 200) throw new Error(`ingest answered ${res.statusCode}`);
      return answer.accepted;
    };
    const batchSize = 1000;
    const intervalMs = (batchSize / opts.rate) * 1000;
    const inFlight = new Set<Promise<void>>();
    let accepted = 0;
    let failed = 0;
    const acks: number[] = [];
    const loadAverage = loadavg()[0] ?? 0;
    let batches = 0;
    let probes = 0;
    const started = Date.now();
    const deadline = started + opts.seconds * 1000;
    while (Date.now() < deadline) {
      const nextBatch = started + batches * intervalMs;
      const nextProbe = started + 250 + probes * 500;
      const wait = Math.min(nextBatch, nextProbe) - Date.now();
      if (wait > 0) await sleep(wait);
      if (Date.now() >= nextProbe) {
        const name = `probe-${probes++}`;
        const sent = Date.now();
        sentAt.set(name, sent);
        const p = post(`{"id":"${name}","timestamp":"${new Date().toISOString()}","provider":"openai","model":"gpt-4o","input_tokens":1000,"team":"${name}"}`, probePool).then(
          () => void acks.push(Date.now() - sent),
          () => void failed++,
        );
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
      // A client that falls behind skips batches rather than bursting: the rate is what it achieves.
      if (Date.now() >= nextBatch && inFlight.size < 64) {
        const p = post(loadBody(batches, batchSize)).then(
          (n) => void (accepted += n),
          () => void failed++,
        );
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
      if (Date.now() >= nextBatch) batches++;
    }
    await Promise.all(inFlight);
    const seconds = (Date.now() - started) / 1000;
    for (let i = 0; i < 200 && seenAt.size < sentAt.size; i++) await sleep(50);
    polling = false;
    await poller;
    await pool.close();
    await probePool.close();
    acks.sort((a, b) => a - b);
    const latencies = [...sentAt].flatMap(([name, sent]) => (seenAt.has(name) ? [seenAt.get(name)! - sent] : [])).sort((a, b) => a - b);
    return {
      seconds: round(seconds),
      targetRate: opts.rate,
      eventsPerSecond: Math.round(accepted / seconds),
      failedRequests: failed,
      probes: sentAt.size,
      seen: latencies.length,
      p50Ms: Math.round(percentile(latencies, 50)),
      p95Ms: Math.round(percentile(latencies, 95)),
      maxMs: Math.round(latencies.at(-1) ?? NaN),
      ackP50Ms: Math.round(percentile(acks, 50)),
      ackP95Ms: Math.round(percentile(acks, 95)),
      loadAverage: round(loadAverage),
    };
  } finally {
    server.kill("SIGTERM");
    receiver.close();
    await database.close();
  }
}

export async function benchBudgets(opts: { events: number; budgets: number; seconds: number; rate: number }): Promise<BudgetsBenchResult> {
  const url = await freshDatabase("tollgate_bench_budgets");
  const now = new Date();
  const started = performance.now();
  await fill(url, opts.events, [[new Date(now.getTime() - 10 * DAY_MS), now]]);
  const fillSeconds = Math.round((performance.now() - started) / 1000);
  const evaluation = await evaluationBench(url, opts.budgets);
  const latency = await latencyBench(url, { seconds: opts.seconds, rate: opts.rate, port: 18788 });
  return { ledgerEvents: opts.events, fillSeconds, ...evaluation, latency };
}

const n = (x: number) => x.toLocaleString("en-US");

/** The RESULTS.md section of a run. */
export function budgetsSection(r: BudgetsBenchResult, ranAt: string): string {
  const l = r.latency;
  return `## Budgets: evaluation of ${n(r.budgets)} budgets (target ≤ 1 s) and event to outbox under ${n(l.targetRate)} events/s (target p95 ≤ 5 s)

${ranAt}

| budgets | of which per user | ledger | first run (alerts sent) | steady run p50 | steady p95 | steady max |
|---:|---:|---:|---:|---:|---:|---:|
| ${n(r.budgets)} | ${n(r.userBudgets)} | ${n(r.ledgerEvents)} events over 10 days | ${n(r.firstRun.ms)} ms (${n(r.firstRun.alerts)}) | ${r.steady.p50Ms} ms | **${r.steady.p95Ms} ms** | ${r.steady.maxMs} ms |

| ingest for | events/s achieved | failed requests | probes | alerts seen | latency p50 | p95 | max | of which POST answered p50 / p95 |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| ${l.seconds} s | ${n(l.eventsPerSecond)} | ${l.failedRequests} | ${l.probes} | ${l.seen} | ${n(l.p50Ms)} ms | **${n(l.p95Ms)} ms** | ${n(l.maxMs)} ms | ${n(l.ackP50Ms)} / ${n(l.ackP95Ms)} ms |

Evaluation is timed in-process around \`evaluateAll\` on Postgres (ledger filled by the spend bench's
fill, in SQL); budgets have eight scope shapes (everything, team, project, feature, team+model,
feature+model, key, user), three periods (day, week, month) and three zones (UTC, Europe/Berlin,
America/New_York). The first run records ${n(r.firstRun.recorded)} firings and sends what the ledger had already
crossed, with each alert's top contributors; steady runs find nothing new. Latency: \`tollgate serve\` in
its own process, jobs on, usage posted in batches of 1,000; each probe is one event posted alone (on
connections of its own) for a budget only it crosses, timed from just before its POST to when a
poller (every 25 ms) sees its outbox row. Load generator, gateway and Postgres share the machine's
cores, with other work on the machine: the 1-minute load average was ${r.evaluationLoadAverage} as the
evaluation runs began and ${l.loadAverage} as the ingest began.`;
}

/** The RESULTS.md section of the hard-budget check (bench/budget-gate.ts, the enforcer's own bench). */
export function gateSection(r: { open: GateBenchRow; enforced: GateBenchRow[] }, ranAt: string): string {
  const line = (label: string, g: GateBenchRow) => `| ${label} | ${n(g.calls)} | ${g.p50Us} µs | **${g.p99Us} µs** | ${g.waited} |`;
  return `## Hard-budget check: what it adds to a proxied call (target p99 ≤ 50 µs)

${ranAt}

| hard budgets | calls | p50 | p99 | waited for a lease |
|---|---:|---:|---:|---:|
${[line("none (open gate)", r.open), ...r.enforced.map((g) => line(n(g.budgets), g))].join("\n")}

Timed in-process around the gate's \`check\` and the \`settle\` that follows it (bench/budget-gate.ts),
one call at a time, the call matching one of the budgets; leases taken before timing starts.`;
}
