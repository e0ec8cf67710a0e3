import { join } from "node:path";
import { sql } from "drizzle-orm";
import { Counter, Gauge } from "prom-client";
import type { Database } from "../db/connection.ts";
import type { Logger } from "../logger.ts";
import { registry } from "../metrics.ts";
import type { Built, LedgerEvent } from "./build-event.ts";
import type { UsageEvent } from "./event.ts";
import type { Recorder } from "./recorder.ts";
import { type SpoolClaim, type SpoolTuning, Spool, encodeEvent, errorText } from "./spool.ts";

/** Where callers that must not wait on the database, nor fail with it, hand their usage: the proxy. */
export interface UsageSink {
  /**
   * Never throws and never waits: the built events are recorded, or spooled and recorded later;
   * events that could not be built (unstorable) are kept aside with why.
   */
  submit(events: readonly Built[]): void;
  status(): SinkStatus;
  /** Waits for writes under way and leaves whatever is not committed in the spool, fsync'd. */
  close(): Promise<void>;
}

export interface SinkStatus {
  spooled_events: number;
  /** When the oldest event still in the spool was spooled. */
  oldest?: Date;
  database: "ok" | "degraded";
}

export interface ReplayTuning {
  /** Between replay passes while the spool holds events. */
  replayIntervalMs: number;
  /** The longest wait between passes while the database stays down (the wait doubles up to it). */
  maxBackoffMs: number;
  /** Between looks at an empty spool folder, for files other processes left. */
  idleScanMs: number;
  /** Events per record() call on replay. */
  replayBatchSize: number;
  /** A write unanswered this long counts as an outage; its events are spooled (the ledger dedupes if it lands after all). */
  writeTimeoutMs: number;
}

export type SinkTuning = SpoolTuning & ReplayTuning;

export const DEFAULT_SINK_TUNING: SinkTuning = {
  groupWindowMs: 20,
  groupMaxEvents: 1000,
  maxFileBytes: 4 * 1024 * 1024,
  idleSealMs: 1000,
  staleAfterMs: 10 * 60_000,
  replayIntervalMs: 2000,
  maxBackoffMs: 30_000,
  idleScanMs: 30_000,
  replayBatchSize: 1000,
  writeTimeoutMs: 10_000,
};

export interface SpoolingSinkOptions extends Partial<SinkTuning> {
  /** Writes the events; its builder restores spooled ones. */
  recorder: Pick<Recorder, "record" | "builder">;
  /** Asked whether it answers at all, to tell an outage from a batch it refuses. */
  database: Pick<Database, "rows">;
  /** TOLLGATE_DATA_DIR: the spool lives in <dataDir>/spool, events that can never be stored in <dataDir>/spool-rejected.ndjson. */
  dataDir: string;
  logger: Logger;
}

const spoolEvents = new Gauge({
  name: "tollgate_spool_events",
  help: "Usage events waiting in the spool for the database",
  registers: [registry],
});
const spoolOldest = new Gauge({
  name: "tollgate_spool_oldest_timestamp_seconds",
  help: "When the oldest usage event still in the spool was spooled; 0 when the spool is empty",
  registers: [registry],
});
const ledgerDegraded = new Gauge({
  name: "tollgate_ledger_degraded",
  help: "1 while the ledger database is unreachable and usage events go to the spool",
  registers: [registry],
});
const spoolWritten = new Counter({
  name: "tollgate_spool_events_written_total",
  help: "Usage events written to the spool because the database could not take them",
  registers: [registry],
});
const spoolReplayed = new Counter({
  name: "tollgate_spool_events_replayed_total",
  help: "Spooled usage events recorded in the ledger on replay (duplicates included)",
  registers: [registry],
});
const eventsRejected = new Counter({
  name: "tollgate_usage_events_rejected_total",
  help: "Usage events the database refuses or that are not valid, kept in spool-rejected.ndjson",
  registers: [registry],
});
const eventsLost = new Counter({
  name: "tollgate_usage_events_lost_total",
  help: "Usage events neither recorded nor kept, by reason (spool_write_failed, unreadable_line, closed)",
  labelNames: ["reason"] as const,
  registers: [registry],
});

type Outcome = "done" | "outage";
type PassResult = "empty" | "more" | "outage";

/**
 * Hands events to the Recorder; when the database cannot be reached they go to the spool, and a
 * replay loop records them once it can. A batch the database refuses while answering is split
 * until the refused events are found; those are kept aside so they cannot block the replay.
 */
export class SpoolingSink implements UsageSink {
  private degraded = false;
  /** Failed passes in a row, for the backoff. */
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private nextPassAt = Number.POSITIVE_INFINITY;
  private pass: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private probing: Promise<boolean> | undefined;
  private isolating: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly opts: SpoolingSinkOptions,
    private readonly tuning: SinkTuning,
    private readonly spool: Spool,
  ) {}

  /** Opens the spool and starts replaying at once: a restart replays what an earlier process spooled. */
  static async open(opts: SpoolingSinkOptions): Promise<SpoolingSink> {
    const tuning = tuningFrom(opts);
    const spool = await Spool.open({
      ...tuning,
      dir: join(opts.dataDir, "spool"),
      rejectedFile: join(opts.dataDir, "spool-rejected.ndjson"),
      logger: opts.logger,
    });
    const sink = new SpoolingSink(opts, tuning, spool);
    sink.schedule(0);
    return sink;
  }

  submit(events: readonly Built[]): void {
    if (events.length === 0) return;
    if (this.closing) {
      eventsLost.inc({ reason: "closed" }, events.length);
      this.opts.logger.error({ ids: idsOf(events.map((b) => (b.ok ? b.event : b.seen))) }, "usage events submitted after the sink closed were not recorded");
      return;
    }
    // A rejection here would be unhandled and end the process: recording must never take the proxy down.
    const delivery = this.deliver(events).catch((err: unknown) =>
      this.opts.logger.error({ ids: idsOf(events.map((b) => (b.ok ? b.event : b.seen))), error: errorText(err) }, "unexpected failure while recording usage"),
    );
    this.inFlight.add(delivery);
    void delivery.finally(() => this.inFlight.delete(delivery));
  }

  status(): SinkStatus {
    const { events, oldest } = this.spool.stats();
    const database = this.degraded ? "degraded" : "ok";
    return oldest ? { spooled_events: events, oldest, database } : { spooled_events: events, database };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    clearTimeout(this.timer);
    await this.pass;
    await Promise.all([...this.inFlight]);
    await this.spool.close();
    this.publish();
  }

  private async deliver(events: readonly Built[]): Promise<void> {
    const storable = await this.setAsideUnstorable(events);
    if (storable.length === 0) return;
    // While the database is known to be down, asking it again would only hold events in memory;
    // the replay loop finds out when it is back.
    const outcome = this.degraded ? "outage" : await this.storeWithin(storable);
    if (outcome === "outage") await this.toSpool(storable);
  }

  /** The built events; the ones Postgres could never take are kept aside rather than failing the rest with them. */
  private async setAsideUnstorable(events: readonly Built[]): Promise<LedgerEvent[]> {
    const refused = events.flatMap((b) => (b.ok ? [] : [b]));
    if (refused.length > 0)
      await this.keepAside(
        refused.map((r) => encodeEvent(r.seen)),
        { refused: refused.map((r) => ({ id: `${r.seen.source}/${r.seen.id}`, reason: r.reason })) },
      );
    return events.flatMap((b) => (b.ok ? [b.event] : []));
  }

  private async toSpool(events: LedgerEvent[]): Promise<void> {
    try {
      await this.spool.append(events);
    } catch (err) {
      eventsLost.inc({ reason: "spool_write_failed" }, events.length);
      this.opts.logger.error({ ids: idsOf(events), error: errorText(err) }, "usage events lost: the database is unreachable and the spool cannot be written");
      return;
    }
    spoolWritten.inc(events.length);
    this.publish();
    this.wake();
  }

  private async storeWithin(events: LedgerEvent[]): Promise<Outcome> {
    const outcome = await within(this.store(events), this.tuning.writeTimeoutMs);
    return outcome ?? this.outage(new Error(`no answer from the database within ${this.tuning.writeTimeoutMs} ms`));
  }

  /** Records events; "outage" when the database cannot be reached. */
  private async store(events: LedgerEvent[]): Promise<Outcome> {
    const failure = await this.attempt(events);
    if (!failure) return "done";
    if (!(await this.refusedWhileUp(failure))) return this.outage(failure);
    // The Recorder batches callers together, so two isolations at once would fail each other's
    // good events with their bad ones: one at a time, a suspect shares batches with good events only.
    const run = this.isolating.then(() => this.isolate(events));
    this.isolating = run.catch(() => {});
    return run;
  }

  /**
   * Halves a batch the database refuses while answering (beyond what the builder foresees, e.g.
   * a constraint) until the refused events are found, and keeps those aside so they cannot block
   * the replay. A lone event is tried once more first, so a blip is not taken for a bad event.
   */
  private async isolate(events: LedgerEvent[]): Promise<Outcome> {
    const failure = await this.attempt(events);
    if (!failure) return "done";
    if (!(await this.refusedWhileUp(failure))) return this.outage(failure);
    if (events.length === 1) {
      await this.keepAside(events.map(encodeEvent), { ids: idsOf(events), code: sqlState(failure) });
      return "done";
    }
    const half = Math.ceil(events.length / 2);
    const first = await this.isolate(events.slice(0, half));
    return first === "outage" ? first : this.isolate(events.slice(half));
  }

  /** The recorder's failure as a value; success also tells that the database is back. */
  private attempt(events: LedgerEvent[]): Promise<Error | undefined> {
    return this.opts.recorder.record(events).then(
      () => {
        this.markUp();
        return undefined;
      },
      (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
    );
  }

  /** The database itself answered with an error, and still answers: the events, not the link, are the problem. */
  private async refusedWhileUp(err: Error): Promise<boolean> {
    return sqlState(err) !== undefined && (await this.probe());
  }

  private probe(): Promise<boolean> {
    this.probing ??= within(
      this.opts.database.rows(sql`select 1`).then(
        () => true,
        () => false,
      ),
      this.tuning.writeTimeoutMs,
    ).then((up) => {
      this.probing = undefined;
      return up === true;
    });
    return this.probing;
  }

  private outage(err: Error): Outcome {
    if (!this.degraded) {
      this.degraded = true;
      ledgerDegraded.set(1);
      this.opts.logger.warn({ cause: causeOf(err) }, "ledger database unreachable; usage events go to the spool");
    }
    return "outage";
  }

  private markUp(): void {
    if (!this.degraded) return;
    this.degraded = false;
    ledgerDegraded.set(0);
    this.opts.logger.info("ledger database reachable again; replaying the spool");
  }

  private async keepAside(lines: string[], context: Record<string, unknown>): Promise<void> {
    eventsRejected.inc(lines.length);
    this.opts.logger.error(context, "usage events that can never be recorded were kept in spool-rejected.ndjson");
    await this.spool.reject(lines).catch((err: unknown) => {
      eventsLost.inc({ reason: "spool_write_failed" }, lines.length);
      this.opts.logger.error({ ...context, error: errorText(err) }, "could not keep refused usage events");
    });
  }

  private schedule(delayMs: number): void {
    if (this.closing) return;
    clearTimeout(this.timer);
    this.nextPassAt = Date.now() + delayMs;
    this.timer = setTimeout(() => this.runPass(), delayMs);
    // The server keeps a gateway alive; a forgotten sink must not keep a script or test alive.
    this.timer.unref();
  }

  /** Newly spooled events should not wait for the idle scan (but do wait out a backoff). */
  private wake(): void {
    if (this.failures === 0 && !this.pass && this.nextPassAt > Date.now() + this.tuning.replayIntervalMs) this.schedule(this.tuning.replayIntervalMs);
  }

  private runPass(): void {
    this.timer = undefined;
    this.nextPassAt = Number.POSITIVE_INFINITY;
    this.pass = this.replayPass()
      .catch((err: unknown): PassResult => {
        this.opts.logger.error({ error: errorText(err) }, "spool replay failed");
        return "outage";
      })
      .then((result) => {
        this.pass = undefined;
        this.publish();
        this.schedule(this.delayAfter(result));
      });
  }

  private delayAfter(result: PassResult): number {
    if (result === "outage") {
      this.failures++;
      return Math.min(this.tuning.maxBackoffMs, this.tuning.replayIntervalMs * 2 ** (this.failures - 1));
    }
    this.failures = 0;
    return result === "more" ? this.tuning.replayIntervalMs : this.tuning.idleScanMs;
  }

  private async replayPass(): Promise<PassResult> {
    await this.spool.seal();
    const files = await this.spool.replayable();
    if (files.length === 0 && this.degraded) {
      // Nothing to try the database with; ask it directly, or submissions would stay spooled for good.
      if (!(await this.probe())) return "outage";
      this.markUp();
    }
    for (const file of files) {
      if (this.closing) break;
      const claim = await this.spool.claim(file);
      if (!claim) continue; // another process took it first
      if ((await this.replayFile(claim)) === "outage") return "outage";
    }
    return this.spool.stats().events > 0 ? "more" : "empty";
  }

  /** Records a claimed file batch by batch; deletes it only once all of it is committed, else hands it back. */
  private async replayFile(claim: SpoolClaim): Promise<Outcome> {
    const { events: read, unreadable, invalid } = await this.spool.read(claim);
    eventsLost.inc({ reason: "unreadable_line" }, unreadable);
    if (invalid.length > 0) await this.keepAside(invalid, { file: claim.id, lines: invalid.length });
    // Spooled events were built before: they come back with their price; older lines without one are priced now.
    const { builder } = this.opts.recorder;
    const events = await this.setAsideUnstorable(read.map(({ event, price }) => (price ? builder.restore(event, price) : builder.build(event))));
    for (let i = 0; i < events.length; i += this.tuning.replayBatchSize) {
      const batch = events.slice(i, i + this.tuning.replayBatchSize);
      // Closing mid-file: the whole file is replayed again later, and the ledger drops the repeats.
      if (this.closing || (await this.storeWithin(batch)) === "outage") {
        await this.spool.release(claim);
        return "outage";
      }
      spoolReplayed.inc(batch.length);
    }
    await this.spool.complete(claim);
    this.opts.logger.info({ file: claim.id, events: events.length }, "replayed a spool file into the ledger");
    return "done";
  }

  private publish(): void {
    const { events, oldest } = this.spool.stats();
    spoolEvents.set(events);
    spoolOldest.set(oldest ? oldest.getTime() / 1000 : 0);
  }
}

/** The promise's value, or undefined if it takes longer than ms. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The errors down a cause chain: drizzle wraps the driver's error in one that quotes the whole query. */
function* causes(err: unknown): Generator<unknown> {
  for (let e = err; e !== undefined && e !== null; e = (e as { cause?: unknown }).cause) yield e;
}

/** The SQLSTATE of an error the database itself returned (both drivers give it a severity); undefined for a broken link. */
function sqlState(err: unknown): string | undefined {
  for (const e of causes(err)) {
    const { code, severity } = e as { code?: unknown; severity?: unknown };
    if (typeof code === "string" && typeof severity === "string") return code;
  }
  return undefined;
}

/**
 * What a log may say about an outage. Never the error itself: drizzle's message and PGlite's error
 * carry the query parameters, which are event contents. A database's own message can quote a value
 * too, so of its errors only the SQLSTATE is told; a broken link's message is safe and useful.
 */
function causeOf(err: unknown): { code: string } | { code?: string; message: string } {
  const state = sqlState(err);
  if (state) return { code: state };
  let last: unknown = err;
  for (const e of causes(err)) last = e;
  const code = (last as { code?: unknown }).code;
  return { ...(typeof code === "string" && { code }), message: errorText(last) };
}

const idsOf = (events: readonly UsageEvent[]) => events.map((e) => `${e.source}/${e.id}`);

/** The tuning options given, defaults for the rest. */
function tuningFrom(opts: Partial<SinkTuning>): SinkTuning {
  const keys = Object.keys(DEFAULT_SINK_TUNING) as (keyof SinkTuning)[];
  return Object.fromEntries(keys.map((k) => [k, opts[k] ?? DEFAULT_SINK_TUNING[k]])) as unknown as SinkTuning;
}
