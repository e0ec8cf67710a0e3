import { sql } from "drizzle-orm";
import cron, { type ScheduledTask } from "node-cron";
import { withAdvisoryLock } from "../db/advisory-lock.ts";
import type { Database } from "../db/connection.ts";
import { jobTicks } from "../db/schema.ts";
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

/**
 * Runs jobs on their schedules, each run under a Postgres advisory lock named after the job, so
 * among all gateway processes one runs at a time; and each tick once: the run records its tick
 * (the time it was scheduled for, the same in every process), so a process whose clock is late
 * finds the tick taken when its timer fires, however late.
 */
export class Scheduler {
  private readonly tasks: ScheduledTask[] = [];
  private readonly running = new Set<Promise<RunResult>>();

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
        if (!(await this.claim(job, tick))) return false;
        const started = Date.now();
        await job.run(tick);
        this.logger.debug({ job: job.name, tick, ms: Date.now() - started }, "job ran");
        return true;
      });
      return locked.ran && locked.value ? "ran" : "busy";
    } catch (err) {
      this.logger.error({ job: job.name, error: (err as Error).name, code: (err as { code?: string }).code }, "job failed");
      return "failed";
    }
  }

  /** Takes the tick for this run; false when it, or a later one, has run already. */
  private async claim(job: Job, tick: Date): Promise<boolean> {
    const claimed = await this.database.db
      .insert(jobTicks)
      .values({ job: job.name, lastTick: tick })
      .onConflictDoUpdate({ target: jobTicks.job, set: { lastTick: tick }, setWhere: sql`${jobTicks.lastTick} < ${tick.toISOString()}::timestamptz` })
      .returning({ job: jobTicks.job });
    return claimed.length > 0;
  }
}
