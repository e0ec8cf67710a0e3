import { execSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { benchBudgetGate } from "./budget-gate.ts";
import { benchBudgets, budgetsSection, gateSection } from "./budgets.ts";
import { benchCrash, crashSection } from "./crash.ts";
import { benchDashboard } from "./dashboard.ts";
import { benchIngest } from "./ingest.ts";
import { benchIngestFloor } from "./ingest-floor.ts";
import { benchMemory, memorySection, parseVariant } from "./memory.ts";
import { benchProxy, gatewaySource, profileProxy } from "./proxy.ts";
import { abOptionsFromEnv, abTable, benchProxyAb } from "./proxy-ab.ts";
import { benchSyscalls, syscallSection } from "./proxy-syscalls.ts";
import { benchRecorderTrickle } from "./recorder-trickle.ts";
import { profileSection, proxySection } from "./proxy-report.ts";
import { benchWorkers, workersSection } from "./proxy-workers.ts";
import { benchSlack, slackSection } from "./slack.ts";
import { benchSpend } from "./spend.ts";

/**
 * `npm run bench [ingest|ingest-floor|spend|dashboard|proxy|proxy-workers|proxy-ab|proxy-syscalls|recorder-trickle|memory|budgets|slack|crash]`: the bars from DESIGN.md §6, on the machine's real
 * Postgres, written to bench/RESULTS.md. Each bench replaces only its own section (found by its
 * heading), so running one keeps the others' figures and any notes written by hand.
 * BENCH_FLOOR_BATCHES and BENCH_FLOOR_FOLD_EVERY size the ingest floor (batches per line, writes per fold).
 * BENCH_EVENTS shrinks the spend ledger for a quick look; BENCH_REUSE=1 queries a ledger filled by
 * an earlier run; BENCH_PROXY_SECONDS, BENCH_PROXY_CLOSED_SECONDS and BENCH_PROXY_RATES size the proxy phases,
 * BENCH_PROXY_WORKERS sets Tollgate's TOLLGATE_WORKERS (`proxy`; a list such as 1,2 for `proxy-workers`, which
 * compares them in one run, BENCH_WORKERS_ROUNDS times over, at BENCH_WORKERS_RATE open loop)
 * (BENCH_GATEWAY_NODE_ARGS gives the gateway's node options); BENCH_MEMORY_VARIANTS, BENCH_MEMORY_ROUNDS,
 * BENCH_MEMORY_SECONDS and BENCH_MEMORY_RATE shape the memory bench; BENCH_BUDGET_EVENTS,
 * BENCH_BUDGETS and BENCH_BUDGET_SECONDS size the budgets bench.
 */
const events = Number(process.env.BENCH_EVENTS ?? 10_000_000);
const which = process.argv[2] ?? "all";
const RESULTS = new URL("./RESULTS.md", import.meta.url);

const machine = [
  `- CPU: ${cpus().length} × ${cpus()[0]?.model ?? "unknown"}`,
  `- memory: ${Math.round(totalmem() / 2 ** 30)} GiB`,
  `- Node.js ${process.version}; ${execSync("psql --version").toString().trim()}`,
].join("\n");

/** Sections of the results file, each from its `## ` heading up to the next. */
function readSections(): string[] {
  if (!existsSync(RESULTS)) return [];
  const text = readFileSync(RESULTS, "utf8");
  const start = text.search(/^## /m);
  if (start === -1) return [];
  return text.slice(start).split(/^(?=## )/m).map((s) => s.trim());
}

const sections = readSections();
/** Puts a section in place of the one whose heading starts the same way, or at the end. */
function put(headingStart: string, section: string): void {
  const at = sections.findIndex((s) => s.startsWith(headingStart));
  if (at === -1) sections.push(section);
  else sections[at] = section;
  writeFileSync(RESULTS, `# Benchmark results\n\nMachine (each section says when it ran):\n${machine}\n\n${sections.join("\n\n")}\n`);
}
const ranAt = () => `Run at ${new Date().toISOString()}, load average ${loadavg().map((l) => l.toFixed(1)).join(", ")} (1, 5, 15 min).`;

if (which === "all" || which === "ingest") {
  const r = await benchIngest({ seconds: Number(process.env.BENCH_SECONDS ?? 30), concurrency: 4, batchSize: 1000, port: Number(process.env.BENCH_PORT ?? 18787), database: process.env.BENCH_INGEST_DATABASE, nodeArgs: (process.env.BENCH_GATEWAY_NODE_ARGS ?? "").split(" ").filter(Boolean) });
  console.log("ingest", r);
  put(
    "## Ingest:",
    `## Ingest: POST /v1/usage, batches of 1,000, into Postgres (target ≥ 50,000 events/s)

${ranAt()}

| events accepted | seconds | events/s | clients | batch p50 | batch p99 | gateway CPU per event | Postgres CPU per event | load (1 min) |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| ${r.events.toLocaleString("en-US")} | ${r.seconds.toFixed(1)} | **${r.eventsPerSecond.toLocaleString("en-US")}** | ${r.concurrency} | ${r.batchLatencyP50Ms} ms | ${r.batchLatencyP99Ms} ms | ${r.gatewayCpuUsPerEvent} µs | ${r.postgresCpuUsPerEvent} µs | ${r.loadAverage} |

The gateway runs as \`tollgate serve\` in its own process; the load generator, the gateway and
Postgres share the machine's cores. Every event is new, so each is checked against the dedupe key.
CPU per event is the gateway's process time and its database's Postgres backends' time over the
load, divided by the events accepted: on a loaded machine it moves far less than the rate does.`,
  );
}
if (which === "all" || which === "ingest-floor") {
  const lines = await benchIngestFloor({ batches: Number(process.env.BENCH_FLOOR_BATCHES ?? 100), foldEvery: Number(process.env.BENCH_FLOOR_FOLD_EVERY ?? 25) });
  console.log("ingest floor", lines);
  const us = (kind: string) => lines.filter((l) => l.kind === kind).reduce((sum, l) => sum + l.cpuUsPerEvent, 0);
  // A write's ceiling counts the folds it leaves (none before folds existed); COPY's counts none, as it writes no rollup.
  const ceiling = (l: (typeof lines)[number]) => (l.kind === "write" || l.kind === "copy" ? Math.round(2e6 / (us("parse") + l.cpuUsPerEvent + (l.kind === "write" ? us("fold") : 0))).toLocaleString("en-US") : "");
  put(
    "## Ingest floor:",
    `## Ingest floor: one batch of 1,000 bench events, each side measured alone (\`npm run bench ingest-floor\`)

${ranAt()}

| what | CPU per event | wall per batch | ceiling on 2 cores: parse + write (+ folds), events/s |
|---|---:|---:|---:|
${lines.map((l) => `| ${l.what} | ${l.cpuUsPerEvent.toFixed(1)} µs | ${l.msPerBatch.toFixed(1)} ms | ${ceiling(l)} |`).join("\n")}

One process at a time, no HTTP and no concurrency: the least each side needs. The ceiling is
2 cores' worth of CPU time over (parse + write + folds) per event, with nothing else running: the HTTP
server, the answer, the load generator and evaluation after writes all come on top.`,
  );
}
if (which === "all" || which === "spend") {
  const r = await benchSpend({ events, runs: Number(process.env.BENCH_RUNS ?? 200), reuse: process.env.BENCH_REUSE === "1" });
  console.log("spend", JSON.stringify(r, null, 2));
  const rows = Object.entries(r.queries)
    .map(([label, q]) => `| \`${label}\` | ${q.runs} | ${q.p50} ms | **${q.p95} ms** | ${q.p99} ms |`)
    .join("\n");
  put(
    "## Spend queries",
    `## Spend queries over ${r.events.toLocaleString("en-US")} events this month (targets: \`this-month by user\` p95 ≤ 200 ms, every other p95 ≤ 50 ms)

${ranAt()}

| query | runs | p50 | p95 | p99 |
|---|---:|---:|---:|---:|
${rows}

Rollup rows: ${Object.entries(r.rollupRows).map(([g, n]) => `${g} ${n.toLocaleString("en-US")}`).join(", ")}. Ledger filled in ${r.fillSeconds} s
(in SQL, see bench/spend.ts). Timed in-process around \`querySpend\` (one round trip to Postgres).`,
  );
}
if (which === "all" || which === "dashboard") {
  // After the spend bench, on its ledger; alone, BENCH_REUSE=1 takes the one an earlier run filled.
  const r = await benchDashboard({ events, runs: Number(process.env.BENCH_RUNS ?? 50), reuse: which === "all" || process.env.BENCH_REUSE === "1" });
  console.log("dashboard", JSON.stringify(r, null, 2));
  const rows = Object.entries(r.pages)
    .map(([path, q]) => `| \`${path}\` | ${q.runs} | ${q.p50} ms | **${q.p95} ms** | ${q.p99} ms | ${Math.round(q.bytes / 1024)} KiB |`)
    .join("\n");
  put(
    "## Dashboard pages",
    `## Dashboard pages over ${r.events.toLocaleString("en-US")} events this month (target: p95 ≤ 200 ms)

${ranAt()}

| page | runs | p50 | p95 | p99 | size |
|---|---:|---:|---:|---:|---:|
${rows}

The gateway in-process on the spend bench's ledger, signed in with the admin token; each page
fetched in turn and timed to its last byte. The overview reads its totals and tops, the daily
chart in one by-day query, budgets, alerts and raises.`,
  );
}
if (which === "all" || which === "proxy") {
  const r = await benchProxy({
    seconds: Number(process.env.BENCH_PROXY_SECONDS ?? 8),
    warmupSeconds: Number(process.env.BENCH_PROXY_WARMUP_SECONDS ?? 4),
    closedSeconds: Number(process.env.BENCH_PROXY_CLOSED_SECONDS ?? 10),
    closedConnections: 32,
    rates: (process.env.BENCH_PROXY_RATES ?? "200,500,1000,2000").split(",").map(Number),
    workers: Number(process.env.BENCH_PROXY_WORKERS ?? 1),
  });
  put("## Proxy overhead:", proxySection(r));
}
if (which === "proxy-workers") {
  const r = await benchWorkers({
    workers: (process.env.BENCH_PROXY_WORKERS ?? "1,2").split(",").map(Number),
    rounds: Number(process.env.BENCH_WORKERS_ROUNDS ?? 2),
    rate: Number(process.env.BENCH_WORKERS_RATE ?? 1000),
    seconds: Number(process.env.BENCH_PROXY_SECONDS ?? 8),
    warmupSeconds: Number(process.env.BENCH_PROXY_WARMUP_SECONDS ?? 4),
    closedSeconds: Number(process.env.BENCH_PROXY_CLOSED_SECONDS ?? 10),
    closedConnections: 32,
  });
  put("## Proxy workers:", workersSection(r));
}
if (which === "proxy-ab") {
  // Builds compared against each other (bench/proxy-ab.ts): printed, never written as headline figures.
  console.log(abTable(await benchProxyAb(abOptionsFromEnv())));
}
if (which === "proxy-syscalls") {
  // Counts per call (bench/proxy-syscalls.ts), build against build: printed, like proxy-ab.
  const rate = Number(process.env.BENCH_SYSCALL_RATE ?? 200);
  const seconds = Number(process.env.BENCH_SYSCALL_SECONDS ?? 5);
  console.log(syscallSection(await benchSyscalls(abOptionsFromEnv().builds, rate, seconds), rate, seconds));
}
if (which === "recorder-trickle") {
  const { builds, rounds } = abOptionsFromEnv();
  const rates = (process.env.BENCH_TRICKLE_RATES ?? "200,1000").split(",").map(Number);
  console.log(await benchRecorderTrickle(builds, rates, Number(process.env.BENCH_TRICKLE_SECONDS ?? 5), rounds));
}
if (which === "memory") {
  // BENCH_MEMORY_VARIANTS: variants separated by ";", each "default" or space-separated NAME=value, --node-option and root=<checkout> tokens.
  const options = {
    variants: (process.env.BENCH_MEMORY_VARIANTS ?? "default").split(";").map(parseVariant),
    rounds: Number(process.env.BENCH_MEMORY_ROUNDS ?? 1),
    seconds: Number(process.env.BENCH_MEMORY_SECONDS ?? 8),
    rate: Number(process.env.BENCH_MEMORY_RATE ?? 1000),
    connections: 32,
  };
  const startedAt = new Date();
  const runs = await benchMemory(options);
  put("## Memory under the proxy load", memorySection(options, runs, startedAt, gatewaySource()));
}
if (which === "proxy-profile") {
  // BENCH_PROFILE_TARGET=floor profiles the bare Node pass-through instead, in a section of its own.
  const target = process.env.BENCH_PROFILE_TARGET === "floor" ? "floor" : "tollgate";
  const r = await profileProxy(Number(process.env.BENCH_PROFILE_RATE ?? 1000), Number(process.env.BENCH_PROFILE_SECONDS ?? 15), target);
  put(target === "floor" ? "## Proxy CPU profile of the floor:" : "## Proxy CPU profile:", profileSection(r));
}
if (which === "all" || which === "budgets") {
  const r = await benchBudgets({
    events: Number(process.env.BENCH_BUDGET_EVENTS ?? 1_000_000),
    budgets: Number(process.env.BENCH_BUDGETS ?? 10_000),
    seconds: Number(process.env.BENCH_BUDGET_SECONDS ?? 60),
    rate: 5000,
  });
  console.log("budgets", JSON.stringify(r, null, 2));
  put("## Budgets:", budgetsSection(r, ranAt()));
  const gate = await benchBudgetGate();
  console.log("budget gate", JSON.stringify(gate, null, 2));
  put("## Hard-budget check:", gateSection(gate, ranAt()));
}
if (which === "all" || which === "slack") {
  const r = await benchSlack({ runs: Number(process.env.BENCH_SLACK_RUNS ?? 100), days: 60 });
  console.log("slack", JSON.stringify(r, null, 2));
  put("## Slack:", slackSection(r, ranAt()));
}
if (which === "all" || which === "crash") {
  const r = await benchCrash({ rounds: Number(process.env.BENCH_CRASH_ROUNDS ?? 3), clients: 16, loadSeconds: Number(process.env.BENCH_CRASH_SECONDS ?? 5) });
  console.log("crash", JSON.stringify(r, null, 2));
  // A run of another checkout (BENCH_CRASH_ROOT) is for comparing, not for the results file.
  if (!process.env.BENCH_CRASH_ROOT) put("## Crash:", crashSection(r, ranAt()));
}
console.log(readFileSync(RESULTS, "utf8"));
