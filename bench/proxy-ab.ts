import { loadavg } from "node:os";
import { resolve } from "node:path";
import postgres from "postgres";
import { type Stack, gatewaySource, startStack } from "./proxy.ts";
import type { ClosedResult } from "./proxy-shared.ts";
import type { Usage } from "./proc.ts";

/**
 * Builds of the gateway side by side (issue 13's regression hunt): one stack per build (its own
 * mock, load generator, database and journal), their phases interleaved round by round, so every
 * build meets the same machine. Besides latency and CPU, each phase counts the Postgres
 * transactions its database committed per call: a figure no noise on a shared machine moves.
 *
 * The floor (bench/proxy-floor.ts, a bare Node pass-through) runs beside them, labelled `floor`.
 *
 * `npm run bench proxy-ab` with BENCH_AB=label=dir,label=dir (each dir a checkout with dist/ built;
 * `.` is this one), BENCH_AB_ROUNDS, BENCH_PROXY_SECONDS, BENCH_PROXY_RATES (non-streamed),
 * BENCH_AB_STREAM_RATES and BENCH_PROXY_CLOSED_SECONDS (0 leaves the closed loop out).
 */
export interface AbOptions {
  builds: { label: string; root: string }[];
  rounds: number;
  seconds: number;
  rates: number[];
  streamRates: number[];
  closedSeconds: number;
}

/** One phase of one build: the added latency is read against the same round's direct phase. */
export interface AbPhase {
  label: string;
  kind: "plain" | "stream" | "closed";
  rate: number;
  round: number;
  calls: number;
  p50: number;
  p99: number;
  /** Streams: time to first byte. */
  ttfbP50?: number;
  ttfbP99?: number;
  perSecond?: number;
  usage: Usage;
  xactPerCall: number;
  startedQuiet: boolean;
}

/** Transactions committed in the database so far (pg_stat_database, flushed by Postgres within a second). */
async function committed(url: string, attempts = 10): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ n: string }[]>`select xact_commit as n from pg_stat_database where datname = current_database()`;
    return Number(row!.n);
  } catch (err) {
    // A server shared with others' test suites can be out of connections for a moment.
    if (attempts <= 1) throw err;
    await sleep(1_000);
    return committed(url, attempts - 1);
  } finally {
    await sql.end();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Postgres reports a backend's counters at most once a second; two reads of our own also commit. */
const STATS_SETTLE_MS = 1_500;

async function counted<T>(stack: Stack, run: () => Promise<T>): Promise<{ measured: T; xacts: number }> {
  await sleep(STATS_SETTLE_MS);
  const before = await committed(stack.databaseUrl);
  const measured = await run();
  await sleep(STATS_SETTLE_MS);
  // The read before is itself a transaction, counted in `after`.
  return { measured, xacts: (await committed(stack.databaseUrl)) - before - 1 };
}

export async function benchProxyAb(options: AbOptions): Promise<{ loadBefore: number[]; loadAfter: number[]; sources: Record<string, string>; phases: AbPhase[]; direct: AbPhase[] }> {
  const loadBefore = loadavg();
  const stacks: Stack[] = [];
  const phases: AbPhase[] = [];
  const direct: AbPhase[] = [];
  try {
    // Named by this run too: other runs of this bench on the same server must not drop ours.
    // The first stack also runs the floor (bench/proxy-floor.ts), measured each round beside the builds.
    for (const [i, build] of options.builds.entries()) stacks.push(await startStack([], false, { root: build.root, database: `tollgate_bench_ab_${process.pid}_${i}`, floor: i === 0 }));
    // Warm-up: JIT, connection pools, the budget's lease.
    for (const stack of stacks) for (const stream of [false, true]) await stack.run("tollgate", stream, 500, 4);
    for (const stream of [false, true]) await stacks[0]!.run("floor", stream, 500, 4);
    const kinds = [...options.rates.map((rate) => ({ stream: false, rate })), ...options.streamRates.map((rate) => ({ stream: true, rate }))];
    for (let round = 0; round < options.rounds; round++) {
      for (const { stream, rate } of kinds) {
        const kind = stream ? "stream" : "plain";
        const base = await stacks[0]!.run("direct", stream, rate, options.seconds);
        direct.push(phaseOf("direct", kind, rate, round, base.result, base.usage, NaN, base.startedQuiet));
        const bare = await stacks[0]!.run("floor", stream, rate, options.seconds);
        phases.push(phaseOf("floor", kind, rate, round, bare.result, bare.usage, NaN, bare.startedQuiet));
        // Each round starts with a different build, so none always runs first after the direct phase.
        for (let j = 0; j < stacks.length; j++) {
          const i = (j + round) % stacks.length;
          const stack = stacks[i]!;
          const { measured, xacts } = await counted(stack, () => stack.run("tollgate", stream, rate, options.seconds));
          phases.push(phaseOf(options.builds[i]!.label, kind, rate, round, measured.result, measured.usage, xacts, measured.startedQuiet));
          console.log(`ab row: ${row(phases.at(-1)!, direct)}`);
        }
      }
      if (options.closedSeconds > 0) {
        const bare = await stacks[0]!.measure<ClosedResult>("floor", { target: stacks[0]!.targets.floor!, connections: 32, seconds: options.closedSeconds });
        phases.push({ ...phaseOf("floor", "closed", 0, round, bare.result, bare.usage, NaN, bare.startedQuiet), perSecond: bare.result.perSecond });
        for (let j = 0; j < stacks.length; j++) {
          const i = (j + round) % stacks.length;
          const stack = stacks[i]!;
          const { measured, xacts } = await counted(stack, () => stack.measure<ClosedResult>("tollgate", { target: stack.targets.tollgate!, connections: 32, seconds: options.closedSeconds }));
          const r = measured.result;
          console.log(`${options.builds[i]!.label} closed loop: ${Math.round(r.perSecond)}/s`);
          phases.push({
            ...phaseOf(options.builds[i]!.label, "closed", 0, round, { completed: r.completed, latency: r.latency }, measured.usage, xacts, measured.startedQuiet),
            perSecond: r.perSecond,
          });
          console.log(`ab row: ${row(phases.at(-1)!, direct)}`);
        }
      }
    }
  } finally {
    for (const stack of stacks) await stack.close();
  }
  return { loadBefore, loadAfter: loadavg(), sources: Object.fromEntries(options.builds.map((b) => [b.label, gatewaySource(b.root)])), phases, direct };
}

function phaseOf(
  label: string,
  kind: AbPhase["kind"],
  rate: number,
  round: number,
  result: { completed: number; latency: { p50: number; p99: number }; ttfb?: { p50: number; p99: number } | undefined },
  usage: Usage,
  xacts: number,
  startedQuiet: boolean,
): AbPhase {
  return {
    label,
    kind,
    rate,
    round,
    calls: result.completed,
    p50: result.latency.p50,
    p99: result.latency.p99,
    ...(result.ttfb ? { ttfbP50: result.ttfb.p50, ttfbP99: result.ttfb.p99 } : {}),
    usage,
    xactPerCall: xacts / result.completed,
    startedQuiet,
  };
}

/** A table per kind and rate: each build's phases, latency added over the same round's direct phase. */
export function abTable(r: Awaited<ReturnType<typeof benchProxyAb>>): string {
  const lines = [
    `load average ${r.loadBefore.map((v) => v.toFixed(2)).join(" ")} → ${r.loadAfter.map((v) => v.toFixed(2)).join(" ")}; builds: ${Object.entries(r.sources).map(([l, s]) => `${l}=${s}`).join(", ")}`,
    "",
    "| build | kind | rate | round | added p50 ms | added p99 ms | added TTFB p99 ms | closed req/s | gateway µs/call | gateway waiting for a CPU, µs/call | Postgres µs/call | xact/call | foreign CPU % | quiet |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const p of r.phases) lines.push(row(p, r.direct));
  return lines.join("\n");
}

const f = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : "–");

/** One phase as a table row, its latency against the same round's direct phase. */
function row(p: AbPhase, direct: AbPhase[]): string {
  const d = direct.find((x) => x.kind === p.kind && x.rate === p.rate && x.round === p.round);
  // CPU per call from the CPU seconds used over the phase (serverCpuSeconds is the gateway's own).
  const perCall = (cpu: number) => ((cpu / 100) * p.usage.seconds * 1e6) / p.calls;
  return `| ${p.label} | ${p.kind} | ${p.rate || "–"} | ${p.round} | ${d ? f(p.p50 - d.p50) : "–"} | ${d ? f(p.p99 - d.p99) : "–"} | ${d && p.ttfbP99 !== undefined ? f(p.ttfbP99 - d.ttfbP99!) : "–"} | ${p.perSecond ? Math.round(p.perSecond) : "–"} | ${Math.round((p.usage.serverCpuSeconds * 1e6) / p.calls)} | ${Math.round((p.usage.serverWaitSeconds * 1e6) / p.calls)} | ${Math.round(perCall(p.usage.postgresCpu))} | ${f(p.xactPerCall, 3)} | ${p.usage.foreignCpu} | ${p.startedQuiet ? "yes" : "no"} |`;
}

export function abOptionsFromEnv(env = process.env): AbOptions {
  const list = (v: string | undefined, fallback: string) => (v ?? fallback).split(",").filter(Boolean).map(Number);
  const builds = (env.BENCH_AB ?? "this=.").split(",").map((pair) => {
    const [label, dir] = pair.split("=");
    return { label: label!, root: resolve(dir ?? label!) };
  });
  return {
    builds,
    rounds: Number(env.BENCH_AB_ROUNDS ?? 2),
    seconds: Number(env.BENCH_PROXY_SECONDS ?? 8),
    rates: list(env.BENCH_PROXY_RATES, "1000"),
    streamRates: list(env.BENCH_AB_STREAM_RATES, "500"),
    closedSeconds: Number(env.BENCH_PROXY_CLOSED_SECONDS ?? 8),
  };
}
