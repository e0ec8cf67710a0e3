import { type SQL, sql } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import type { Database } from "../db/connection.ts";
import { within } from "../deadline.ts";
import type { Logger } from "../logger.ts";
import { recorderBatchSize, recorderWriteSeconds, usageEventsTotal } from "../metrics.ts";
import type { EventBuilder, LedgerEvent } from "./build-event.ts";
import type { PricedEvent } from "./event.ts";
import { type Cell, arrayColumn, arrayLiteral } from "../db/arrays.ts";
import { refusesTheData, sqlState, sqlStateClass } from "../db/sql-state.ts";

/** Called after each committed flush with the events that were new (budgets hook in here). */
export type FlushListener = (inserted: LedgerEvent[]) => void | Promise<void>;

export interface RecorderOptions {
  batchSize: number;
  /** How long a queued event waits for company before its batch is written, unless its record() call says otherwise. */
  maxWaitMs: number;
  maxConcurrentFlushes?: number;
  /**
   * A batch unanswered this long fails with DatabaseTimeout (it may still commit later: the ledger
   * dedupes a resend). Until the database answers again, record() fails at once rather than queue
   * behind a database that does not answer. Unset: no deadline (PGlite, in this process, cannot hang).
   */
  writeTimeoutMs?: number;
  /** Where a batch the database refuses is reported (its SQLSTATE and class, never its contents). */
  logger?: Pick<Logger, "error">;
}

/** The database did not answer in time: not a refusal, so the same events can be sent again. */
export class DatabaseTimeout extends Error {
  constructor(readonly afterMs: number) {
    super(`the database did not answer within ${afterMs} ms`);
    this.name = "DatabaseTimeout";
  }
}

/** One record() call: answered once every event of it is, or failed at its first failure. */
interface Call {
  events: readonly LedgerEvent[];
  answers: boolean[];
  /** Events not yet answered. */
  open: number;
  settle: (answers: boolean[]) => void;
  fail: (err: unknown) => void;
}

/**
 * A run of a call's events, [from, to), queued together. A call is queued as one run (not an
 * object and a promise per event: at 1,000 events a post that was a good part of the gateway's
 * garbage) and cut in two only where a batch ends inside it.
 */
interface Pending {
  call: Call;
  from: number;
  to: number;
  /** When its batch is due (performance.now()): queued at, plus its call's wait. */
  dueAt: number;
}

/** The keys (keyOf) of the events an insert took, or "all" when it took every one. */
type Taken = Set<string> | "all";

const noop = () => {};
const keyOf = (e: { source: string; id: string }) => `${e.source}\u0000${e.id}`;
const RETRYABLE = new Set(["40P01", "40001"]); // deadlock, serialization failure

/**
 * The one write path for usage. Callers hand in built events (build-event.ts: normalised, storable,
 * priced) and are answered once their batch is committed: true for each newly recorded event,
 * false for a duplicate of one already recorded. The builder is kept here for the doors that write
 * through the recorder (the usage webhook, OTLP), so they build with the same one.
 */
export class Recorder {
  private queue: Pending[] = [];
  /** Events in the queue's runs. */
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The soonest dueAt in the queue (Infinity when empty): calls may wait for different times. */
  private dueAt = Number.POSITIVE_INFINITY;
  /** The dueAt the timer is set for. */
  private timerFor: number | undefined;
  private inFlight = new Set<Promise<void>>();
  private readonly listeners: FlushListener[] = [];
  private closed = false;
  /** A write timed out and nothing has answered since. */
  private stalled = false;
  private probing: Promise<boolean> | undefined;

  constructor(
    private readonly database: Database,
    readonly builder: EventBuilder,
    private readonly opts: RecorderOptions,
  ) {}

  onFlush(listener: FlushListener): void {
    this.listeners.push(listener);
  }

  /**
   * Answers, in order, whether each event was new. The array is read when its batches are written:
   * it must not change after. `waitMs` (default maxWaitMs) is how long these events may wait for
   * company: a caller whose events are durable elsewhere (the journal) can let them wait longer.
   */
  record(events: readonly LedgerEvent[], waitMs = this.opts.maxWaitMs): Promise<boolean[]> {
    if (this.closed) return Promise.reject(new Error("recorder is closed"));
    if (this.stalled) {
      void this.probe();
      return Promise.reject(new DatabaseTimeout(this.timeoutMs ?? 0));
    }
    if (events.length === 0) return Promise.resolve([]);
    return new Promise<boolean[]>((settle, fail) => {
      const call: Call = { events, answers: new Array<boolean>(events.length), open: events.length, settle, fail };
      const dueAt = performance.now() + waitMs;
      this.queue.push({ call, from: 0, to: events.length, dueAt });
      this.queued += events.length;
      if (dueAt < this.dueAt) this.dueAt = dueAt;
      this.pump(false);
    });
  }

  /** Whether the database answers a trivial query within the write timeout; an answer clears a stall. */
  probe(): Promise<boolean> {
    this.probing ??= within(this.database.rows(sql`select 1`), this.timeoutMs)
      .then(
        (rows) => rows !== undefined,
        () => false,
      )
      .then((up) => {
        this.probing = undefined;
        if (up) this.stalled = false;
        return up;
      });
    return this.probing;
  }

  /** True while a write has gone unanswered past the timeout and nothing has answered since. */
  get isStalled(): boolean {
    return this.stalled;
  }

  private get timeoutMs(): number | undefined {
    return this.opts.writeTimeoutMs;
  }

  /** Writes everything queued and waits for every write under way. */
  async flush(): Promise<void> {
    while (this.queued > 0 || this.inFlight.size > 0) {
      this.pump(true);
      await Promise.race([...this.inFlight].map((run) => run.then(noop, noop)));
    }
  }

  async close(): Promise<void> {
    // Closed first, so nothing recorded while the last batches are written is queued behind them.
    this.closed = true;
    await this.flush();
  }

  /**
   * Group commit. A batch is cut when a writer is free AND it is full or one of its events has
   * waited as long as its call allowed (`force`: flush and close, at once). A writer that frees up does not take a
   * batch that is not due: under a steady trickle of proxied calls that made a chain of tiny
   * writes, one transaction per call or two, as each write's end took whatever arrived during it.
   * Events that queue while every writer is busy still go, up to batchSize, into the next write
   * together. Not due yet: a timer wakes the pump when the oldest event will be.
   */
  private pump(force: boolean): void {
    const limit = this.opts.maxConcurrentFlushes ?? 4;
    while (this.inFlight.size < limit && this.queued > 0 && (force || this.queued >= this.opts.batchSize || this.waitLeft() <= 0)) {
      const run: Promise<void> = this.write(this.takeBatch()).finally(() => {
        this.inFlight.delete(run);
        this.pump(false);
      });
      this.inFlight.add(run);
    }
    // Every writer busy (or nothing queued): the next write's end pumps again. Otherwise wake when
    // the soonest is due; a timer already set for that time stays (one per batch, not per call).
    const due = this.inFlight.size < limit && this.queued > 0 ? this.dueAt : undefined;
    if (due === this.timerFor) return;
    clearTimeout(this.timer);
    this.timerFor = due;
    // At least 1 ms: a timer can fire a little before performance.now() says its time is up; it then sets another.
    this.timer = due === undefined ? undefined : setTimeout(() => {
      this.timerFor = undefined;
      this.pump(false);
    }, Math.max(1, Math.ceil(this.waitLeft())));
  }

  /** The queue's first batchSize events, as runs; a run the batch ends inside is cut in two, its rest left first in line. */
  private takeBatch(): Pending[] {
    const batch: Pending[] = [];
    let room = this.opts.batchSize;
    while (room > 0 && this.queue.length > 0) {
      const head = this.queue[0]!;
      const size = head.to - head.from;
      if (size <= room) {
        batch.push(this.queue.shift()!);
        room -= size;
      } else {
        batch.push({ ...head, to: head.from + room });
        head.from += room;
        room = 0;
      }
    }
    this.queued -= this.opts.batchSize - room;
    this.dueAt = Number.POSITIVE_INFINITY;
    for (const p of this.queue) if (p.dueAt < this.dueAt) this.dueAt = p.dueAt;
    return batch;
  }

  /** Milliseconds until the soonest-due queued event is due. */
  private waitLeft(): number {
    return this.dueAt - performance.now();
  }

  private async write(batch: Pending[]): Promise<void> {
    const { unique, first } = firstAppearances(batch);
    const started = performance.now();
    let inserted: Taken | undefined;
    const insert = this.insertWithRetry(unique);
    try {
      inserted = await within(insert, this.timeoutMs);
    } catch (err) {
      await this.refused(batch, err);
      return;
    }
    if (!inserted) {
      // The slot is freed for the next batch; the write itself may still land (or fail) later.
      this.stalled = true;
      void insert.then(
        () => void (this.stalled = false),
        () => {},
      );
      const timeout = new DatabaseTimeout(this.timeoutMs ?? 0);
      for (const p of batch) p.call.fail(timeout);
      return;
    }
    this.stalled = false;
    recorderWriteSeconds.observe((performance.now() - started) / 1000);
    recorderBatchSize.observe(unique.length);
    const fresh: LedgerEvent[] = [];
    let at = 0;
    for (const p of batch) {
      const { call } = p;
      for (let i = p.from; i < p.to; i++, at++) {
        const event = call.events[i]!;
        const isNew = first[at] === 1 && (inserted === "all" || inserted.has(keyOf(event)));
        if (isNew) fresh.push(event);
        call.answers[i] = isNew;
      }
      call.open -= p.to - p.from;
      if (call.open === 0) call.settle(call.answers);
    }
    usageEventsTotal.inc({ outcome: "accepted" }, fresh.length);
    usageEventsTotal.inc({ outcome: "duplicate" }, first.length - fresh.length);
    for (const listener of this.listeners) {
      try {
        await listener(fresh);
      } catch {
        // A listener's failure must not turn a committed write into an error for the sender.
      }
    }
  }

  /**
   * A batch failed. Batches mix record() calls (senders): when the database answered with an
   * error about the data, each call is written on its own, so only the call holding what the
   * database refuses fails with it. The error is logged by its SQLSTATE and class only: the
   * database's message and drizzle's can quote event contents.
   */
  private async refused(batch: Pending[], err: unknown): Promise<void> {
    const code = sqlState(err);
    const calls = new Map<Call, Pending[]>();
    let events = 0;
    for (const p of batch) {
      calls.set(p.call, [...(calls.get(p.call) ?? []), p]);
      events += p.to - p.from;
    }
    this.opts.logger?.error(
      { code: code ?? null, kind: code ? sqlStateClass(code) : errorName(err), events, calls: calls.size },
      calls.size > 1 && code ? "the ledger refused a batch; writing its senders' events apart" : "the ledger refused a batch",
    );
    // Only a refusal of the data can be one sender's: anything else (the database read-only, out
    // of disk, shutting down) would refuse each sender's events alike.
    if (calls.size > 1 && code && refusesTheData(code)) {
      for (const own of calls.values()) await this.write(own);
      return;
    }
    for (const p of batch) p.call.fail(err);
  }

  private async insertWithRetry(events: PricedEvent[], attempt = 1): Promise<Taken> {
    try {
      return await this.insert(events);
    } catch (err) {
      // drizzle wraps the driver's error; the SQLSTATE is on its cause.
      const code = sqlState(err);
      if (attempt < 4 && code && RETRYABLE.has(code)) return this.insertWithRetry(events, attempt + 1);
      throw err;
    }
  }

  private async insert(events: PricedEvent[]): Promise<Taken> {
    const rows = await this.database.prepared<{ source: string | null; id: string | null }>(INSERT, insertParams(events));
    // One row of NULLs: the insert took every event (the usual case), so no key was sent back.
    if (rows.length === 1 && rows[0]!.source === null) return "all";
    return new Set(rows.map((r) => keyOf(r as { source: string; id: string })));
  }
}

/**
 * The same event twice in one batch (even the same object): only its first appearance can be the
 * one that is new. Answers the batch's events without repeats, and for each position (counting the
 * batch's events in order, across its runs) 1 where it is its key's first appearance. Ids are
 * looked up per source, so no key string is made per event: those, and a map of them, were kept
 * for the whole write, a good part of what the gateway's young collections copied under ingest.
 */
function firstAppearances(batch: readonly Pending[]): { unique: LedgerEvent[]; first: Uint8Array } {
  let size = 0;
  for (const p of batch) size += p.to - p.from;
  const first = new Uint8Array(size);
  const unique: LedgerEvent[] = [];
  const seen = new Map<string, Set<string>>();
  let at = 0;
  for (const p of batch)
    for (let i = p.from; i < p.to; i++, at++) {
      const event = p.call.events[i]!;
      let ids = seen.get(event.source);
      if (!ids) seen.set(event.source, (ids = new Set()));
      if (ids.has(event.id)) continue;
      ids.add(event.id);
      first[at] = 1;
      unique.push(event);
    }
  return { unique, first };
}

const errorName = (err: unknown) => (err instanceof Error ? err.name : typeof err);

/**
 * Every column written, the type of the array it travels in, and how to read it off an event.
 * Two travel as something cheaper for Postgres to read than their own type, and are converted per
 * row (COLUMN_VALUES): the time as epoch milliseconds (a bigint reads in about a third of a
 * timestamptz's text), and tags as text: array_in of a jsonb[] cost ~10-14 µs per element against
 * ~0.5 µs for `text::jsonb` per row (measured on PostgreSQL 15; it was a sixth of the statement).
 */
const EVENT_COLUMNS: readonly [name: string, type: string, read: (e: PricedEvent) => Cell][] = [
  ["source", "text", (e) => e.source],
  ["id", "text", (e) => e.id],
  ["ts", "bigint", (e) => e.ts.getTime()],
  ["provider", "text", (e) => e.provider],
  ["model", "text", (e) => e.model],
  ["input_tokens", "bigint", (e) => e.tokens.input],
  ["cached_input_tokens", "bigint", (e) => e.tokens.cached_input],
  ["cache_write_tokens", "bigint", (e) => e.tokens.cache_write],
  ["cache_write_1h_tokens", "bigint", (e) => e.tokens.cache_write_1h],
  ["output_tokens", "bigint", (e) => e.tokens.output],
  ["reasoning_tokens", "bigint", (e) => e.tokens.reasoning],
  ["service_tier", "text", (e) => e.service_tier],
  ["cost", "bigint", (e) => e.cost.toString()],
  ["priced", "boolean", (e) => e.priced],
  ["estimated", "boolean", (e) => e.estimated === true],
  ["reported_cost", "bigint", (e) => e.reported_cost?.toString() ?? null],
  ["latency_ms", "integer", (e) => e.latency_ms],
  ["status", "text", (e) => e.status],
  ["team", "text", (e) => e.team],
  ["project", "text", (e) => e.project],
  ["feature", "text", (e) => e.feature],
  ["user", "text", (e) => e.user],
  ["session", "text", (e) => e.session],
  ["api_key_id", "text", (e) => e.api_key_id],
  ["tags", "text", (e) => (hasAny(e.tags) ? JSON.stringify(e.tags) : "{}")],
  ["request_id", "text", (e) => e.request_id],
];

/** Whether an object has a key: most events have no tags, and JSON.stringify of each {} was ~0.1 µs. */
function hasAny(tags: Record<string, string>): boolean {
  for (const _ in tags) return true;
  return false;
}

const COLUMN_LIST = sql.raw(EVENT_COLUMNS.map(([name]) => `"${name}"`).join(", "));
/** The input's columns as the table's types (see EVENT_COLUMNS); a time in whole milliseconds converts exactly. */
const CONVERTED: Record<string, string> = {
  ts: `timestamptz 'epoch' + "ts" * interval '1 millisecond'`,
  tags: `case when "tags" = '{}' then '{}'::jsonb else "tags"::jsonb end`,
};
const COLUMN_VALUES = sql.raw(EVENT_COLUMNS.map(([name]) => CONVERTED[name] ?? `"${name}"`).join(", "));

/** The statement's parameters, in its order: each event column as one array literal, then how many events there are. */
function insertParams(events: readonly PricedEvent[]): (string | number)[] {
  return [...EVENT_COLUMNS.map(([, , read]) => arrayLiteral(withoutTrailingNulls(events.map(read)))), events.length];
}

/**
 * A column's values without the NULLs at its end: unnest pads a shorter array with NULLs to the
 * longest (source and id are never NULL), so they need not travel. Most senders leave most optional
 * fields empty: at the ingest bench's five empty columns they were an eighth of the parameters'
 * text, kept by the driver until the write answered, and read element by element by Postgres.
 */
function withoutTrailingNulls(values: Cell[]): Cell[] {
  let end = values.length;
  while (end > 0 && values[end - 1] === null) end--;
  return end === values.length ? values : values.slice(0, end);
}

/**
 * One statement: insert the new events, skipping known ones. No rollup is touched here: the events
 * carry a new fold batch, queued in usage_rollup_queue in this same statement when any event is
 * new, and a fold (fold.ts) adds many writes' events to every grain at once; what commits is
 * either folded later or read as unfolded, never lost. Answers the keys inserted, or, when every
 * event was (the usual case), one row of NULLs rather than a row per event for the driver to
 * read. Each column travels as one array parameter, so the text is the same for every batch: it
 * is made once, from the parameters of no events, and each write only makes parameters.
 */
function insertStatement(params: readonly (string | number)[]): SQL {
  const columns = EVENT_COLUMNS.length;
  const arrays = EVENT_COLUMNS.map(([, type], i) => arrayColumn(String(params[i]), type));
  return sql`
    with input as (
      select * from unnest(${sql.join(arrays, sql`, `)}) as x(${COLUMN_LIST})
    ),
    fold as (select nextval('usage_fold_batch') as batch),
    ins as (
      insert into usage_events (${COLUMN_LIST}, fold_batch)
      select ${COLUMN_VALUES}, (select batch from fold) from input
      -- Key order: batches overlapping in events then wait for each other rather than deadlock.
      order by source, id
      on conflict (source, id) do nothing
      returning source, id
    ),
    queued as (insert into usage_rollup_queue (batch) select batch from fold where exists (select from ins)),
    took as (select (select count(*) from ins) = ${params[columns]}::int as took_all)
    select source, id from ins where not (select took_all from took)
    union all
    select null, null where (select took_all from took)`;
}

const INSERT = (() => {
  const params = insertParams([]);
  const query = new PgDialect().sqlToQuery(insertStatement(params));
  // The text's placeholders must take insertParams' values in its order: checked once, at load.
  if (query.params.length !== params.length || query.params.some((p, i) => p !== params[i])) throw new Error("the recorder's statement and its parameters disagree");
  return query.sql;
})();
