import { randomBytes } from "node:crypto";
import { closeSync, fdatasync, openSync, writeSync } from "node:fs";
import { mkdir, open, readFile, readdir, rename, stat, unlink, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Logger } from "../logger.ts";
import type { PriceResult } from "../pricing/cost.ts";
import type { LedgerEvent } from "./build-event.ts";
import { type PricedEvent, UsageEvent } from "./event.ts";

/*
 * The journal: every proxied call's event, appended to a local file before the client gets the last
 * byte of its answer, and kept until Postgres holds it. Appends are a plain write(2) into the OS's
 * page cache (a SIGKILL cannot lose them); fdatasync runs in the background every `syncIntervalMs`,
 * so a power cut loses at most that window.
 *
 * The journal is a folder of segments, NDJSON files whose name is their state. A rename moves a
 * segment from one state to the next atomically, which lets several processes share the folder:
 *
 *   <id>.writing-<owner>     appended to by its owner, whose recorder drains it from memory;
 *                            deleted by the owner once every event in it is committed
 *   <id>.ndjson              sealed: holds events not known to be committed, waiting for replay
 *   <id>.replaying-<owner>   claimed by the owner, who deletes it once every event is committed
 *
 * A segment whose owner died (SIGKILL, a crash, a power cut) is sealed by the next process that
 * looks and replayed; the ledger's unique (source, id) makes a replayed event that had landed a no-op.
 *
 * <id> is the creation time in ms, zero-padded so names sort oldest first, and a random suffix;
 * <owner> is `<pid>.<instance>@<host>`.
 */

/**
 * One event as one NDJSON line: the date as ISO 8601 text and bigints as decimal text, so both come
 * back exact. A built event's line carries its price (`cost`, `priced`) too.
 */
export function encodeEvent(event: UsageEvent | PricedEvent): string {
  // A fresh object of plain values, field by field: JSON.stringify then stays on its fast path. A
  // spread copy with the bigints overwritten, and the Date left to its toJSON, took 3.1-5.8 µs a line
  // in a loop against 2.2-2.3 (alternated), and this runs for every proxied call. A replacer was
  // slower still (it is called for every key). An absent field is undefined here, and left out.
  const priced = "cost" in event ? event : undefined;
  const line = {
    source: event.source,
    id: event.id,
    ts: isoText(event.ts),
    provider: event.provider,
    model: event.model,
    tokens: event.tokens,
    service_tier: event.service_tier,
    reported_cost: event.reported_cost === null ? null : event.reported_cost.toString(),
    latency_ms: event.latency_ms,
    status: event.status,
    team: event.team,
    project: event.project,
    feature: event.feature,
    user: event.user,
    session: event.session,
    api_key_id: event.api_key_id,
    tags: event.tags,
    request_id: event.request_id,
    cost: priced?.cost.toString(),
    priced: priced?.priced,
    usage_unknown: event.usage_unknown,
    estimated: event.estimated,
  } satisfies Record<keyof PricedEvent, unknown>;
  return JSON.stringify(line);
}

/**
 * A date as JSON.stringify writes one: ISO 8601, or null for an invalid date (toISOString would
 * throw). The text up to the milliseconds is kept for the last second seen: toISOString was a third
 * of a line's encoding, and the calls of one second share it.
 */
export function isoText(date: Date): string | null {
  const ms = date.getTime();
  if (Number.isNaN(ms)) return null;
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond.at) isoSecond = { at: second, prefix: new Date(second * 1000).toISOString().slice(0, -4) };
  const millis = ms - second * 1000;
  return `${isoSecond.prefix}${millis < 10 ? "00" : millis < 100 ? "0" : ""}${millis}Z`;
}
/** The second isoText saw last and its text up to the milliseconds ("2026-12-06T16:39:16."). */
let isoSecond = { at: Number.NaN, prefix: "" };

/** An event read back, with the price it was built with (lines written before prices were kept have none). */
export interface Decoded {
  event: UsageEvent;
  price: PriceResult | undefined;
}

/** The event on one journal line, or why the line holds none: not JSON at all, or not a valid event. */
export function decodeEvent(line: string): Decoded | "unreadable" | "invalid" {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return "unreadable";
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return "unreadable";
  const fields = raw as Record<string, unknown>;
  const parsed = UsageEvent.safeParse({ ...fields, ts: reviveDate(fields.ts), reported_cost: reviveBigint(fields.reported_cost) });
  if (!parsed.success) return "invalid";
  const cost = reviveBigint(fields.cost);
  if (cost === undefined && fields.priced === undefined) return { event: parsed.data, price: undefined };
  if (typeof cost !== "bigint" || cost < 0n || typeof fields.priced !== "boolean") return "invalid";
  return { event: parsed.data, price: { cost, priced: fields.priced } };
}

const reviveDate = (value: unknown) => (typeof value === "string" ? new Date(value) : value);
const reviveBigint = (value: unknown) => (typeof value === "string" && /^-?\d+$/.test(value) ? BigInt(value) : value);

interface Owner {
  pid: number;
  instance: string;
  host: string;
}

const HOST = hostname().replace(/[^A-Za-z0-9.-]/g, "_");
const ownerTag = (o: Owner) => `${o.pid}.${o.instance}@${o.host}`;
const FILE_NAME =
  /^(?<id>\d{15}-[0-9a-f]{8})\.(?:ndjson|(?<state>writing|replaying)-(?<pid>\d+)\.(?<instance>[0-9a-f]{8})@(?<host>[A-Za-z0-9._-]+))$/;

/**
 * Journal instances open in this process. A restarted gateway can get its predecessor's pid back
 * (always so as pid 1 in a container), so a live pid alone does not prove a file's owner lives.
 */
const liveInstances = new Set<string>();

const fdatasyncAsync = promisify(fdatasync);

/** A file in the journal folder, as listed. */
export interface JournalFile {
  id: string;
  name: string;
  state: "sealed" | "writing" | "replaying";
  owner?: Owner;
  size: number;
  mtimeMs: number;
}

/** A file this process has claimed for replay. */
export interface JournalClaim {
  id: string;
  path: string;
}

export interface JournalContents {
  events: Decoded[];
  /** Lines that are not JSON: a torn last line from a crash mid-append, or corruption. */
  unreadable: number;
  /** Lines that are JSON but not a valid event; kept aside rather than dropped. */
  invalid: string[];
}

export interface JournalTuning {
  /** How often what was appended is fdatasync'd: the most a power cut can lose. */
  syncIntervalMs: number;
  /** A segment this large is retired and the next append starts a new one. */
  maxSegmentBytes: number;
  /** A segment drained from memory is retired this long after it was started, so recorded ones are deleted soon. */
  rotateMs: number;
  /** A segment not appended to for this long is retired (so nobody takes over a file its owner still writes). */
  idleMs: number;
  /** A file untouched this long is taken over whoever owns it; must exceed the time one file takes to replay. */
  staleAfterMs: number;
}

export interface JournalOptions extends JournalTuning {
  dir: string;
  /** Where lines that can never be recorded are kept for an operator to look at. */
  rejectedFile: string;
  logger: Logger;
}

/**
 * A segment this process writes. Its fate is decided once it is retired and nothing of it is in
 * flight in memory: deleted if every event was committed from memory, else sealed for replay.
 */
export class Segment {
  appended = 0;
  /** Events handed to the recorder from memory and not yet answered. */
  inFlight = 0;
  /** Some event in it is not known to be committed: it must be replayed from the file. */
  needsReplay = false;
  retired = false;
  bytes = 0;
  /** Bytes appended but not yet fdatasync'd. */
  dirty = false;
  lastAppend = Date.now();
  /** The directory entry is not yet fsync'd. */
  newName = true;
  syncing: Promise<void> | undefined;
  settled = false;

  constructor(
    readonly id: string,
    readonly path: string,
    readonly fd: number,
    readonly started: number,
  ) {}
}

export class Journal {
  private readonly me: Owner = { pid: process.pid, instance: randomBytes(4).toString("hex"), host: HOST };
  /** Events and bytes per file id of files not this instance's own open segments, for status. */
  private readonly inventory = new Map<string, { events: number; bytes: number }>();
  private current: Segment | undefined;
  /** Own segments still open: the current one and retired ones waiting for their fate. */
  private readonly open = new Set<Segment>();
  private readonly timer: NodeJS.Timeout;
  /** File operations of this instance that must not interleave (sealing, rejecting). */
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(private readonly opts: JournalOptions) {
    liveInstances.add(this.me.instance);
    this.timer = setInterval(() => this.tick(), opts.syncIntervalMs);
    // The server keeps a gateway alive; a forgotten journal must not keep a script or test alive.
    this.timer.unref();
  }

  /** Opens the folder and takes stock of it, so stats() is right before the first replay. */
  static async open(opts: JournalOptions): Promise<Journal> {
    await mkdir(opts.dir, { recursive: true });
    const journal = new Journal(opts);
    await journal.refreshInventory(await journal.list());
    return journal;
  }

  /**
   * Writes events to the current segment, a line each, in one write, synchronously: once this
   * returns the lines are in the OS, and only a power cut within the sync window can lose them.
   * Throws if the write fails. The caller notes what becomes of each event on the segment, then
   * calls settle(segment).
   */
  append(events: readonly LedgerEvent[]): Segment {
    if (this.closed) throw new Error("the journal is closed");
    const segment = this.current ?? this.startSegment();
    let lines = "";
    for (const event of events) lines += `${encodeEvent(event)}\n`;
    let written: number;
    try {
      written = writeSync(segment.fd, lines);
    } catch (err) {
      this.abandonCurrent();
      throw err;
    }
    segment.bytes += written;
    segment.dirty = true;
    segment.lastAppend = Date.now();
    if (written !== Buffer.byteLength(lines)) {
      // Part of a line is on disk: appending after it would fuse two lines. The segment ends here.
      this.abandonCurrent();
      throw new Error(`the journal took ${written} of ${Buffer.byteLength(lines)} bytes (disk full?)`);
    }
    segment.appended += events.length;
    if (segment.bytes >= this.opts.maxSegmentBytes) {
      // Retired, but its fate waits for the caller's settle(): the events just written are not yet
      // counted in flight, and deciding now could delete the file under them.
      this.current = undefined;
      segment.retired = true;
    }
    return segment;
  }

  /** The drain's word that a segment's fate may be decided (its in-flight events were answered). */
  settle(segment: Segment): void {
    if (!segment.retired || segment.inFlight > 0 || segment.settled) return;
    segment.settled = true;
    this.open.delete(segment);
    // Counted as on disk from now on, while the file is sealed under its new name.
    if (segment.needsReplay) this.inventory.set(segment.id, { events: segment.appended, bytes: segment.bytes });
    void this.serially(() => this.finish(segment)).catch((err: unknown) =>
      this.opts.logger.error({ segment: segment.id, error: errorText(err) }, "could not close a journal segment; it is replayed at the next start"),
    );
  }

  /** Retires the current segment if it must be replayed, so a replay pass can take it now. */
  retireForReplay(): Promise<void> {
    if (this.current?.needsReplay) this.retire(this.current);
    return this.chain;
  }

  /** Unrecorded events: in own open segments (not yet committed from memory) and in files on disk. */
  stats(): { events: number; oldest: Date | undefined } {
    let events = 0;
    let oldest = Number.POSITIVE_INFINITY;
    for (const s of this.open) {
      if (s.appended === 0) continue;
      events += s.needsReplay ? s.appended : s.inFlight;
      if (s.needsReplay || s.inFlight > 0) oldest = Math.min(oldest, s.started);
    }
    for (const [id, { events: n }] of this.inventory) {
      if (n === 0) continue;
      events += n;
      oldest = Math.min(oldest, Number(id.slice(0, 15)));
    }
    return { events, oldest: Number.isFinite(oldest) ? new Date(oldest) : undefined };
  }

  /**
   * Files to replay, oldest first: sealed ones and files whose owner is gone. Files a gone writer
   * left open are sealed on the way. Refreshes the inventory behind stats().
   */
  async replayable(): Promise<JournalFile[]> {
    const all = await this.list();
    await this.refreshInventory(all);
    const files = all.filter((f) => !this.isMine(f));
    const ready: JournalFile[] = [];
    for (const file of files) {
      if (file.state === "sealed") ready.push(file);
      else if (this.isStale(file)) {
        const taken = file.state === "writing" ? await this.sealAbandoned(file) : file;
        if (taken) ready.push(taken);
      }
    }
    return ready.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Takes a file for replay; undefined when another process took it first. */
  async claim(file: JournalFile): Promise<JournalClaim | undefined> {
    const path = join(this.opts.dir, `${file.id}.replaying-${ownerTag(this.me)}`);
    try {
      await rename(join(this.opts.dir, file.name), path);
      // A sealed file keeps its old mtime; without a fresh one the claim would look abandoned at once.
      const now = new Date();
      await utimes(path, now, now);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    return { id: file.id, path };
  }

  async read(claim: JournalClaim): Promise<JournalContents> {
    const lines = (await readFile(claim.path, "utf8")).split("\n");
    const contents: JournalContents = { events: [], unreadable: 0, invalid: [] };
    lines.forEach((line, i) => {
      if (line === "") return;
      const decoded = decodeEvent(line);
      if (typeof decoded !== "string") contents.events.push(decoded);
      else if (decoded === "invalid") {
        contents.invalid.push(line);
        this.opts.logger.warn({ file: claim.id, line: i + 1 }, "journal line is not a valid usage event; kept aside");
      } else {
        contents.unreadable++;
        // Every complete append ends in a newline, so only a crash mid-append leaves a last line without one.
        const torn = i === lines.length - 1;
        this.opts.logger.warn({ file: claim.id, line: i + 1, torn }, torn ? "skipping a torn last journal line" : "skipping an unreadable journal line");
      }
    });
    return contents;
  }

  /** Every event of the claimed file is committed: it can go. */
  async complete(claim: JournalClaim): Promise<void> {
    await unlink(claim.path);
    this.inventory.delete(claim.id);
  }

  /** Hands a claimed file back, whole, for a later replay. */
  async release(claim: JournalClaim): Promise<void> {
    await rename(claim.path, join(this.opts.dir, `${claim.id}.ndjson`));
  }

  /** Keeps lines that can never be recorded out of the replay, in the rejected file. */
  reject(lines: string[]): Promise<void> {
    return this.serially(async () => {
      const handle = await open(this.opts.rejectedFile, "a");
      try {
        await handle.appendFile(`${lines.join("\n")}\n`);
        await handle.datasync();
      } finally {
        await handle.close();
      }
    });
  }

  /**
   * Stops appends and decides every own segment's fate now: what is committed goes, the rest is
   * fdatasync'd and sealed for the next process. Call after the drain stopped waiting for answers.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.current = undefined;
    for (const s of [...this.open]) {
      // An answer still outstanding is not known to be committed: the segment is replayed.
      if (s.inFlight > 0) s.needsReplay = true;
      s.retired = true;
      s.inFlight = 0;
      this.settle(s);
    }
    await this.chain;
    liveInstances.delete(this.me.instance);
  }

  private startSegment(): Segment {
    const now = Date.now();
    const id = `${String(now).padStart(15, "0")}-${randomBytes(4).toString("hex")}`;
    const path = join(this.opts.dir, `${id}.writing-${ownerTag(this.me)}`);
    const segment = new Segment(id, path, openSync(path, "wx"), now);
    this.current = segment;
    this.open.add(segment);
    return segment;
  }

  private retire(segment: Segment): void {
    if (this.current === segment) this.current = undefined;
    segment.retired = true;
    this.settle(segment);
  }

  /** A failed write leaves the current segment unusable: it is replayed whole. */
  private abandonCurrent(): void {
    const segment = this.current;
    if (!segment) return;
    segment.needsReplay = true;
    this.retire(segment);
  }

  /** The group fsync, and retirement of segments by age and idleness. */
  private tick(): void {
    const now = Date.now();
    const current = this.current;
    if (current && (now - current.lastAppend >= this.opts.idleMs || (!current.needsReplay && now - current.started >= this.opts.rotateMs))) this.retire(current);
    for (const s of this.open) void this.sync(s);
  }

  /** fdatasync of what was appended (and of the folder, for a new file's name), one at a time per segment. */
  private sync(segment: Segment): Promise<void> {
    if (segment.syncing || (!segment.dirty && !segment.newName)) return segment.syncing ?? Promise.resolve();
    segment.dirty = false;
    const newName = segment.newName;
    segment.newName = false;
    segment.syncing = (async () => {
      try {
        await fdatasyncAsync(segment.fd);
        if (newName) await syncDir(this.opts.dir);
      } catch (err) {
        segment.dirty = true;
        segment.newName ||= newName;
        this.opts.logger.warn({ segment: segment.id, error: errorText(err) }, "could not fdatasync a journal segment; retrying");
      } finally {
        segment.syncing = undefined;
      }
    })();
    return segment.syncing;
  }

  /** A settled segment: deleted if every event is committed, else made durable and sealed for replay. */
  private async finish(segment: Segment): Promise<void> {
    await segment.syncing;
    if (!segment.needsReplay) {
      closeSync(segment.fd);
      await unlink(segment.path).catch((err: unknown) => {
        if (!isMissing(err)) throw err;
      });
      return;
    }
    await fdatasyncAsync(segment.fd);
    closeSync(segment.fd);
    const name = `${segment.id}.ndjson`;
    try {
      await rename(segment.path, join(this.opts.dir, name));
      await syncDir(this.opts.dir);
    } catch (err) {
      // Taken over by a process that thought this one gone: the file is in its hands now.
      if (!isMissing(err)) throw err;
      this.inventory.delete(segment.id);
    }
  }

  private serially(work: () => Promise<void>): Promise<void> {
    const run = this.chain.then(work);
    this.chain = run.catch(() => {});
    return run;
  }

  private isMine(file: JournalFile): boolean {
    return file.owner?.instance === this.me.instance && file.owner.pid === this.me.pid && file.owner.host === this.me.host && file.state === "writing";
  }

  private async sealAbandoned(file: JournalFile): Promise<JournalFile | undefined> {
    const name = `${file.id}.ndjson`;
    try {
      await rename(join(this.opts.dir, file.name), join(this.opts.dir, name));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    this.opts.logger.info({ file: file.id, owner: ownerTag(file.owner!) }, "sealed a journal segment left open by a process that is gone");
    return { ...file, name, state: "sealed", owner: undefined };
  }

  /** Gone for sure (same host: dead pid, or this pid without that instance), or silent for too long. */
  private isStale(file: JournalFile): boolean {
    if (Date.now() - file.mtimeMs > this.opts.staleAfterMs) return true;
    const owner = file.owner!;
    if (owner.host !== HOST) return false;
    if (owner.pid === process.pid) return !liveInstances.has(owner.instance);
    return !processAlive(owner.pid);
  }

  private async list(): Promise<JournalFile[]> {
    const files: JournalFile[] = [];
    for (const name of await readdir(this.opts.dir)) {
      const match = FILE_NAME.exec(name)?.groups;
      if (!match) continue;
      const info = await stat(join(this.opts.dir, name)).catch((err: unknown) => {
        if (isMissing(err)) return undefined; // renamed or deleted by another process meanwhile
        throw err;
      });
      if (!info) continue;
      const owner = match.state ? { pid: Number(match.pid), instance: match.instance!, host: match.host! } : undefined;
      const state = (match.state ?? "sealed") as JournalFile["state"];
      files.push({ id: match.id!, name, state, owner, size: info.size, mtimeMs: info.mtimeMs });
    }
    return files;
  }

  private async refreshInventory(files: JournalFile[]): Promise<void> {
    const present = new Set(files.map((f) => f.id));
    for (const id of this.inventory.keys()) if (!present.has(id)) this.inventory.delete(id);
    for (const file of files) {
      if (this.isMine(file) || this.inventory.get(file.id)?.bytes === file.size) continue;
      const text = await readFile(join(this.opts.dir, file.name), "utf8").catch((err: unknown) => {
        if (isMissing(err)) return undefined;
        throw err;
      });
      if (text !== undefined) this.inventory.set(file.id, { events: countLines(text), bytes: file.size });
    }
  }
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

const isMissing = (err: unknown) => (err as NodeJS.ErrnoException).code === "ENOENT";

export const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));
