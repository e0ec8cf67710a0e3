import type { Deliverer, DeliveryOutcome } from "../integration.ts";
import type { Logger } from "../logger.ts";
import type { ChannelStore } from "./channels.ts";
import type { Claimed, OutboxNotifier } from "./outbox.ts";

export interface DeliveryOptions {
  outbox: OutboxNotifier;
  channels: ChannelStore;
  deliverers: ReadonlyMap<string, Deliverer>;
  logger: Logger;
  publicUrl: string | undefined;
  /** Channels delivered to at once. */
  concurrency?: number;
  /** How often the outbox is looked at when nothing wakes the worker. */
  pollMs?: number;
  /** Longest one try may take. */
  timeoutMs?: number;
}

/** After an enqueue the new rows only show once the enqueuing transaction commits: look again this often meanwhile. */
const EAGER_POLL_MS = 10;

/**
 * Takes due outbox rows and hands them to their platform's deliverer, several channels at once,
 * one message at a time per channel. Any number of these may run against one database, in one
 * process or many: rows are claimed, never shared.
 */
export class DeliveryWorker {
  private readonly concurrency: number;
  private readonly pollMs: number;
  private readonly timeoutMs: number;
  /** A claim outlives the longest try, so a row is never in two workers' hands. */
  private readonly leaseMs: number;
  private readonly inFlight = new Set<Promise<void>>();
  private running = false;
  private loop: Promise<void> | undefined;
  /** Set when something happened since the worker last looked at the outbox. */
  private woken = false;
  private wakeUp: (() => void) | undefined;
  private eagerUntil = 0;
  /** Claims failing (the database away): said once when it starts and once when it ends, not every poll. */
  private claimFailing = false;

  constructor(private readonly opts: DeliveryOptions) {
    this.concurrency = opts.concurrency ?? 16;
    this.pollMs = opts.pollMs ?? 250;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.leaseMs = this.timeoutMs * 6;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Something was enqueued here: look at the outbox now rather than at the next poll. */
  wake(): void {
    this.eagerUntil = Date.now() + this.pollMs;
    this.nudge();
  }

  /** Stops taking rows and waits for the tries under way to be settled. */
  async stop(): Promise<void> {
    this.running = false;
    this.nudge();
    await this.loop;
    await Promise.all(this.inFlight);
  }

  private nudge(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.woken = false;
      let claimed = 0;
      try {
        claimed = await this.fill();
        if (this.claimFailing) this.opts.logger.info("outbox claims work again");
        this.claimFailing = false;
      } catch (err) {
        if (!this.claimFailing) this.opts.logger.warn({ error: (err as Error).name, code: (err as { code?: string }).code }, "outbox claim failed; retrying every poll");
        this.claimFailing = true;
      }
      if ((claimed > 0 && this.inFlight.size < this.concurrency) || this.woken) continue;
      await this.sleep(claimed === 0 && Date.now() < this.eagerUntil ? EAGER_POLL_MS : this.pollMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  /** Claims as many rows as there are free slots and starts delivering them; answers how many. */
  private async fill(): Promise<number> {
    const free = this.concurrency - this.inFlight.size;
    if (free <= 0) return 0;
    const rows = await this.opts.outbox.claim([...this.opts.deliverers.keys()], free, this.leaseMs);
    for (const row of rows) {
      const task = this.deliver(row).finally(() => {
        this.inFlight.delete(task);
        // The channel's next message may be waiting behind this one.
        this.nudge();
      });
      this.inFlight.add(task);
    }
    return rows.length;
  }

  private async deliver(row: Claimed): Promise<void> {
    const { logger } = this.opts;
    try {
      const target = await this.opts.channels.target(row.channelId);
      const deliverer = target && this.opts.deliverers.get(target.platform);
      // Removed while claimed: its rows went with it.
      if (!target || !deliverer) return;
      const outcome = await deliverer
        .deliver(target, row, { now: new Date(), signal: AbortSignal.timeout(this.timeoutMs), publicUrl: this.opts.publicUrl, replaces: await this.opts.outbox.replaced(row) })
        .catch((err: unknown): DeliveryOutcome => ({ kind: "retry", message: `${(err as Error).name}: ${(err as Error).message}` }));
      if (outcome.kind === "gone") await this.opts.channels.disable(target.id, outcome.message, "system");
      const status = await this.opts.outbox.settle(row, outcome);
      const log = { notification: row.id, channel: target.id, platform: target.platform, attempt: row.attempt, status };
      if (outcome.kind === "delivered") logger.debug(log, "notification delivered");
      else logger.warn({ ...log, error: outcome.message }, outcome.kind === "gone" ? "channel gone; disabled" : "notification not delivered");
    } catch (err) {
      // Left to its lease: the row is tried again once the lease runs out.
      logger.error({ notification: row.id, error: (err as Error).name, code: (err as { code?: string }).code }, "delivery failed");
    }
  }
}
