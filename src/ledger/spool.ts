import { randomBytes } from "node:crypto";
import { type FileHandle, mkdir, open, readFile, readdir, rename, stat, unlink, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Logger } from "../logger.ts";
import type { PriceResult } from "../pricing/cost.ts";
import type { LedgerEvent } from "./build-event.ts";
import { UsageEvent } from "./event.ts";

/*
 * The on-disk spool: usage events the database could not take yet, kept as NDJSON files in one
 * folder until they are replayed. A file's name is its state, and a rename moves it from one state
 * to the next atomically, which is what lets several processes share the folder:
 *
 *   <id>.writing-<owner>     being appended to by its owner
 *   <id>.ndjson              sealed: complete, waiting for replay
 *   <id>.replaying-<owner>   claimed by the owner, who deletes it once every event is committed
 *
 * <id> is the creation time in ms, zero-padded so names sort oldest first, and a random suffix;
 * <owner> is `<pid>.<instance>@<host>`.
 */

/**
 * One event as one NDJSON line: the date as ISO 8601 text and bigints as decimal text, so both come
 * back exact. A built event's line carries its price (`cost`, `priced`) too.
 */
export function encodeEvent(event: UsageEvent): string {
  return JSON.stringify(event, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value));
}

/** An event read back, with the price it was built with (lines spooled before prices were kept have none). */
export interface Decoded {
  event: UsageEvent;
  price: PriceResult | undefined;
}

/** The event on one spool line, or why the line holds none: not JSON at all, or not a valid event. */
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
 * Spool instances open in this process. A restarted gateway can get its predecessor's pid back
 * (always so as pid 1 in a container), so a live pid alone does not prove a file's owner lives.
 */
const liveInstances = new Set<string>();

export interface SpoolFile {
  id: string;
  name: string;
  state: "sealed" | "writing" | "replaying";
  owner?: Owner;
  size: number;
  mtimeMs: number;
}

/** A file this process has claimed for replay. */
export interface SpoolClaim {
  id: string;
  path: string;
}

export interface SpoolContents {
  events: Decoded[];
  /** Lines that are not JSON: a torn last line from a crash mid-append, or corruption. */
  unreadable: number;
  /** Lines that are JSON but not a valid event; kept aside rather than dropped. */
  invalid: string[];
}

export interface SpoolTuning {
  /** How long an append waits for company before its group is written and fsync'd. */
  groupWindowMs: number;
  /** A group this large is written at once. */
  groupMaxEvents: number;
  /** A file this large is sealed and the next append starts a new one. */
  maxFileBytes: number;
  /** A file not appended to for this long is sealed, so it can be replayed. */
  idleSealMs: number;
  /** A file untouched this long is taken over whoever owns it; must exceed the time one file takes to replay. */
  staleAfterMs: number;
}

export interface SpoolOptions extends SpoolTuning {
  dir: string;
  /** Where lines that can never be recorded are kept for an operator to look at. */
  rejectedFile: string;
  logger: Logger;
}

interface OpenFile {
  id: string;
  path: string;
  handle: FileHandle;
  bytes: number;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class Spool {
  private readonly me: Owner = { pid: process.pid, instance: randomBytes(4).toString("hex"), host: HOST };
  /** Events and bytes per file id, for status without reading the folder on every call. */
  private readonly inventory = new Map<string, { events: number; bytes: number }>();
  private current: OpenFile | undefined;
  private group: string[] = [];
  private groupWaiters: Waiter[] = [];
  private groupTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Every file operation of this instance, one after another. */
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(private readonly opts: SpoolOptions) {
    liveInstances.add(this.me.instance);
  }

  /** Opens the folder and takes stock of it, so stats() is right before the first replay. */
  static async open(opts: SpoolOptions): Promise<Spool> {
    await mkdir(opts.dir, { recursive: true });
    const spool = new Spool(opts);
    await spool.refreshInventory(await spool.list());
    return spool;
  }

  /** Resolves once the events are on disk: appends within one window share one write and one fsync. */
  append(events: readonly LedgerEvent[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error("spool is closed"));
    return new Promise((resolve, reject) => {
      this.group.push(...events.map(encodeEvent));
      this.groupWaiters.push({ resolve, reject });
      if (this.group.length >= this.opts.groupMaxEvents) this.writeGroup();
      else this.groupTimer ??= setTimeout(() => this.writeGroup(), this.opts.groupWindowMs);
    });
  }

  /** Makes everything appended so far replayable; the next append starts a new file. */
  seal(): Promise<void> {
    return this.serially(() => this.sealCurrent());
  }

  /** Events in the spool folder as last seen, and when the oldest file was started. */
  stats(): { events: number; oldest?: Date } {
    let events = 0;
    let oldest: string | undefined;
    for (const [id, entry] of this.inventory) {
      events += entry.events;
      if (entry.events > 0 && (oldest === undefined || id < oldest)) oldest = id;
    }
    return oldest === undefined ? { events } : { events, oldest: new Date(Number(oldest.slice(0, 15))) };
  }

  /**
   * Files to replay, oldest first: sealed ones and claims whose owner is gone. Files a gone writer
   * left open are sealed on the way. Refreshes the inventory behind stats().
   */
  async replayable(): Promise<SpoolFile[]> {
    const files = await this.list();
    await this.refreshInventory(files);
    const ready: SpoolFile[] = [];
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
  async claim(file: SpoolFile): Promise<SpoolClaim | undefined> {
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

  async read(claim: SpoolClaim): Promise<SpoolContents> {
    const lines = (await readFile(claim.path, "utf8")).split("\n");
    const contents: SpoolContents = { events: [], unreadable: 0, invalid: [] };
    lines.forEach((line, i) => {
      if (line === "") return;
      const decoded = decodeEvent(line);
      if (typeof decoded !== "string") contents.events.push(decoded);
      else if (decoded === "invalid") {
        contents.invalid.push(line);
        this.opts.logger.warn({ file: claim.id, line: i + 1 }, "spooled line is not a valid usage event; kept aside");
      } else {
        contents.unreadable++;
        // Every complete append ends in a newline, so only a crash mid-append leaves a last line without one.
        const torn = i === lines.length - 1;
        this.opts.logger.warn({ file: claim.id, line: i + 1, torn }, torn ? "skipping a torn last spool line" : "skipping an unreadable spool line");
      }
    });
    return contents;
  }

  /** Every event of the claimed file is committed: it can go. */
  async complete(claim: SpoolClaim): Promise<void> {
    await unlink(claim.path);
    this.inventory.delete(claim.id);
  }

  /** Hands a claimed file back, whole, for a later replay. */
  async release(claim: SpoolClaim): Promise<void> {
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

  /** Writes and fsyncs what is pending and seals the open file, so any process can replay it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.groupWaiters.length > 0) this.writeGroup();
    await this.seal();
    liveInstances.delete(this.me.instance);
  }

  private serially(work: () => Promise<void>): Promise<void> {
    const run = this.chain.then(work);
    this.chain = run.catch(() => {});
    return run;
  }

  private writeGroup(): void {
    clearTimeout(this.groupTimer);
    this.groupTimer = undefined;
    const lines = this.group.splice(0);
    const waiters = this.groupWaiters.splice(0);
    this.serially(() => this.writeLines(lines)).then(
      () => waiters.forEach((w) => w.resolve()),
      (err: unknown) => waiters.forEach((w) => w.reject(err)),
    );
  }

  private async writeLines(lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    const file = this.current ?? (await this.startFile());
    const data = Buffer.from(`${lines.join("\n")}\n`);
    try {
      await file.handle.appendFile(data);
      await file.handle.datasync();
    } catch (err) {
      // A failed write may have left part of a line behind; appending after it would fuse two lines.
      await this.sealCurrent().catch(() => {});
      throw err;
    }
    file.bytes += data.length;
    const entry = this.inventory.get(file.id)!;
    entry.events += lines.length;
    entry.bytes = file.bytes;
    if (file.bytes >= this.opts.maxFileBytes) await this.sealCurrent();
    else this.armIdleSeal();
  }

  private async startFile(): Promise<OpenFile> {
    const id = `${String(Date.now()).padStart(15, "0")}-${randomBytes(4).toString("hex")}`;
    const path = join(this.opts.dir, `${id}.writing-${ownerTag(this.me)}`);
    const handle = await open(path, "wx");
    try {
      // The new name must survive a crash, not only the bytes later written under it.
      await syncDir(this.opts.dir);
    } catch (err) {
      await handle.close();
      throw err;
    }
    this.current = { id, path, handle, bytes: 0 };
    this.inventory.set(id, { events: 0, bytes: 0 });
    return this.current;
  }

  private armIdleSeal(): void {
    clearTimeout(this.idleTimer);
    // An open file is only safe from takeover while it is being written; an idle one is sealed.
    this.idleTimer = setTimeout(() => {
      this.seal().catch((err: unknown) => this.opts.logger.warn({ error: errorText(err) }, "could not seal a spool file"));
    }, this.opts.idleSealMs);
    this.idleTimer.unref();
  }

  private async sealCurrent(): Promise<void> {
    clearTimeout(this.idleTimer);
    const file = this.current;
    if (!file) return;
    this.current = undefined;
    // Every write was already fsync'd (or reported as failed), so a failing close loses nothing.
    await file.handle.close().catch(() => {});
    try {
      await rename(file.path, join(this.opts.dir, `${file.id}.ndjson`));
    } catch (err) {
      // Taken over by a process that thought this one gone: the file is in its hands now.
      if (!isMissing(err)) throw err;
    }
  }

  private async sealAbandoned(file: SpoolFile): Promise<SpoolFile | undefined> {
    const name = `${file.id}.ndjson`;
    try {
      await rename(join(this.opts.dir, file.name), join(this.opts.dir, name));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    this.opts.logger.info({ file: file.id, owner: ownerTag(file.owner!) }, "sealed a spool file left open by a process that is gone");
    return { ...file, name, state: "sealed", owner: undefined };
  }

  /** Gone for sure (same host: dead pid, or this pid without that instance), or silent for too long. */
  private isStale(file: SpoolFile): boolean {
    if (Date.now() - file.mtimeMs > this.opts.staleAfterMs) return true;
    const owner = file.owner!;
    if (owner.host !== HOST) return false;
    if (owner.pid === process.pid) return !liveInstances.has(owner.instance);
    return !processAlive(owner.pid);
  }

  private async list(): Promise<SpoolFile[]> {
    const files: SpoolFile[] = [];
    for (const name of await readdir(this.opts.dir)) {
      const match = FILE_NAME.exec(name)?.groups;
      if (!match) continue;
      const info = await stat(join(this.opts.dir, name)).catch((err: unknown) => {
        if (isMissing(err)) return undefined; // renamed or deleted by another process meanwhile
        throw err;
      });
      if (!info) continue;
      const owner = match.state ? { pid: Number(match.pid), instance: match.instance!, host: match.host! } : undefined;
      const state = (match.state ?? "sealed") as SpoolFile["state"];
      files.push({ id: match.id!, name, state, owner, size: info.size, mtimeMs: info.mtimeMs });
    }
    return files;
  }

  private async refreshInventory(files: SpoolFile[]): Promise<void> {
    const present = new Set(files.map((f) => f.id));
    for (const id of this.inventory.keys()) if (!present.has(id)) this.inventory.delete(id);
    for (const file of files) {
      if (this.inventory.get(file.id)?.bytes === file.size) continue;
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
