import cluster, { type Worker } from "node:cluster";
import { once } from "node:events";
import { within } from "../deadline.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../logger.ts";
import { CliError } from "../cli/admin-client.ts";
import { mallocEnvironment } from "./malloc.ts";
import { type PrimaryMessage, SLOT_VARIABLE, type SharedStore, WorkerMessage } from "./messages.ts";

/*
 * `tollgate serve` with TOLLGATE_WORKERS above 1: this process opens no database and serves no
 * request. It forks the workers (node:cluster; each a whole gateway sharing the port), replaces one
 * that dies, relays changes to cached stores between them, and on SIGTERM/SIGINT stops them all.
 *
 * Slot 1 runs what must run in one process only (scheduled jobs, outbox delivery, Telegram's long
 * polling: TOLLGATE_JOBS as configured); the other slots run with TOLLGATE_JOBS=off. A replacement
 * takes its predecessor's slot, so the jobs come back with it. Everything else is per process and
 * safe side by side: each worker is its own hard-budget holder and writes its own journal segments;
 * the segments of a worker that died are replayed by the first worker that looks (its replacement,
 * as it starts), claimed by an atomic rename, so once.
 */

/** A worker dying this soon after it listened (or before) counts as failing to start: its replacement waits. */
const STEADY_MS = 30_000;
/** The longest wait before replacing a worker that keeps failing (the wait doubles up to it). */
const MAX_RESTART_DELAY_MS = 30_000;
/** Beyond each worker's own shutdown deadline, for it to exit and the primary to hear it. */
const STOP_MARGIN_MS = 2_000;

interface Slot {
  worker: Worker;
  /** When it listened; undefined while it starts. */
  listeningAt?: number;
  /** Deaths in a row within STEADY_MS of starting. */
  failures: number;
  restart?: NodeJS.Timeout;
}

export interface PrimaryHooks {
  /** All workers listen on `port`: the server file and the start line. */
  announce(port: number, details: Record<string, unknown>): void;
  /** Stopping: the server file goes. */
  leave(): void;
}

class WorkerPool {
  private readonly slots = new Map<number, Slot>();
  private started = false;
  private stopping = false;
  /** Rejected by the first worker that exits before the whole pool listens. */
  private readonly startFailed: Promise<never>;
  private failStart: (err: Error) => void = () => {};

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
  ) {
    this.startFailed = new Promise<never>((_, reject) => (this.failStart = reject));
    this.startFailed.catch(() => {});
  }

  /** Slot 1 first, alone: it applies migrations, which the others then find done. Then the rest together. */
  async start(): Promise<number> {
    const port = await Promise.race([this.fork(1, 0), this.startFailed]);
    const rest = Array.from({ length: this.config.TOLLGATE_WORKERS - 1 }, (_, i) => this.fork(i + 2, 0));
    await Promise.race([Promise.all(rest), this.startFailed]);
    this.started = true;
    return port;
  }

  /** SIGTERM to every worker, each then stopping as a single gateway does; false when one did not stop cleanly. */
  async stop(): Promise<boolean> {
    this.stopping = true;
    const slots = [...this.slots.values()];
    const exits = slots.map(({ worker, restart }) => {
      clearTimeout(restart);
      if (worker.isDead()) return Promise.resolve();
      const exited = once(worker, "exit");
      worker.process.kill("SIGTERM");
      return exited;
    });
    const done = await within(Promise.all(exits), this.config.TOLLGATE_SHUTDOWN_TIMEOUT_MS + STOP_MARGIN_MS);
    for (const { worker } of slots) if (!worker.isDead()) worker.process.kill("SIGKILL");
    return done !== undefined && slots.every(({ worker }) => worker.process.exitCode === 0);
  }

  /** Forks the worker of `slot` after `delayMs`; resolves with the port once it listens. */
  private fork(slot: number, delayMs: number): Promise<number> {
    return new Promise((resolve) => {
      const begin = () => {
        if (this.stopping) return;
        const jobs = slot === 1 ? this.config.TOLLGATE_JOBS : "off";
        const worker = cluster.fork({ ...mallocEnvironment(process.env), [SLOT_VARIABLE]: String(slot), TOLLGATE_JOBS: jobs });
        const state: Slot = { worker, failures: this.slots.get(slot)?.failures ?? 0 };
        this.slots.set(slot, state);
        worker.on("message", (raw: unknown) => {
          const message = WorkerMessage.safeParse(raw);
          if (!message.success) return this.logger.warn({ worker: slot }, "a message from a worker the primary does not know; ignored");
          if (message.data.type === "changed") return this.relay(worker, message.data.store);
          state.listeningAt = Date.now();
          this.logger.info({ worker: slot, workerPid: worker.process.pid, jobs }, "worker listening");
          resolve(message.data.port);
        });
        worker.on("exit", (code, signal) => this.exited(slot, state, code, signal));
      };
      if (delayMs === 0) begin();
      else this.slots.get(slot)!.restart = setTimeout(begin, delayMs);
    });
  }

  private exited(slot: number, state: Slot, code: number | null, signal: string | null): void {
    const pid = state.worker.process.pid;
    const how = signal ?? `exit code ${code}`;
    if (this.stopping) return this.logger.info({ worker: slot, workerPid: pid, code, signal }, "worker stopped");
    if (!this.started) return this.failStart(new CliError(`worker ${slot} stopped while the workers started (${how}); the reason is above`, 1));
    const steady = state.listeningAt !== undefined && Date.now() - state.listeningAt >= STEADY_MS;
    state.failures = steady ? 0 : state.failures + 1;
    const delayMs = state.failures === 0 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 1000 * 2 ** (state.failures - 1));
    this.logger.error({ worker: slot, workerPid: pid, code, signal, restartInMs: delayMs }, "worker died; starting a replacement, which replays what its journal holds unrecorded");
    void this.fork(slot, delayMs);
  }

  /** A worker changed a cached store: every other live worker drops what it holds of it. */
  private relay(from: Worker, store: SharedStore): void {
    for (const { worker } of this.slots.values()) if (worker !== from && worker.isConnected()) worker.send({ type: "forget", store } satisfies PrimaryMessage);
  }
}

/** Runs the primary until SIGINT/SIGTERM; a worker that cannot start (port in use, database away) fails the start with its reason. */
export async function runPrimary(config: Config, logger: Logger, hooks: PrimaryHooks): Promise<number> {
  const stopRequested = Promise.race((["SIGINT", "SIGTERM"] as const).map((s) => once(process, s).then(() => s)));
  const pool = new WorkerPool(config, logger);
  let port: number | undefined;
  try {
    port = await Promise.race([pool.start(), stopRequested.then(() => undefined)]);
  } catch (err) {
    await pool.stop();
    throw err;
  }
  if (port !== undefined) hooks.announce(port, { port, workers: config.TOLLGATE_WORKERS, database: "postgres" });
  const signal = await stopRequested;
  logger.info({ signal, workers: config.TOLLGATE_WORKERS }, "shutting down the workers");
  hooks.leave();
  const clean = await pool.stop();
  if (!clean) logger.error("a worker did not stop cleanly; the journal keeps what it did not write, replayed at the next start");
  logger.info("stopped");
  return clean ? 0 : 1;
}
