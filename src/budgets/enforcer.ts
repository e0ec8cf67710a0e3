import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Config } from "../config.ts";
import type { Database } from "../db/connection.ts";
import { budgets } from "../db/schema.ts";
import type { LedgerEvent } from "../ledger/build-event.ts";
import type { Attribution } from "../ledger/event.ts";
import type { Logger } from "../logger.ts";
import type { PriceCatalog } from "../pricing/index.ts";
import { ADMITTED, type BudgetGate, type GateCall, type GateVerdict, type Hold } from "../proxy/budget-gate.ts";
import { type Attributes, type Budget, scopeMatches } from "./budget.ts";
import { type Fit, HardBudget } from "./hard-budget.ts";
import { dropLeases, leaseKey, leaseTarget, renewLeases, syncLease } from "./leases.ts";
import { type ReservationPolicy, reservationFor } from "./reservation.ts";
import { type ScopeGroup, groupByScope, matching } from "./spend-batch.ts";
import { type BudgetStore, budgetOf } from "./store.ts";

export interface EnforcerOptions {
  /** How often budgets are re-read, leases renewed and refused budgets looked at again. */
  refreshMs: number;
  /** How long a lease outlives its holder's last renewal. */
  leaseTtlMs: number;
  /** pico-USD: the most a process takes ahead of need for one budget. */
  leaseCap: bigint;
  reservation: ReservationPolicy;
}

export function enforcerOptions(config: Config): EnforcerOptions {
  return {
    refreshMs: config.TOLLGATE_BUDGET_REFRESH_MS,
    leaseTtlMs: config.TOLLGATE_BUDGET_LEASE_TTL_MS,
    leaseCap: config.TOLLGATE_BUDGET_LEASE_CAP_USD,
    reservation: { unknownModel: config.TOLLGATE_BUDGET_UNKNOWN_MODEL_USD, defaultOutputTokens: config.TOLLGATE_BUDGET_DEFAULT_OUTPUT_TOKENS },
  };
}

export interface EnforcerDeps {
  database: Database;
  catalog: PriceCatalog;
  budgets: BudgetStore;
  logger: Logger;
  options: EnforcerOptions;
}

/** Rounds of lease syncs one call may wait for before it is refused. */
const MAX_SYNC_ROUNDS = 3;
/** How often a budget's lease is synced while calls wait for the ledger or other processes share it. */
const REBALANCE_REFRESHES = 5;

/** What a budget's scope is matched against, for a call before it is forwarded and for its event after. */
const attributesOf = (call: Attribution & { model: string | undefined; provider: string }): Attributes => ({
  team: call.team,
  project: call.project,
  feature: call.feature,
  user: call.user,
  model: call.model ?? null,
  provider: call.provider,
  key: call.api_key_id,
});

const isEnforced = (b: Budget) => b.mode === "hard" && !b.paused;

/**
 * Hard budgets in the proxy: the BudgetGate. Each call's worst-case cost is held against every
 * active hard budget its attribution falls in, from a lease of the budget this process took from
 * Postgres, and settled with the call's real cost once it is recorded. The check itself reads
 * memory only; Postgres is asked in the background, or when a lease runs out.
 */
export class Enforcer implements BudgetGate {
  readonly holder = randomUUID();
  private readonly active = new Map<string, HardBudget>();
  private index: ScopeGroup<HardBudget>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly deps: EnforcerDeps) {
    deps.budgets.onChange((change) => {
      if ("deleted" in change) this.forget(change.id);
      else this.learn(change, new Date());
    });
  }

  /** Reads the budgets and starts the background refresh. */
  async start(): Promise<void> {
    await this.reload();
    this.timer = setInterval(() => void this.tick(), this.deps.options.refreshMs);
    this.timer.unref();
  }

  check(call: GateCall): GateVerdict | Promise<GateVerdict> {
    if (this.index.length === 0) return ADMITTED;
    const budgets = matching(this.index, attributesOf(call));
    if (budgets.length === 0) return ADMITTED;
    const now = Date.now();
    const reserve = reservationFor(this.deps.catalog, call, this.deps.options.reservation, new Date(now));
    const first = this.decide(call, budgets, reserve, now, false);
    return Array.isArray(first) ? this.afterSync(call, budgets, reserve, first) : first;
  }

  /** A verdict from memory, or the budgets that must sync before one can be given. */
  private decide(call: GateCall, budgets: HardBudget[], reserve: bigint, now: number, last: boolean): GateVerdict | HardBudget[] {
    const t = performance.now();
    const stale: HardBudget[] = [];
    for (const b of budgets) {
      b.roll(now);
      const fit = b.fit(reserve, t);
      if (fit === "ok") continue;
      if (fit === "sync" && !last) {
        stale.push(b);
        continue;
      }
      b.refused = true;
      return { admitted: false, block: b.block(blockKind(fit, b, t), reserve) };
    }
    if (stale.length > 0) return stale;
    return { admitted: true, hold: this.hold(call, budgets, reserve, now) };
  }

  private async afterSync(call: GateCall, budgets: HardBudget[], reserve: bigint, stale: HardBudget[]): Promise<GateVerdict> {
    for (let round = 1; ; round++) {
      await Promise.all(stale.map((b) => this.sync(b, reserve).catch((err: unknown) => this.syncFailed(b, err))));
      const verdict = this.decide(call, budgets, reserve, Date.now(), round === MAX_SYNC_ROUNDS);
      if (!Array.isArray(verdict)) return verdict;
      stale = verdict;
    }
  }

  private hold(call: GateCall, budgets: HardBudget[], reserve: bigint, now: number): Hold {
    const held = budgets.map((b) => {
      b.inflight += reserve;
      b.lastUsed = now;
      if (b.available() < b.refillBelow && b.ceiling > b.granted) this.sync(b).catch((err: unknown) => this.syncFailed(b, err));
      return { budget: b, generation: b.generation };
    });
    let settled = false;
    return {
      settle: (events) => {
        if (settled) return;
        settled = true;
        this.settle(call.id, held, reserve, events);
      },
    };
  }

  /**
   * The call is over: its worst case leaves each budget once, and each of its events counts its real
   * cost where the ledger will (the answering model decides), all of them at once: a batch's
   * results read back can cost far more than the read held.
   */
  private settle(id: string, held: { budget: HardBudget; generation: number }[], reserve: bigint, events: readonly LedgerEvent[]): void {
    for (const { budget, generation } of held) if (budget.generation === generation) budget.finish(id, reserve, undefined);
    for (const event of events) {
      if (event.cost <= 0n) continue;
      const attributes = attributesOf(event);
      for (const { budget, generation } of held)
        // Under the event's own id, which the lease sync looks for in the ledger: a batch's usage is
        // recorded under the batch's ids, not the id of the poll that found it finished.
        if (budget.generation === generation && scopeMatches(budget.scope, attributes)) budget.finish(event.id, 0n, event.cost);
    }
  }

  /**
   * The recorder committed these events (after the commit, each new one once): a proxied call's
   * budgets drop its entry for a sum, so no per-call state waits for the next sync. An event the
   * recorder does not report (a write that timed out, then replayed) is found by the sync, by id.
   */
  recorded(events: readonly LedgerEvent[]): void {
    const holding = [...this.active.values()].filter((b) => b.finished.size > 0);
    if (holding.length === 0) return;
    for (const event of events) if (event.source === "proxy") for (const b of holding) b.committed(event.id);
  }

  /**
   * One lease sync at a time per budget; calls arriving while one runs share the next, which asks
   * for all their worst cases at once. `keep` false hands back all that is unused (a quiet budget).
   */
  private sync(b: HardBudget, want = 0n, keep = true): Promise<void> {
    b.wanted += want;
    if (b.queued) return b.queued;
    const previous = b.running ?? Promise.resolve();
    const queued: Promise<void> = previous
      .catch(() => undefined)
      .then(() => {
        b.running = queued;
        b.queued = undefined;
        return this.runSync(b, keep || b.wanted > 0n);
      });
    b.queued = queued;
    queued
      .finally(() => {
        if (b.running === queued) b.running = undefined;
      })
      .catch(() => undefined);
    return queued;
  }

  private async runSync(b: HardBudget, keep: boolean): Promise<void> {
    const want = b.wanted;
    b.wanted = 0n;
    // What this process keeps beyond its share goes back before the transaction, so no call
    // admitted while it runs can be spending it.
    const room = b.ceiling - b.used();
    const unused = b.granted - b.used();
    const keepUnused = keep ? leaseTarget(room, b.holders, this.deps.options.leaseCap, want) : 0n;
    const released = b.synced && (b.holders > 1 || !keep) && unused > keepUnused ? unused - keepUnused : 0n;
    b.granted -= released;
    const sent = { generation: b.generation, at: performance.now() };
    const state = await syncLease(this.deps.database, {
      budget: b.budget,
      period: b.period,
      holder: this.holder,
      measure: () => ({ inflight: b.inflight, finished: b.finished, committed: b.committedCost }),
      released,
      want,
      cap: this.deps.options.leaseCap,
      keep,
      ttlMs: this.deps.options.leaseTtlMs,
    });
    if (!state) return this.forget(b.budget.id);
    b.applySync(state, sent, this.deps.options.leaseTtlMs);
    if (!keep) b.synced = false;
  }

  private syncFailed(b: HardBudget, err: unknown): void {
    this.deps.logger.warn({ budget: b.budget.name, error: (err as Error).name, code: (err as { code?: string }).code }, "hard budget lease sync failed");
  }

  /** A budget as stored now: enforced, changed, or no longer enforced. */
  private learn(budget: Budget, now: Date): void {
    const known = this.active.get(budget.id);
    if (!isEnforced(budget)) return this.forget(budget.id);
    if (!known) {
      this.active.set(budget.id, new HardBudget(budget, now));
      this.reindex();
    } else if (known.budget.updated_at.getTime() !== budget.updated_at.getTime()) {
      known.redefine(budget, now);
      this.reindex();
    }
  }

  private forget(id: string): void {
    const known = this.active.get(id);
    if (!known) return;
    this.active.delete(id);
    this.reindex();
    if (known.synced || known.granted > 0n)
      dropLeases(this.deps.database, this.holder, id).catch((err: unknown) => this.syncFailed(known, err));
  }

  private reindex(): void {
    this.index = groupByScope([...this.active.values()]);
  }

  private async reload(): Promise<void> {
    const now = new Date();
    const stored = (await this.deps.database.db.select().from(budgets).where(eq(budgets.mode, "hard"))).map(budgetOf);
    const ids = new Set(stored.map((b) => b.id));
    for (const id of this.active.keys()) if (!ids.has(id)) this.forget(id);
    for (const budget of stored) this.learn(budget, now);
  }

  private tick(): Promise<void> {
    this.ticking ??= this.refresh()
      .catch((err: unknown) => this.deps.logger.warn({ error: (err as Error).name }, "hard budget refresh failed"))
      .finally(() => {
        this.ticking = undefined;
      });
    return this.ticking;
  }

  /** The background half: budgets re-read, leases renewed, refused and quiet budgets looked at again. */
  private async refresh(): Promise<void> {
    await this.reload();
    await this.renew();
    const now = Date.now();
    const idleMs = Math.max(this.deps.options.leaseTtlMs, 10 * this.deps.options.refreshMs);
    for (const b of this.active.values()) {
      if (this.closed) return;
      const recent = now - b.lastUsed < idleMs;
      if (recent && b.roll(now)) await this.sync(b).catch((err: unknown) => this.syncFailed(b, err));
      else if (!b.synced) continue;
      else if (b.refused || (recent && b.available() < b.refillBelow) || (now - b.lastSync >= REBALANCE_REFRESHES * this.deps.options.refreshMs && (b.awaitsLedger() || b.holders > 1)))
        await this.sync(b).catch((err: unknown) => this.syncFailed(b, err));
      else if (!recent && b.inflight === 0n && !b.awaitsLedger())
        await this.sync(b, 0n, false).catch((err: unknown) => this.syncFailed(b, err));
    }
  }

  /** Extends this process's leases; a lease that lapsed and was taken back must be synced again. */
  private async renew(): Promise<void> {
    const holding = [...this.active.values()].filter((b) => b.synced);
    if (holding.length === 0) return;
    const at = performance.now();
    const held = await renewLeases(this.deps.database, this.holder, this.deps.options.leaseTtlMs);
    for (const b of holding) {
      if (held.has(leaseKey(b.budget.id, b.period.start.getTime()))) b.liveUntil = at + this.deps.options.leaseTtlMs / 2;
      else b.synced = false;
    }
  }

  /** Stops the refresh and hands every lease back; call after the recorder has written its last calls. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.ticking;
    await dropLeases(this.deps.database, this.holder).catch((err: unknown) =>
      this.deps.logger.warn({ error: (err as Error).name }, "hard budget leases were not handed back; they lapse on their own"),
    );
  }
}

function blockKind(fit: Fit, b: HardBudget, t: number): "exhausted" | "insufficient" | "unchecked" {
  if (fit === "exhausted" || fit === "insufficient") return fit;
  // Still "sync" after the last round: either Postgres did not answer, or others took the room.
  return !b.synced || t >= b.liveUntil ? "unchecked" : "insufficient";
}
