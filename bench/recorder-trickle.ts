import { resolve } from "node:path";
import { loadavg } from "node:os";
import { openDatabase } from "../src/db/connection.ts";
import { migrate } from "../src/db/migrate.ts";
import { type LedgerEvent, eventBuilder } from "../src/ledger/build-event.ts";
import { UsageEvent } from "../src/ledger/event.ts";
import { freshDatabase } from "./postgres.ts";

/**
 * The recorder's batching under a trickle, as the proxy feeds it (issue 13): one event per call at
 * a steady rate, each handed over on its own, writes counted. Writes per call do not depend on how
 * busy the machine is (as long as this process keeps its schedule), so recorders of different
 * builds compare on a shared machine. `npm run bench recorder-trickle` with
 * BENCH_AB=label=dir,... (each a checkout; its src/ledger/recorder.ts is loaded), BENCH_TRICKLE_RATES,
 * BENCH_TRICKLE_SECONDS, BENCH_AB_ROUNDS.
 */
type RecorderClass = new (database: unknown, builder: unknown, opts: { batchSize: number; maxWaitMs: number; maxConcurrentFlushes?: number }) => {
  record(events: readonly LedgerEvent[]): Promise<boolean[]>;
  onFlush(listener: (inserted: LedgerEvent[]) => void): void;
  close(): Promise<void>;
};

const builder = eventBuilder(() => ({ cost: 1_000n, priced: true }));
let serial = 0;
const event = (): LedgerEvent => {
  const built = builder.build(
    UsageEvent.parse({ source: "proxy", id: `t-${serial++}`, ts: new Date(), provider: "openai", model: "gpt-4o-mini", tokens: { input: 20, output: 5 }, status: "ok", team: "bench" }),
  );
  if (!built.ok) throw new Error(built.reason);
  return built.event;
};

/** Calls at `rate` per second for `seconds`, one event each; writes and the longest answer. */
async function trickle(Recorder: RecorderClass, url: string, rate: number, seconds: number) {
  const database = await openDatabase({ url, dataDir: "" });
  const recorder = new Recorder(database, builder, { batchSize: 1000, maxWaitMs: 20, maxConcurrentFlushes: 4 });
  let writes = 0;
  recorder.onFlush(() => void writes++);
  const answers: Promise<unknown>[] = [];
  const t0 = performance.now();
  const total = rate * seconds;
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
    // As the journal's hand-over does: what came in one turn of the event loop, in one call.
    if (due > sent) {
      answers.push(recorder.record(Array.from({ length: due - sent }, event)));
      sent = due;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(answers);
  await recorder.close();
  await database.close();
  return { writes, callsPerWrite: total / writes, handOvers: answers.length };
}

export async function benchRecorderTrickle(builds: { label: string; root: string }[], rates: number[], seconds: number, rounds: number) {
  const url = await freshDatabase("tollgate_bench_trickle");
  const database = await openDatabase({ url, dataDir: "" });
  await migrate(database);
  await database.close();
  const classes = await Promise.all(builds.map(async (b) => ((await import(resolve(b.root, "src/ledger/recorder.ts"))) as { Recorder: RecorderClass }).Recorder));
  const rows: string[] = [`load average ${loadavg().map((v) => v.toFixed(2)).join(" ")}`, "| build | rate | round | writes | calls per write |", "|---|---:|---:|---:|---:|"];
  for (let round = 0; round < rounds; round++)
    for (const rate of rates)
      for (const [i, b] of builds.entries()) {
        const r = await trickle(classes[i]!, url, rate, seconds);
        rows.push(`| ${b.label} | ${rate} | ${round} | ${r.writes} | ${r.callsPerWrite.toFixed(1)} |`);
        console.log(rows.at(-1));
      }
  return rows.join("\n");
}
