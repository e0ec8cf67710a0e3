import { PerformanceObserver } from "node:perf_hooks";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { PgDialect } from "drizzle-orm/pg-core";
import type { SQL } from "drizzle-orm";

/**
 * The proxy's own JavaScript per call outside network I/O, build against build, in one process:
 * reading an answer's usage, building and pricing its event, encoding its journal line, the
 * recorder's batch write up to the statement handed to the driver, and the budget evaluator's
 * note of the flush. Each build's compiled `dist/` is loaded from its folder; rounds alternate
 * between builds so the machine's noise falls on both. Per call: CPU µs (process CPU time, so
 * other processes' load counts only through cache and frequency) and young-generation GCs.
 *
 *   node --import tsx bench/js-per-call.ts main=/path/to/main-build jscpu=.
 *
 * The database is the driver's side of the boundary: drizzle's statements are compiled to text
 * and parameters (as the driver does) and answered with the inserted keys, with no I/O.
 */

const BATCH = 20;
const CALLS = Number(process.env.BENCH_CALLS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);

/** The mock upstream's answer (bench/proxy-mock.ts), as the proxy parses it. */
const ANSWER = JSON.stringify({
  id: "chatcmpl-bench0123456789",
  created: 1_760_000_000,
  model: "gpt-4o-mini",
  system_fingerprint: "fp_bench",
  object: "chat.completion",
  choices: [{ index: 0, message: { role: "assistant", content: "Hello there, how are you?", refusal: null }, logprobs: null, finish_reason: "stop" }],
  usage: {
    prompt_tokens: 1200,
    completion_tokens: 300,
    total_tokens: 1500,
    prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  },
});

interface Build {
  name: string;
  perCall: (i: number) => Promise<void> | void;
  flush: () => Promise<void>;
}

const dialect = new PgDialect();

/** The driver's side: statements become text and parameters, and every event is answered as inserted. */
function database(): unknown {
  const answer = (params: unknown[]) => {
    const sources = String(params[0]).slice(1, -1).split(",").map((s) => s.replace(/^"|"$/g, ""));
    const ids = String(params[1]).slice(1, -1).split(",").map((s) => s.replace(/^"|"$/g, ""));
    return ids.map((id, i) => ({ source: sources[i], id }));
  };
  return {
    driver: "postgres",
    rows: async (query: SQL) => answer(dialect.sqlToQuery(query).params),
    prepared: async (_text: string, params: unknown[]) => answer(params),
  };
}

async function load(name: string, folder: string): Promise<Build> {
  const dist = (path: string) => import(pathToFileURL(resolve(folder, "dist/src", path)).href);
  const [{ providerNamed }, { eventBuilder }, { encodeEvent }, { Recorder }, { loadCatalog, priceEvent }, { callEvent }, { BudgetEvaluator }] = await Promise.all([
    dist("providers/registry.js"),
    dist("ledger/build-event.js"),
    dist("ledger/journal.js"),
    dist("ledger/recorder.js"),
    dist("pricing/index.js"),
    dist("proxy/forward.js"),
    dist("budgets/evaluator.js"),
  ]);
  const provider = providerNamed("openai");
  const catalog = loadCatalog();
  const builder = eventBuilder((e: never) => priceEvent(catalog, e));
  const recorder = new Recorder(database(), builder, { batchSize: BATCH, maxWaitMs: 1000, maxConcurrentFlushes: 4 });
  // The evaluator's flush hook only notes; its run (50 ms later) reads the database, left out here.
  const evaluator = new BudgetEvaluator(database(), { enqueue: async () => {} }, { anomalyMinSpend: 0n, logger: { debug() {}, error() {} }, coalesceMs: 1e9 });
  evaluator.schedule = () => {};
  recorder.onFlush((events: never[]) => evaluator.evaluateMatching(events));
  const attribution = { team: "platform", project: "search", feature: "answers", user: "u-17", session: null, api_key_id: "key-1", tags: {} };
  let batch: Promise<unknown>[] = [];
  const perCall = (i: number) => {
    const call = { id: `call-${name}-${i}`, provider, path: "/v1/chat/completions", facts: { model: "gpt-4o-mini", stream: false }, attribution, started: performance.now(), startedAt: new Date() };
    const outcome = provider.usageOf(call.path, JSON.parse(ANSWER));
    const built = builder.build(callEvent(call, outcome, "ok", "req-1", 200));
    if (!built.ok) throw new Error(built.reason);
    encodeEvent(built.event);
    batch.push(recorder.record([built.event]));
    if (batch.length === BATCH) {
      const wait = Promise.all(batch);
      batch = [];
      return wait.then(() => undefined);
    }
  };
  return { name, perCall, flush: () => recorder.flush() };
}

const specs = process.argv.slice(2).map((arg) => {
  const [name, folder] = arg.split("=");
  return { name: name!, folder: folder! };
});
const builds = await Promise.all(specs.map((s) => load(s.name, s.folder)));

let scavenges = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if ((entry as unknown as { detail?: { kind: number } }).detail?.kind === 1) scavenges++;
}).observe({ entryTypes: ["gc"] });

async function round(build: Build, calls: number, offset: number): Promise<{ cpuUs: number; gcs: number }> {
  global.gc?.();
  const gcBefore = scavenges;
  const cpu = process.cpuUsage();
  for (let i = 0; i < calls; i++) await build.perCall(offset + i);
  await build.flush();
  const used = process.cpuUsage(cpu);
  // GC entries arrive asynchronously.
  await new Promise((r) => setTimeout(r, 10));
  return { cpuUs: (used.user + used.system) / calls, gcs: (scavenges - gcBefore) / calls };
}

for (const b of builds) await round(b, CALLS / 4, 0); // warm-up
const results = new Map<string, { cpu: number[]; gcs: number[] }>(builds.map((b) => [b.name, { cpu: [], gcs: [] }]));
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? builds : [...builds].reverse();
  for (const b of order) {
    const { cpuUs, gcs } = await round(b, CALLS, (r + 1) * CALLS);
    results.get(b.name)!.cpu.push(cpuUs);
    results.get(b.name)!.gcs.push(gcs);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(results.get(builds[0]!.name)!.cpu);
for (const [name, r] of results)
  console.log(`${name}: ${median(r.cpu).toFixed(2)} µs CPU/call (median of ${ROUNDS}; ${r.cpu.map((x) => x.toFixed(1)).join(" ")}), ratio ${(median(r.cpu) / base).toFixed(3)}, scavenges per 1000 calls ${(median(r.gcs) * 1000).toFixed(2)}`);
