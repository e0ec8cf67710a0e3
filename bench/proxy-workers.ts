import { loadavg } from "node:os";
import { type ClosedMeasured, type Measured, QUIET_CPU, gatewaySource, startStack, workersTarget } from "./proxy.ts";
import type { ClosedResult } from "./proxy-shared.ts";
import { treeRssMb } from "./proc.ts";

/**
 * Tollgate with TOLLGATE_WORKERS=1 against n workers (issue 13: closed loop ≥ 8× Portkey and ≥ 0.25×
 * the mock), in one run on one machine: one gateway per worker count (each its own port, data
 * folder and database, one hard budget matching every call), the mock and Portkey. Each round runs
 * the closed loop for every target, then the open loop at one rate for direct and each gateway,
 * back to back; rounds repeat it, so a neighbour's burst shows as a round that disagrees.
 */

export interface WorkersBenchOptions {
  /** TOLLGATE_WORKERS of each gateway, the first the baseline (1 to compare with one process). */
  workers: number[];
  rounds: number;
  rate: number;
  seconds: number;
  warmupSeconds: number;
  closedSeconds: number;
  closedConnections: number;
}

export interface WorkersRound {
  closed: Record<string, ClosedMeasured>;
  open: Record<string, Measured>;
}

export interface WorkersResult {
  options: WorkersBenchOptions;
  startedAt: Date;
  source: string;
  loadBefore: number[];
  loadAfter: number[];
  /** Each gateway's RSS after start-up and the sanity calls, all its processes together. */
  idleRssMb: Record<string, number>;
  rounds: WorkersRound[];
  seconds: number;
}

const nameOf = (workers: number[], i: number) => (i === 0 ? "tollgate" : workersTarget(workers[i]!));

export async function benchWorkers(options: WorkersBenchOptions): Promise<WorkersResult> {
  const startedAt = new Date();
  const loadBefore = loadavg();
  // Databases of its own: another bench running meanwhile (bench:proxy) recreates tollgate_bench_proxy.
  const stack = await startStack([], true, { workers: options.workers, database: "tollgate_bench_workers" });
  try {
    const gateways = options.workers.map((_, i) => nameOf(options.workers, i));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const idleRssMb = Object.fromEntries(gateways.map((g) => [g, Math.round(treeRssMb(stack.serverOf[g]!))]));
    for (const name of ["direct", ...gateways, "portkey"]) await stack.run(name, false, 500, options.warmupSeconds);
    const rounds: WorkersRound[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const closed: Record<string, ClosedMeasured> = {};
      for (const name of ["direct", ...gateways, "portkey"]) {
        closed[name] = await stack.measure<ClosedResult>(name, { target: stack.targets[name]!, connections: options.closedConnections, seconds: options.closedSeconds });
        console.log(`round ${round + 1} ${name} closed loop:`, JSON.stringify(closed[name]));
      }
      const open: Record<string, Measured> = {};
      for (const name of ["direct", ...gateways]) open[name] = await stack.run(name, false, options.rate, options.seconds);
      rounds.push({ closed, open });
    }
    return { options, startedAt, source: gatewaySource(), loadBefore, loadAfter: loadavg(), idleRssMb, rounds, seconds: Math.round((Date.now() - startedAt.getTime()) / 1000) };
  } finally {
    await stack.close();
  }
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : "–");
const times = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : "–");
const perCallUs = (m: { usage: Measured["usage"]; result: { completed: number } }) => (m.result.completed > 0 ? int((m.usage.serverCpuSeconds / m.result.completed) * 1e6) : "–");
const rss = (m: { usage: Measured["usage"] }) => `${m.usage.rssPeakMb} (${m.usage.rssPeakEachMb.join(" + ")})`;
const other = (m: { usage: Measured["usage"]; startedQuiet: boolean }) => `${m.usage.foreignCpu} %${m.startedQuiet ? "" : " †"}`;

export function workersSection(r: WorkersResult): string {
  const o = r.options;
  const gateways = o.workers.map((w, i) => ({ name: nameOf(o.workers, i), label: `Tollgate, ${w} worker${w === 1 ? " (one process)" : "s"}` }));
  const label = (name: string) => gateways.find((g) => g.name === name)?.label ?? { direct: "mock upstream, direct", portkey: "Portkey's gateway" }[name] ?? name;
  const load = (l: number[]) => l.map((v) => v.toFixed(1)).join(" / ");
  const closedRows = r.rounds.flatMap((round, i) =>
    Object.entries(round.closed).map(([name, m]) => {
      const gateway = name !== "direct" && name !== "portkey";
      return `| ${i + 1} | ${label(name)} | ${int(m.result.perSecond)} | ${int(m.result.errors)} | ${ms(m.result.latency.p50)} / ${ms(m.result.latency.p99)} | ${m.usage.serverCpu} % | ${perCallUs(m)} | ${m.usage.postgresCpu} % | ${gateway ? times(m.result.perSecond / round.closed.portkey!.result.perSecond) : "–"} | ${gateway ? times(m.result.perSecond / round.closed.direct!.result.perSecond) : "–"} | ${name === "direct" ? "–" : rss(m)} | ${other(m)} |`;
    }),
  );
  const openRows = r.rounds.flatMap((round, i) =>
    Object.entries(round.open).map(([name, m]) => {
      const d = round.open.direct!.result.latency;
      const l = m.result.latency;
      const added = name === "direct" ? "–" : `${ms(l.p50 - d.p50)} / ${ms(l.p99 - d.p99)}`;
      return `| ${i + 1} | ${label(name)} | ${ms(l.p50)} / ${ms(l.p90)} / ${ms(l.p99)} | ${added} | ${int(m.result.errors)} | ${m.usage.serverCpu} % | ${perCallUs(m)} | ${name === "direct" ? "–" : rss(m)} | ${other(m)} |`;
    }),
  );
  return `## Proxy workers: Tollgate with ${o.workers.join(" vs ")} workers, closed loop and ${int(o.rate)} req/s, one interleaved run

Run at ${r.startedAt.toISOString()} with \`npm run bench:proxy-workers\` (bench/proxy-workers.ts), ${r.seconds} s in all; Tollgate at
${r.source} (compiled \`dist/\`, PostgreSQL, recording on, one hard budget matching every call; each gateway its own
database). Load average (1 / 5 / 15 min): ${load(r.loadBefore)} as the run began, ${load(r.loadAfter)} as it ended.
${o.rounds} rounds; each: the closed loop (${o.closedConnections} connections, ${o.closedSeconds} s) for every target, then the open loop
(${int(o.rate)} req/s on 64 connections, ${o.seconds} s) for direct and each gateway. Server CPU and RSS count all of a
gateway's processes (primary and workers); RSS is the peak of their sum, with each process's own peak in
brackets, the primary first. Each phase waited up to a few seconds for a machine under ${QUIET_CPU} % (100 % = one core; †
marks one that started without it). Idle RSS after start-up: ${gateways.map((g) => `${g.label} ${r.idleRssMb[g.name]} MB`).join("; ")}.

### Closed loop, non-streamed

| round | target | req/s | errors | p50 / p99 ms | server CPU | CPU per call, µs | Postgres CPU | ÷ Portkey | ÷ mock | RSS peak MB (each) | other work CPU |
|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---|---|
${closedRows.join("\n")}

### Open loop at ${int(o.rate)} req/s, non-streamed (ms)

| round | target | p50 / p90 / p99 | added p50 / p99 | errors | server CPU | CPU per call, µs | RSS peak MB (each) | other work CPU |
|---:|---|---|---|---:|---:|---:|---|---|
${openRows.join("\n")}`;
}
