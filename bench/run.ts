import { execSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { benchIngest } from "./ingest.ts";
import { benchSpend } from "./spend.ts";

/**
 * `npm run bench`: the ledger's bars from DESIGN.md §6, on the machine's real Postgres, written
 * to bench/RESULTS.md with the machine's details. BENCH_EVENTS shrinks the spend ledger for a
 * quick look; BENCH_REUSE=1 queries a ledger filled by an earlier run.
 */
const events = Number(process.env.BENCH_EVENTS ?? 10_000_000);
const which = process.argv[2] ?? "all";

const machine = [
  `- CPU: ${cpus().length} × ${cpus()[0]?.model ?? "unknown"}`,
  `- memory: ${Math.round(totalmem() / 2 ** 30)} GiB`,
  `- Node.js ${process.version}; ${execSync("psql --version").toString().trim()}`,
  `- run at ${new Date().toISOString()}`,
].join("\n");

const sections: string[] = [];
if (which === "all" || which === "ingest") {
  const r = await benchIngest({ seconds: Number(process.env.BENCH_SECONDS ?? 30), concurrency: 4, batchSize: 1000, port: 18787 });
  console.log("ingest", r);
  sections.push(`## Ingest: POST /v1/usage, batches of 1,000, into Postgres (target ≥ 50,000 events/s)

| events accepted | seconds | events/s | clients | batch p50 | batch p99 |
|---:|---:|---:|---:|---:|---:|
| ${r.events.toLocaleString("en-US")} | ${r.seconds.toFixed(1)} | **${r.eventsPerSecond.toLocaleString("en-US")}** | ${r.concurrency} | ${r.batchLatencyP50Ms} ms | ${r.batchLatencyP99Ms} ms |

The gateway runs as \`tollgate serve\` in its own process; the load generator, the gateway and
Postgres share the machine's cores. Every event is new, so each is checked against the dedupe key.`);
}
if (which === "all" || which === "spend") {
  const r = await benchSpend({ events, runs: Number(process.env.BENCH_RUNS ?? 200), reuse: process.env.BENCH_REUSE === "1" });
  console.log("spend", JSON.stringify(r, null, 2));
  const rows = Object.entries(r.queries)
    .map(([label, q]) => `| \`${label}\` | ${q.runs} | ${q.p50} ms | **${q.p95} ms** | ${q.p99} ms |`)
    .join("\n");
  sections.push(`## Spend queries over ${r.events.toLocaleString("en-US")} events this month (target: \`this-month by team\` p95 ≤ 50 ms)

| query | runs | p50 | p95 | p99 |
|---|---:|---:|---:|---:|
${rows}

Rollup rows: ${Object.entries(r.rollupRows).map(([g, n]) => `${g} ${n.toLocaleString("en-US")}`).join(", ")}. Ledger filled in ${r.fillSeconds} s
(in SQL, see bench/spend.ts). Timed in-process around \`querySpend\` (one round trip to Postgres).`);
}

const text = `# Benchmark results\n\nMachine:\n${machine}\n\n${sections.join("\n\n")}\n`;
writeFileSync(new URL("./RESULTS.md", import.meta.url), text);
console.log(text);
