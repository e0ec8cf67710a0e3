/**
 * Folds: every rollup grain (usage_rollups' hour and day, usage_user_days, usage_user_months)
 * brought up to date with the events written since, many of the recorder's writes at once. Each
 * write queues its fold batch in usage_rollup_queue (recorder.ts); a fold takes queued batches,
 * sums their events per rollup row, adds the sums and deletes the batches from the queue, all in
 * one statement: a fold that dies (SIGKILL, a lost connection) leaves its batches queued for the
 * next, and two gateways folding at once take different batches (SKIP LOCKED). A row is upserted
 * once per fold rather than once per write: at the ingest bench's 50 writes a second, each
 * touching 1,000 users, about 2,000 user row upserts per write became about one per user row per
 * fold, and the hour and day rows (one per attribution in a write) left the write altogether.
 * Until a batch is folded its events are read from usage_events by whoever reads a grain
 * (spend.ts), so nothing a read returns depends on when folds run.
 */
import { sql } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import type { Database } from "../db/connection.ts";
import { Counter, Gauge } from "prom-client";
import type { Logger } from "../logger.ts";
import { registry } from "../metrics.ts";
import { EVENT_SUMS, keyOfEvent } from "./event-sums.ts";
import { SUMS, upsertGrains } from "./rollup-delta.ts";

/** The sums of rows that are already sums (SUMS of rollup-delta.ts), in its order. */
const DELTA_SUMS = sql.raw(SUMS.map((f) => `sum(${f}) as ${f}`).join(", "));

/**
 * Takes up to $1 queued batches, oldest first, and adds their events to every grain. The
 * queue rows are locked as they are taken, so a batch is folded by one statement only; a batch's
 * events commit with its queue row, so every event of a batch taken is visible here.
 */
const FOLD = new PgDialect().sqlToQuery(sql`
  with claimed as (
    delete from usage_rollup_queue where batch in (
      select batch from usage_rollup_queue order by batch limit ${sql.placeholder("batches")} for update skip locked
    )
    returning batch
  ),
  -- Only the columns the sums and keys read: the rows are kept (read twice), and
  -- every column of them was ~4 times the width (text ids, tags, request ids) to write and read back.
  e as (
    select ts, team, project, feature, "user", provider, model, api_key_id, status, priced, input_tokens, cached_input_tokens,
      cache_write_tokens, output_tokens, reasoning_tokens, cost
    from usage_events where fold_batch = any(array(select batch from claimed))),
  -- The events are summed twice, into hours and user-days; days are summed from the hours and
  -- user-months from the user-days (their sums add up exactly), far fewer rows than the events.
  hours as (select 'hour' as grain, ${sql.raw(keyOfEvent("hour", "''"))}, ${EVENT_SUMS} from e group by 2, 3, 4, 5, 7, 8, 9),
  user_days as (select 'user-day' as grain, ${sql.raw(keyOfEvent("day", `coalesce("user", '')`))}, ${EVENT_SUMS} from e group by 2, 3, 4, 5, 6, 7, 8, 9),
  deltas as (
    select * from hours
    union all
    select 'day', date_trunc('day', bucket, 'UTC'), team, project, feature, "user", provider, model, api_key_id, ${DELTA_SUMS} from hours group by 2, 3, 4, 5, 6, 7, 8, 9
    union all
    select * from user_days
    union all
    select 'user-month', date_trunc('month', bucket, 'UTC'), '', '', '', "user", '', '', '', ${DELTA_SUMS} from user_days group by 2, 6
  ),
  ${upsertGrains()}
  -- The queue as the statement began: its own deletes are not seen here.
  select (select count(*) from claimed)::int as batches, (select count(*) from usage_rollup_queue)::int as queued`).sql;

const foldsTotal = new Counter({
  name: "tollgate_rollup_folds_total",
  help: "Folds of queued usage writes into the rollups, by outcome (a failed one leaves its batches queued)",
  labelNames: ["outcome"] as const,
  registers: [registry],
});
const queuedBatches = new Gauge({
  name: "tollgate_rollup_queue_batches",
  help: "Usage writes still queued for the rollups after this process's last fold: every read adds their events up itself until they are folded",
  registers: [registry],
});

/** Folds up to `maxBatches` queued batches; answers how many it folded and how many it left queued. */
export async function foldOnce(database: Pick<Database, "prepared">, maxBatches: number): Promise<{ batches: number; left: number }> {
  const [row] = await database.prepared<{ batches: number; queued: number }>(FOLD, [maxBatches]);
  const batches = Number(row?.batches ?? 0);
  return { batches, left: Number(row?.queued ?? 0) - batches };
}

/** Folds until nothing is queued (or only batches another fold holds). */
export async function foldAll(database: Pick<Database, "prepared">, maxBatches = 500): Promise<void> {
  for (;;) {
    const { batches, left } = await foldOnce(database, maxBatches);
    queuedBatches.set(left);
    if (batches < maxBatches) return;
  }
}

export interface FolderOptions {
  /** How long after a write the fold that takes it runs: the longer, the more writes each user row's one upsert covers. */
  intervalMs: number;
  /** The most batches one fold statement takes (its events are read and summed in one go). */
  maxBatches?: number;
  logger?: Pick<Logger, "error">;
}

/**
 * Runs folds in the background: `soon()` (called after each committed write) makes sure one runs
 * within intervalMs; one fold at a time per process. A fold that fails is logged and its batches
 * stay queued; the next write schedules another.
 */
export class RollupFolder {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly database: Pick<Database, "prepared">,
    private readonly opts: FolderOptions,
  ) {}

  soon(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, this.opts.intervalMs);
  }

  /** Folds everything queued now, after any fold under way. */
  run(): Promise<void> {
    const previous = this.running ?? Promise.resolve();
    const next = previous.then(() => foldAll(this.database, this.opts.maxBatches)).then(
      () => void foldsTotal.inc({ outcome: "ok" }),
      (err: unknown) => {
        foldsTotal.inc({ outcome: "failed" });
        this.opts.logger?.error({ kind: err instanceof Error ? err.name : typeof err }, "folding the rollups failed; their batches stay queued");
      },
    );
    this.running = next.finally(() => {
      if (this.running === next) this.running = undefined;
    });
    return next;
  }

  /** Stops scheduling and folds what is queued (the recorder closed first, so nothing more comes). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.run();
  }
}
