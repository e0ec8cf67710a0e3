import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Stack, round1, startStack } from "./proxy.ts";
import type { ClosedResult, PhaseResult, Summary } from "./proxy-shared.ts";
import type { Usage } from "./proc.ts";
import { type ResidentParts, residentParts } from "./smaps.ts";

/**
 * Where the gateway's memory is under the proxy bench's load (DESIGN.md §6: RSS ≤ 150 MB under it,
 * ≤ 100 MB idle), and what a change of node options or environment does to it and to CPU per call.
 * Each variant runs the same phases on its own fresh stack (mock, Tollgate on Postgres with one
 * hard budget); variants alternate, round after round, so a busy machine weighs on all of them.
 * Inside the gateway, bench/memory-probe.mjs records V8's heap every 250 ms; from outside, the
 * phase's RSS peak and, at its end, /proc/<pid>/smaps split by kind.
 */

export interface MemoryVariant {
  /** As given: space-separated `NAME=value` (environment), `--flag` (node option) and `root=<checkout>` tokens, or "default". */
  label: string;
  env: Record<string, string>;
  nodeArgs: string[];
  /** The checkout (with its dist/ built) the gateway runs from; this one when not given. */
  root?: string;
}

/** `"MALLOC_ARENA_MAX=2 --max-semi-space-size=4 root=/tmp/main"` → its environment, node options and build. */
export function parseVariant(label: string): MemoryVariant {
  const tokens = label.split(" ").filter((t) => t && t !== "default");
  const env: Record<string, string> = {};
  const nodeArgs: string[] = [];
  let root: string | undefined;
  for (const token of tokens) {
    if (token.startsWith("--")) nodeArgs.push(token);
    else if (token.startsWith("root=")) root = token.slice("root=".length);
    else {
      const at = token.indexOf("=");
      if (at < 1) throw new Error(`a memory variant's token is NAME=value or --flag, not ${token}`);
      env[token.slice(0, at)] = token.slice(at + 1);
    }
  }
  return { label, env, nodeArgs, ...(root ? { root } : {}) };
}

/** V8's view, from the probe: the largest figures seen over the phase. */
export interface HeapPeak {
  heapTotal: number;
  heapUsed: number;
  newSpace: number;
  oldSpace: number;
  codeSpace: number;
  external: number;
  arrayBuffers: number;
}

export interface MemoryPhase {
  name: string;
  rssPeakMb: number;
  /** At the phase's end. */
  parts: ResidentParts;
  heap: HeapPeak;
  /** Gateway CPU time per answered call, µs; NaN for idle stretches. */
  cpuUsPerCall: number;
  calls: number;
  errors: number;
  firstError: string | undefined;
  /** The calls' latency, send to last byte, ms; NaN for idle stretches. */
  latency: { p50: number; p99: number };
}

export interface MemoryRun {
  variant: string;
  round: number;
  loadBefore: number[];
  phases: MemoryPhase[];
}

export interface MemoryOptions {
  variants: MemoryVariant[];
  rounds: number;
  seconds: number;
  rate: number;
  connections: number;
}

const PROBE = fileURLToPath(new URL("./memory-probe.mjs", import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface ProbeLine {
  t: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  spaces: Record<string, { size: number; used: number; physical: number }>;
}

function probeLines(file: string, from: number, to: number): ProbeLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ProbeLine)
    .filter((l) => l.t >= from && l.t <= to);
}

function heapPeak(lines: ProbeLine[]): HeapPeak {
  const max = (f: (l: ProbeLine) => number) => (lines.length ? Math.max(...lines.map(f)) : NaN);
  return {
    heapTotal: max((l) => l.heapTotal),
    heapUsed: max((l) => l.heapUsed),
    newSpace: max((l) => l.spaces.new_space?.physical ?? 0),
    oldSpace: max((l) => l.spaces.old_space?.physical ?? 0),
    codeSpace: max((l) => l.spaces.code_space?.physical ?? 0),
    external: max((l) => l.external),
    arrayBuffers: max((l) => l.arrayBuffers),
  };
}

interface Worked {
  usage: Usage;
  calls: number;
  errors: number;
  firstError?: string | undefined;
  latency?: Summary;
}

async function phase(name: string, stack: Stack, probe: string, work: () => Promise<Worked>): Promise<MemoryPhase> {
  const from = Date.now();
  const { usage, calls, errors, firstError, latency } = await work();
  await sleep(300);
  const to = Date.now();
  return {
    name,
    rssPeakMb: usage.rssPeakMb,
    parts: residentParts(stack.serverOf.tollgate!),
    heap: heapPeak(probeLines(probe, from, to)),
    cpuUsPerCall: calls > 0 ? Math.round((usage.serverCpuSeconds / calls) * 1e6) : NaN,
    calls,
    errors,
    firstError,
    latency: { p50: latency?.p50 ?? NaN, p99: latency?.p99 ?? NaN },
  };
}

async function idle(stack: Stack, ms: number): Promise<Worked> {
  const t0 = Date.now();
  await sleep(ms);
  const rss = residentParts(stack.serverOf.tollgate!).rss;
  return { usage: { rssPeakMb: rss, rssPeakEachMb: [rss], rssMeanMb: rss, serverCpu: 0, seconds: (Date.now() - t0) / 1000, serverCpuSeconds: 0, serverWaitSeconds: 0, benchCpu: 0, postgresCpu: 0, foreignCpu: 0 }, calls: 0, errors: 0 };
}

async function runVariant(variant: MemoryVariant, round: number, options: MemoryOptions): Promise<MemoryRun> {
  const loadBefore = loadavg();
  const dir = mkdtempSync(join(tmpdir(), "tollgate-bench-memory-"));
  const probe = join(dir, "probe.jsonl");
  const stack = await startStack(["--import", PROBE, ...variant.nodeArgs], false, { env: { ...variant.env, BENCH_MEMORY_PROBE: probe }, database: "tollgate_bench_memory", ...(variant.root ? { root: variant.root } : {}) });
  try {
    const open = (stream: boolean) => async () => {
      const m = await stack.measure<PhaseResult>("tollgate", { target: stack.targets.tollgate!, stream, rate: options.rate, seconds: options.seconds });
      return { usage: m.usage, calls: m.result.completed, errors: m.result.errors, firstError: m.result.firstError, latency: m.result.latency };
    };
    const phases = [
      await phase("idle after start-up", stack, probe, () => idle(stack, 2000)),
      await phase(`non-streamed ${options.rate}/s`, stack, probe, open(false)),
      await phase(`streamed ${options.rate}/s`, stack, probe, open(true)),
      await phase(`closed loop, ${options.connections} connections`, stack, probe, async () => {
        const m = await stack.measure<ClosedResult>("tollgate", { target: stack.targets.tollgate!, connections: options.connections, seconds: options.seconds });
        return { usage: m.usage, calls: m.result.completed, errors: m.result.errors, firstError: m.result.firstError, latency: m.result.latency };
      }),
      await phase("idle 5 s after the load", stack, probe, () => idle(stack, 5000)),
      // V8's memory reducer acts after some seconds without much allocation: what a quiet gateway gives back.
      await phase("idle 30 s after the load", stack, probe, () => idle(stack, 25_000)),
    ];
    const run = { variant: variant.label, round, loadBefore, phases };
    console.log(JSON.stringify(run));
    return run;
  } finally {
    await stack.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every variant once per round, in the same order each round. */
export async function benchMemory(options: MemoryOptions): Promise<MemoryRun[]> {
  const runs: MemoryRun[] = [];
  for (let round = 1; round <= options.rounds; round++) for (const variant of options.variants) runs.push(await runVariant(variant, round, options));
  return runs;
}

const f = (v: number) => (Number.isNaN(v) ? "–" : v.toFixed(1));

/** The section for RESULTS.md: a row per run and phase. */
export function memorySection(options: MemoryOptions, runs: MemoryRun[], startedAt: Date, source: string): string {
  const rows = runs.flatMap((run) =>
    run.phases.map(
      (p) =>
        `| ${run.variant} | ${run.round} | ${p.name} | **${f(p.rssPeakMb)}** | ${f(p.parts.rss)} | ${f(p.parts.files)} | ${f(p.parts.mallocMain)} + ${f(p.parts.mallocArenas)} (${p.parts.arenas}) | ${f(p.parts.otherAnonymous)} | ${f(p.heap.heapTotal)} / ${f(p.heap.heapUsed)} | ${f(p.heap.newSpace)} / ${f(p.heap.oldSpace)} / ${f(p.heap.codeSpace)} | ${f(p.heap.external)} / ${f(p.heap.arrayBuffers)} | ${Number.isNaN(p.cpuUsPerCall) ? "–" : `${p.cpuUsPerCall} µs`} | ${f(p.latency.p50)} / ${f(p.latency.p99)} | ${p.calls.toLocaleString("en-US")}${p.errors ? ` (${p.errors} errors)` : ""} | ${run.loadBefore[0]!.toFixed(1)} |`,
    ),
  );
  return `## Memory under the proxy load: where the RSS is (DESIGN.md §6: ≤ 150 MB under load, ≤ 100 MB idle)

Run at ${startedAt.toISOString()} with \`npm run bench:memory\`, Tollgate at ${source} (compiled \`dist/\`), PostgreSQL,
recording on, one hard budget matching every call; phases of ${options.seconds} s at ${options.rate} req/s open loop and
${options.connections} connections closed loop, variants alternated over ${options.rounds} round(s).
RSS peak is sampled every 250 ms over the phase; the split is /proc/<pid>/smaps at the phase's end
(files: the node binary and libraries; malloc: glibc's main arena + its other arenas (how many hold
memory); other anonymous: V8's heap pages, malloc's own large mmaps, other threads' stacks). The V8
figures are the largest over the phase, from \`process.memoryUsage()\` and \`v8.getHeapSpaceStatistics()\`
(physical sizes) sampled in the gateway every 250 ms. All in MB. Latency is the load generator's, send to
last byte (no direct phase here: compare variants of one run with each other, not with the proxy bench).

| variant | round | phase | RSS peak | RSS at end | files | malloc main + arenas (n) | other anonymous | V8 heap total / used | new / old / code space | external / array buffers | CPU per call | latency p50 / p99 (ms) | calls | load (1 min) |
|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.join("\n")}`;
}
