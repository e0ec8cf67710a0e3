import { setTimeout as sleep } from "node:timers/promises";
import cron, { type ScheduledTask } from "node-cron";
import { withAdvisoryLock } from "../db/advisory-lock.ts";
import type { Database } from "../db/connection.ts";
import type { Logger } from "../logger.ts";

/** Scheduled work: evaluation, digests, approval expiry, retention... */
export interface Job {
  /** Unique: it names the job's advisory lock, shared by every gateway on the database. */
  name: string;
  /** node-cron expression (five fields, or six with seconds first). */
  cron: string;
  /** IANA zone the expression is read in; the process's own zone otherwise. */
  timezone?: string;
  /** `now` is the time the run was scheduled for. */
  run(now: Date): Promise<void>;
}

export type RunResult = "ran" | "busy" | "failed";

/** Longest a finished run keeps its lock for other processes' timers of the same tick. */
const MAX_HOLD_MS = 5_000;

/**
 * Runs jobs on their schedules, each run under a Postgres advisory lock named after the job, so
 * among all gateway processes one runs a tick and the others skip it. A run keeps the lock until a
 * little after its tick even when it finishes sooner (half the gap to the next tick, at most 5 s),
 * so a process whose timer fires a moment later does not run the same tick again.
 */
export class Scheduler {
  private readonly tasks: ScheduledTask[] = [];
  private readonly running = new Set<Promise<RunResult>>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly database: Database,
    private readonly jobs: readonly Job[],
    private readonly logger: Logger,
  ) {
    const names = new Set<string>();
    for (const job of jobs) {
      if (names.has(job.name)) throw new Error(`two jobs are named ${job.name}`);
      names.add(job.name);
      if (!cron.validate(job.cron)) throw new Error(`job ${job.name}: "${job.cron}" is not a cron expression`);
    }
  }

  /** node-cron's own messages (missed ticks under load), into our log. */
  private readonly cronLogger = {
    info: (message: string) => this.logger.debug({ source: "node-cron" }, message),
    warn: (message: string) => this.logger.warn({ source: "node-cron" }, message),
    error: (message: string | Error) => this.logger.error({ source: "node-cron", error: message instanceof Error ? message.name : message }, "scheduler error"),
    debug: (message: string | Error) => this.logger.debug({ source: "node-cron" }, String(message)),
  };

  start(): void {
    if (this.tasks.length > 0) return;
    for (const job of this.jobs) {
      const task = cron.createTask(job.cron, (ctx) => this.track(this.runJob(job, ctx.date)), {
        name: job.name,
        timezone: job.timezone,
        noOverlap: true,
        logger: this.cronLogger,
      });
      this.tasks.push(task);
      void task.start();
    }
  }

  /** Runs a job now, under its lock: `busy` when another process (or scheduler) is running it. */
  runNow(name: string, now = new Date()): Promise<RunResult> {
    const job = this.jobs.find((j) => j.name === name);
    if (!job) throw new Error(`no job named ${name}`);
    return this.track(this.runJob(job, now));
  }

  /** Stops the schedules and waits for runs under way. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.all(this.tasks.map((t) => t.destroy()));
    this.tasks.length = 0;
    await Promise.all(this.running);
  }

  private track(run: Promise<RunResult>): Promise<RunResult> {
    this.running.add(run);
    return run.finally(() => this.running.delete(run));
  }

  private async runJob(job: Job, tick: Date): Promise<RunResult> {
    try {
      const locked = await withAdvisoryLock(this.database, `tollgate-job:${job.name}`, async () => {
        const started = Date.now();
        await job.run(tick);
        this.logger.debug({ job: job.name, tick, ms: Date.now() - started }, "job ran");
        const rest = tick.getTime() + this.holdMs(job, tick) - Date.now();
        if (rest > 0) await sleep(rest, undefined, { signal: this.stopping.signal }).catch(() => {});
      });
      return locked.ran ? "ran" : "busy";
    } catch (err) {
      this.logger.error({ job: job.name, error: (err as Error).name, code: (err as { code?: string }).code }, "job failed");
      return "failed";
    }
  }

  private holdMs(job: Job, tick: Date): number {
    const task = this.tasks.find((t) => t.name === job.name);
    const next = task?.getNextRun();
    return next ? Math.min(MAX_HOLD_MS, (next.getTime() - tick.getTime()) / 2) : 0;
  }
}
