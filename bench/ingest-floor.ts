import { readFileSync } from "node:fs";
import { execSync } from "node:child_process";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { openDatabase } from "../src/db/connection.ts";
import { migrate } from "../src/db/migrate.ts";
import { splitBody } from "../src/ingest/usage-body.ts";
import { toUsageEvent } from "../src/ingest/usage-item.ts";
import { type EventBuilder, type LedgerEvent, eventBuilder } from "../src/ledger/build-event.ts";
import { foldAll } from "../src/ledger/fold.ts";
import { Recorder } from "../src/ledger/recorder.ts";
import { loadCatalog, priceEvent } from "../src/pricing/index.ts";
import { batchBody } from "./ingest.ts";
import { freshDatabase } from "./postgres.ts";

/**
 * The ingest bench's floor: what each side needs for one batch of 1,000 events of the bench's
 * shape, measured apart on this machine, one thing at a time (no HTTP, no concurrency). The
 * gateway's side is parsing and validating the posted body into events (in this process); the
 * Postgres side is the CPU time of the one backend that takes the batch, for the recorder's own
 * write and for COPY, the cheapest way Postgres takes rows, with and without the dedupe of
 * (source, id). 1e6 / (gateway µs + Postgres µs per event) is then the rate two cores could reach
 * if nothing else ran and both were kept busy.
 */
export interface FloorLine {
  /** parse: the gateway's; write: the recorder's own; fold: what the write leaves to folds; copy: COPY, for comparison. */
  kind: "parse" | "write" | "fold" | "copy";
  what: string;
  /** CPU per event, µs: the gateway process's (parse) or the Postgres backend's (writes). */
  cpuUsPerEvent: number;
  /** Wall time per batch of 1,000, ms. */
  msPerBatch: number;
}

const TICKS_PER_SECOND = Number(execSync("getconf CLK_TCK").toString().trim());
const ticksOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
};

/** The events of one posted batch, as the usage door builds them. */
function parse(body: string, builder: EventBuilder, now: Date): LedgerEvent[] {
  const split = splitBody("json", body);
  if (!split.ok) throw new Error(split.error.message);
  return split.items.map((item) => {
    const result = toUsageEvent(item.value, { source: "key:bench", now }, builder);
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    return result.event;
  });
}

/** One COPY text-format field: NULL as \N, the format's special characters escaped. */
const field = (v: unknown) => (v === null || v === undefined ? "\\N" : String(v).replace(/[\\\t\n\r]/g, (c) => ({ "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" })[c]!));

const COPY_COLUMNS = `source, id, ts, provider, model, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens,
  reasoning_tokens, service_tier, cost, priced, estimated, reported_cost, latency_ms, status, team, project, feature, "user", session, api_key_id, tags, request_id`;

function copyText(events: readonly LedgerEvent[]): string {
  return events
    .map((e) =>
      [e.source, e.id, e.ts.toISOString(), e.provider, e.model, e.tokens.input, e.tokens.cached_input, e.tokens.cache_write, e.tokens.cache_write_1h, e.tokens.output, e.tokens.reasoning, e.service_tier, e.cost, e.priced, e.estimated === true, e.reported_cost, e.latency_ms, e.status, e.team, e.project, e.feature, e.user, e.session, e.api_key_id, JSON.stringify(e.tags), e.request_id]
        .map(field)
        .join("\t"),
    )
    .join("\n") + "\n";
}

async function copyInto(client: postgres.Sql, table: string, text: string): Promise<void> {
  const stream = await client.unsafe(`copy ${table} (${COPY_COLUMNS}) from stdin`).writable();
  await pipeline(async function* () {
    yield text;
  }, stream as unknown as Writable);
}

/** `foldEvery`: writes per fold in the fold line (a gateway folds once a second: 25 is 25,000 events/s). */
export async function benchIngestFloor(opts: { batches: number; foldEvery: number }): Promise<FloorLine[]> {
  const url = await freshDatabase("tollgate_bench_floor");
  const database = await openDatabase({ url, dataDir: "", maxConnections: 1 });
  await migrate(database);
  const client = postgres(url, { max: 1, onnotice: () => {} });
  const catalog = await loadCatalog({});
  const builder = eventBuilder((e) => priceEvent(catalog, e));
  const now = new Date();
  const ts = now.toISOString();
  let next = 0;
  const bodies = (n: number) => Array.from({ length: n }, () => batchBody(next++, 1000, ts));
  const lines: FloorLine[] = [];
  try {
    // The gateway's part: parse and validate (warmed up first, as a running gateway is).
    for (const body of bodies(20)) parse(body, builder, now);
    const posted = bodies(opts.batches);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (const body of posted) parse(body, builder, now);
    const cpu = process.cpuUsage(cpu0);
    lines.push({ kind: "parse", what: "gateway: parse + validate the body", cpuUsPerEvent: (cpu.user + cpu.system) / (opts.batches * 1000), msPerBatch: (performance.now() - t0) / opts.batches });

    const backend = async (rows: () => Promise<{ pid: number }[]>) => Number((await rows())[0]!.pid);
    const measure = async (kind: FloorLine["kind"], what: string, pid: number, write: (events: LedgerEvent[]) => Promise<unknown>, events: LedgerEvent[][]) => {
      await write(events[0]!); // warm: the statement prepared, the plan made
      const ticks0 = ticksOf(pid);
      const t = performance.now();
      for (const batch of events.slice(1)) await write(batch);
      const n = events.length - 1;
      lines.push({ kind, what, cpuUsPerEvent: ((ticksOf(pid) - ticks0) / TICKS_PER_SECOND) * 1e6 / (n * 1000), msPerBatch: (performance.now() - t) / n });
    };
    const fresh = () => bodies(opts.batches + 1).map((body) => parse(body, builder, now));

    const recorder = new Recorder(database, builder, { batchSize: 1000, maxWaitMs: 0, maxConcurrentFlushes: 1 });
    const recorderPid = await backend(() => database.rows(sql`select pg_backend_pid() as pid`));
    await measure("write", "Postgres: the recorder's statement (events, dedupe, the fold queue)", recorderPid, (events) => recorder.record(events), fresh());
    // The rollups' fold: what the recorder's write leaves for later, per event folded, foldEvery writes at a time.
    await foldAll(database);
    let foldTicks = 0;
    let foldMs = 0;
    const writes = fresh();
    for (let at = 0; at < writes.length; at += opts.foldEvery) {
      for (const batch of writes.slice(at, at + opts.foldEvery)) await recorder.record(batch);
      const ticks0 = ticksOf(recorderPid);
      const t = performance.now();
      await foldAll(database);
      foldTicks += ticksOf(recorderPid) - ticks0;
      foldMs += performance.now() - t;
    }
    lines.push({ kind: "fold", what: `Postgres: folding the rollups (every grain's upserts, left out of the write above), ${opts.foldEvery} writes per fold`, cpuUsPerEvent: ((foldTicks / TICKS_PER_SECOND) * 1e6) / (writes.length * 1000), msPerBatch: foldMs / writes.length });

    const copyPid = await backend(() => client.unsafe("select pg_backend_pid() as pid"));
    await measure("copy", "Postgres: COPY into usage_events (dedupe index kept, no ON CONFLICT, no rollups)", copyPid, (events) => copyInto(client, "usage_events", copyText(events)), fresh());
    await client.unsafe("create temp table staged (like usage_events including defaults)");
    await measure(
      "copy",
      "Postgres: COPY to a temp table + INSERT … ON CONFLICT DO NOTHING (no rollups)",
      copyPid,
      (events) =>
        client.begin(async (tx) => {
          await copyInto(tx as unknown as postgres.Sql, "staged", copyText(events));
          await tx.unsafe(`insert into usage_events select * from staged order by source, id on conflict (source, id) do nothing`);
          await tx.unsafe("truncate staged");
        }),
      fresh(),
    );
  } finally {
    await client.end();
    await database.close();
  }
  return lines;
}
