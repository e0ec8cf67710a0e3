import { readdir, rename, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { Counter, Gauge } from "prom-client";
import type { Logger } from "../logger.ts";
import { registry } from "../metrics.ts";
import type { Built, LedgerEvent } from "./build-event.ts";
import type { UsageEvent } from "./event.ts";
import { type JournalClaim, type JournalTuning, Journal, type Segment, encodeEvent, errorText } from "./journal.ts";
import type { Recorder } from "./recorder.ts";
import { causes, refusesTheData, sqlState } from "../db/sql-state.ts";

/** Where callers that must not wait on the database, nor fail with it, hand their usage: the proxy. */
export interface UsageSink {
  /**
   * Never throws and never waits on the database: a built event is written to the journal (a write
   * to the OS) in this turn of the event loop, together with the others submitted in it, and is
   * recorded from there; an event that could not be built (unstorable) is kept aside with why.
   */
  submit(built: Built): void;
  /**
   * Runs `send` once every event submitted so far is in the journal (at once when none waits): a
   * caller sends its answer's last bytes from here, so an answered call is journaled.
   */
  whenJournaled(send: () => void): void;
  status(): SinkStatus;
  /** Waits for writes under way and leaves whatever is not committed in the journal, fdatasync'd. */
  close(): Promise<void>;
}

export interface SinkStatus {
  /** Events in the journal not yet known to be committed to Postgres. */
  unrecorded_events: number;
  /** When the oldest of them was journaled. */
  oldest?: Date;
  database: "ok" | "degraded";
}

export interface DrainTuning extends JournalTuning {
  /** Between replay passes while the journal holds files to replay. */
  replayIntervalMs: number;
  /**
   * The longest wait between passes while the database stays down (the wait doubles up to it).
   * It bounds how long recording stays off once the database is back: while degraded, new events
   * wait in the files for the next pass.
   */
  maxBackoffMs: number;
  /** Between looks at the journal folder with nothing known to replay, for files other processes left. */
  idleScanMs: number;
  /** Events per record() call on replay. */
  replayBatchSize: number;
  /** Most events handed to the recorder from memory and not yet answered; beyond it they are replayed from the file. */
  maxInFlightEvents: number;
  /**
   * How long events handed over from memory may wait in the recorder for company (its record()
   * wait). They are durable in the journal already, so a long wait delays only their row, and
   * fewer, larger writes take Postgres less CPU per call (TOLLGATE_PROXY_BATCH_WAIT_MS).
   */
  recordWaitMs: number;
}

export const DEFAULT_DRAIN_TUNING: DrainTuning = {
  syncIntervalMs: 100,
  maxSegmentBytes: 4 * 1024 * 1024,
  rotateMs: 1000,
  idleMs: 1000,
  staleAfterMs: 10 * 60_000,
  replayIntervalMs: 1000,
  // A pass in an outage is one `select 1` (the probe): cheap to repeat, and 10 s here kept a
  // recovered gateway from recording for up to 10 s.
  maxBackoffMs: 2000,
  idleScanMs: 30_000,
  replayBatchSize: 1000,
  maxInFlightEvents: 20_000,
  recordWaitMs: 200,
};

export interface JournalDrainOptions extends Partial<DrainTuning> {
  /** Writes the events (with its own write timeout); its builder restores journaled ones; its probe tells a hung database. */
  recorder: Pick<Recorder, "record" | "flush" | "builder" | "probe">;
  /** TOLLGATE_DATA_DIR: the journal lives in <dataDir>/journal, events that can never be stored in <dataDir>/journal-rejected.ndjson. */
  dataDir: string;
  logger: Logger;
}

const journalEvents = new Gauge({
  name: "tollgate_journal_unrecorded_events",
  help: "Usage events in the journal not yet known to be committed to Postgres",
  registers: [registry],
});
const journalOldest = new Gauge({
  name: "tollgate_journal_oldest_timestamp_seconds",
  help: "When the oldest usage event not yet committed was journaled; 0 when there is none",
  registers: [registry],
});
const ledgerDegraded = new Gauge({
  name: "tollgate_ledger_degraded",
  help: "1 while the ledger database is unreachable or not answering and usage events wait in the journal",
  registers: [registry],
});
const journalWritten = new Counter({
  name: "tollgate_journal_events_written_total",
  help: "Usage events appended to the journal",
  registers: [registry],
});
const journalReplayed = new Counter({
  name: "tollgate_journal_events_replayed_total",
  help: "Journaled usage events recorded in the ledger by replay from the files (duplicates included)",
  registers: [registry],
});
const eventsRejected = new Counter({
  name: "tollgate_usage_events_rejected_total",
  help: "Usage events the database refuses or that are not valid, kept in journal-rejected.ndjson",
  registers: [registry],
});
const eventsLost = new Counter({
  name: "tollgate_usage_events_lost_total",
  help: "Usage events neither recorded nor kept, by reason (journal_write_failed, unreadable_line, closed)",
  labelNames: ["reason"] as const,
  registers: [registry],
});

type Outcome = "done" | "outage";
/** How a replayed batch went: "unkept" when it is stored but for events that could not be kept aside either. */
type Stored = Outcome | "unkept";
type PassResult = "empty" | "more" | "outage";

/**
 * The proxy's usage path: each event is appended to the journal, then handed to the Recorder from
 * memory; its segment file is deleted once every event in it is committed. What the database does
 * not take (down, hung past the recorder's write timeout, refusing, or too far behind) stays in
 * the journal and a replay loop records it from the files, as it does on start with what an
 * earlier process left. A batch the database refuses while answering is split until the refused
 * events are found; those are kept aside so they cannot block the replay.
 */
export class JournalDrain implements UsageSink {
  private degraded = false;
  /** Events written and waiting for the hand-over to the recorder, and their segments. */
  private queued: LedgerEvent[] = [];
  private queuedIn: (Segment | undefined)[] = [];
  /**
   * Events submitted in this turn of the event loop, not yet written, and the sends waiting for
   * them: one write per turn for all of them rather than one per event (on the bench machine a
   * lone write(2) of a line took 11-15 µs, four lines in one 4-5 µs each).
   */
  private unwritten: LedgerEvent[] = [];
  private waiting: (() => void)[] = [];
  private inFlightEvents = 0;
  private readonly inFlight = new Set<Promise<void>>();
  /** Failed passes in a row, for the backoff. */
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private nextPassAt = Number.POSITIVE_INFINITY;
  private pass: Promise<void> | undefined;
  private isolating: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly opts: JournalDrainOptions,
    private readonly tuning: DrainTuning,
    private readonly journal: Journal,
  ) {}

  /** Opens the journal and starts replaying at once: a restart records what an earlier process left. */
  static async open(opts: JournalDrainOptions): Promise<JournalDrain> {
    const tuning = tuningFrom(opts);
    const dir = join(opts.dataDir, "journal");
    const journal = await Journal.open({ ...tuning, dir, rejectedFile: join(opts.dataDir, "journal-rejected.ndjson"), logger: opts.logger });
    await adoptSpool(join(opts.dataDir, "spool"), dir, opts.logger);
    const drain = new JournalDrain(opts, tuning, journal);
    drain.schedule(0);
    return drain;
  }

  submit(built: Built): void {
    if (!built.ok) {
      // Never journaled: if it cannot be kept aside either, it is lost.
      void this.keepAside([encodeEvent(built.seen)], { refused: [{ id: `${built.seen.source}/${built.seen.id}`, reason: built.reason }] }).then((kept) => {
        if (!kept) eventsLost.inc({ reason: "journal_write_failed" });
      });
      return;
    }
    const event = built.event;
    if (this.closing) {
      eventsLost.inc({ reason: "closed" });
      this.opts.logger.error({ ids: idsOf([event]) }, "a usage event submitted after the journal closed was not recorded");
      return;
    }
    // Written at the end of this turn (the check phase), with every other event submitted in it.
    if (this.unwritten.length === 0) setImmediate(() => this.write());
    this.unwritten.push(event);
  }

  whenJournaled(send: () => void): void {
    if (this.unwritten.length === 0) send();
    else this.waiting.push(send);
  }

  /** The turn's events in one write, each then handed on as written (or not), then the answers that waited for them. */
  private write(): void {
    const events = this.unwritten;
    const waiting = this.waiting;
    if (events.length === 0) return;
    this.unwritten = [];
    this.waiting = [];
    let segment: Segment | undefined;
    try {
      segment = this.journal.append(events);
      journalWritten.inc(events.length);
    } catch (err) {
      // Not journaled: still recorded from memory if the database takes them, counted lost if not.
      this.opts.logger.error({ ids: idsOf(events), error: errorText(err) }, "could not write usage events to the journal");
    }
    for (const event of events) this.handOn(event, segment);
    // Everything written in this turn of the event loop goes to the recorder in one call.
    this.handOver();
    for (const send of waiting) {
      try {
        send();
      } catch (err) {
        this.opts.logger.error({ error: errorText(err) }, "an answer waiting for the journal failed to send");
      }
    }
  }

  /** An event the journal holds (in `segment`, or nowhere when its write failed): to the recorder from memory, or left to replay. */
  private handOn(event: LedgerEvent, segment: Segment | undefined): void {
    if (this.degraded || this.inFlightEvents >= this.tuning.maxInFlightEvents) {
      // The database is away or far behind: the event waits in the file rather than in memory.
      if (segment) {
        segment.needsReplay = true;
        this.journal.settle(segment);
      } else eventsLost.inc({ reason: "journal_write_failed" });
      this.wake();
      return;
    }
    if (segment) {
      segment.inFlight++;
      this.journal.settle(segment);
    }
    this.inFlightEvents++;
    this.queued.push(event);
    this.queuedIn.push(segment);
  }

  status(): SinkStatus {
    const { events, oldest } = this.journal.stats();
    const database = this.degraded ? "degraded" : "ok";
    return oldest ? { unrecorded_events: events, oldest, database } : { unrecorded_events: events, database };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    clearTimeout(this.timer);
    this.write();
    // What waits in the recorder for company (up to recordWaitMs) is written now, not when its wait is up.
    void this.opts.recorder.flush().catch(() => {});
    await this.pass;
    // Each answer comes within the recorder's write timeout; what is not committed by then is replayed.
    await Promise.all([...this.inFlight]);
    await this.journal.close();
    this.publish();
  }

  private handOver(): void {
    if (this.queued.length === 0) return;
    const events = this.queued;
    const segments = this.queuedIn;
    this.queued = [];
    this.queuedIn = [];
    const run = this.opts.recorder.record(events, this.tuning.recordWaitMs).then(
      () => {
        this.markUp();
        this.answered(segments, false);
      },
      (err: unknown) => {
        this.answered(segments, true);
        const failure = err instanceof Error ? err : new Error(String(err));
        // A refusal of the data is some events' fault: the replay isolates them. Any other failure
        // (no answer, read-only, out of disk) is the database's, and the events wait in the journal.
        const code = sqlState(failure);
        if (code === undefined || !refusesTheData(code)) this.outage(failure);
        this.wake();
      },
    );
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
  }

  private answered(segments: (Segment | undefined)[], failed: boolean): void {
    this.inFlightEvents -= segments.length;
    for (const s of segments) {
      if (!s) {
        if (failed) eventsLost.inc({ reason: "journal_write_failed" });
        continue;
      }
      s.inFlight--;
      if (failed) s.needsReplay = true;
    }
    for (const s of segments) if (s) this.journal.settle(s);
    this.publish();
  }

  /** Records events on replay; "outage" when the database cannot be reached or does not answer. */
  private async store(events: LedgerEvent[]): Promise<Stored> {
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
  private async isolate(events: LedgerEvent[]): Promise<Stored> {
    const failure = await this.attempt(events);
    if (!failure) return "done";
    if (!(await this.refusedWhileUp(failure))) return this.outage(failure);
    if (events.length === 1) {
      // Not kept aside (that file cannot be written): it stays in its journal file, handed back.
      return (await this.keepAside(events.map(encodeEvent), { ids: idsOf(events), code: sqlState(failure) })) ? "done" : "unkept";
    }
    const half = Math.ceil(events.length / 2);
    const first = await this.isolate(events.slice(0, half));
    if (first === "outage") return first;
    const second = await this.isolate(events.slice(half));
    return second === "done" ? first : second;
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

  /**
   * The database itself refused the data, and still answers: the events, not the database, are the
   * problem. A refusal about its state (read-only, out of disk, a schema this build does not know,
   * as after a newer build's migration) is an outage: those events wait in the journal.
   */
  private async refusedWhileUp(err: Error): Promise<boolean> {
    const code = sqlState(err);
    return code !== undefined && refusesTheData(code) && (await this.opts.recorder.probe());
  }

  private outage(err: Error): Outcome {
    if (!this.degraded) {
      this.degraded = true;
      ledgerDegraded.set(1);
      this.opts.logger.warn({ cause: causeOf(err) }, "ledger database unreachable, not answering or refusing writes; usage events wait in the journal");
    }
    return "outage";
  }

  private markUp(): void {
    if (!this.degraded) return;
    this.degraded = false;
    ledgerDegraded.set(0);
    this.opts.logger.info("ledger database answering again; replaying the journal");
  }

  /** Moves lines that can never be recorded to journal-rejected.ndjson; false when that file could not take them. */
  private async keepAside(lines: string[], context: Record<string, unknown>): Promise<boolean> {
    try {
      await this.journal.reject(lines);
    } catch (err) {
      this.opts.logger.error({ ...context, error: errorText(err) }, "could not keep refused usage events in journal-rejected.ndjson");
      return false;
    }
    eventsRejected.inc(lines.length);
    this.opts.logger.error(context, "usage events that can never be recorded were kept in journal-rejected.ndjson");
    return true;
  }

  private schedule(delayMs: number): void {
    if (this.closing) return;
    clearTimeout(this.timer);
    this.nextPassAt = Date.now() + delayMs;
    this.timer = setTimeout(() => this.runPass(), delayMs);
    // The server keeps a gateway alive; a forgotten drain must not keep a script or test alive.
    this.timer.unref();
  }

  /** Events left to the files should not wait for the idle scan (but do wait out a backoff). */
  private wake(): void {
    if (this.failures === 0 && !this.pass && this.nextPassAt > Date.now() + this.tuning.replayIntervalMs) this.schedule(this.tuning.replayIntervalMs);
  }

  private runPass(): void {
    this.timer = undefined;
    this.nextPassAt = Number.POSITIVE_INFINITY;
    this.pass = this.replayPass()
      .catch((err: unknown): PassResult => {
        this.opts.logger.error({ error: errorText(err) }, "journal replay failed");
        return "outage";
      })
      .then((result) => {
        this.pass = undefined;
        this.publish();
        this.schedule(this.delayAfter(result));
      });
  }

  private delayAfter(result: PassResult): number {
    if (result === "outage") return outageBackoffMs(++this.failures, this.tuning);
    this.failures = 0;
    return result === "more" ? this.tuning.replayIntervalMs : this.tuning.idleScanMs;
  }

  private async replayPass(): Promise<PassResult> {
    if (this.degraded) {
      // Ask the database directly: events wait in the files, not in calls that would tell.
      if (!(await this.opts.recorder.probe())) return "outage";
      this.markUp();
    }
    await this.journal.retireForReplay();
    const files = await this.journal.replayable();
    for (const file of files) {
      if (this.closing) break;
      const claim = await this.journal.claim(file);
      if (!claim) continue; // another process took it first
      if ((await this.replayFile(claim)) === "outage") return "outage";
    }
    return files.length > 0 || this.journal.stats().events > 0 ? "more" : "empty";
  }

  /** Records a claimed file batch by batch; deletes it only once all of it is committed, else hands it back. */
  private async replayFile(claim: JournalClaim): Promise<Outcome> {
    const { events: read, unreadable, invalid } = await this.journal.read(claim);
    // The file is deleted once replayed: lines that cannot be recorded must be kept aside first, or
    // it is handed back whole and read again later.
    const handBack = async (): Promise<Outcome> => {
      await this.journal.release(claim);
      return "outage";
    };
    if (invalid.length > 0 && !(await this.keepAside(invalid, { file: claim.id, lines: invalid.length }))) return handBack();
    // Journaled events were built before: they come back with their price; lines without one are priced now.
    const { builder } = this.opts.recorder;
    const events: LedgerEvent[] = [];
    const unbuildable: string[] = [];
    const refused: { id: string; reason: string }[] = [];
    for (const { event, price } of read) {
      const built = price ? builder.restore(event, price) : builder.build(event);
      if (built.ok) events.push(built.event);
      else {
        unbuildable.push(encodeEvent(built.seen));
        refused.push({ id: `${built.seen.source}/${built.seen.id}`, reason: built.reason });
      }
    }
    if (unbuildable.length > 0 && !(await this.keepAside(unbuildable, { refused }))) return handBack();
    let unkept = false;
    for (let i = 0; i < events.length; i += this.tuning.replayBatchSize) {
      const batch = events.slice(i, i + this.tuning.replayBatchSize);
      // Closing mid-file: the whole file is replayed again later, and the ledger drops the repeats.
      const stored = this.closing ? "outage" : await this.store(batch);
      if (stored === "outage") return handBack();
      unkept ||= stored === "unkept";
      journalReplayed.inc(batch.length);
    }
    if (unkept) return handBack();
    // Torn lines are counted lost only now: a file handed back is read again, and counted again.
    eventsLost.inc({ reason: "unreadable_line" }, unreadable);
    await this.journal.complete(claim);
    this.opts.logger.info({ file: claim.id, events: events.length }, "replayed a journal file into the ledger");
    return "done";
  }

  private publish(): void {
    const { events, oldest } = this.journal.stats();
    journalEvents.set(events);
    journalOldest.set(oldest ? oldest.getTime() / 1000 : 0);
  }
}

/** The wait before the next replay pass after `failures` (1 or more) outage passes in a row. */
export function outageBackoffMs(failures: number, tuning: Pick<DrainTuning, "replayIntervalMs" | "maxBackoffMs">): number {
  return Math.min(tuning.maxBackoffMs, tuning.replayIntervalMs * 2 ** (failures - 1));
}

/**
 * Files an older gateway left in its spool folder (same line format, same file names and states)
 * move into the journal folder, to be replayed with the rest.
 */
async function adoptSpool(spoolDir: string, journalDir: string, logger: Logger): Promise<void> {
  let names: string[];
  try {
    names = await readdir(spoolDir);
  } catch {
    return;
  }
  for (const name of names) await rename(join(spoolDir, name), join(journalDir, name)).catch(() => {});
  await rmdir(spoolDir).catch(() => {});
  if (names.length > 0) logger.info({ files: names.length }, "moved the files of the former spool folder into the journal");
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
function tuningFrom(opts: Partial<DrainTuning>): DrainTuning {
  const keys = Object.keys(DEFAULT_DRAIN_TUNING) as (keyof DrainTuning)[];
  return Object.fromEntries(keys.map((k) => [k, opts[k] ?? DEFAULT_DRAIN_TUNING[k]])) as unknown as DrainTuning;
}
