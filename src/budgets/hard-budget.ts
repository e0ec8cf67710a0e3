import type { Period } from "../ledger/period.ts";
import { picoToDecimalString } from "../pricing/money.ts";
import type { BudgetBlock } from "../proxy/budget-gate.ts";
import { type Budget, budgetPeriod } from "./budget.ts";
import type { LeaseState } from "./leases.ts";

/** Whether a call's worst case fits now, needs a lease sync first, or cannot fit. */
export type Fit = "ok" | "sync" | "exhausted" | "insufficient";

/** When a sync was sent and for which generation, to read its answer in the same terms. */
export interface SyncSent {
  generation: number;
  /** performance.now() when it was sent. */
  at: number;
}

const max = (a: bigint, b: bigint) => (a > b ? a : b);
const usd = (pico: bigint) => picoToDecimalString(max(0n, pico));

/**
 * What one gateway process knows and holds of one hard budget in its current period, in memory.
 * Amounts are pico-USD. The process's consumption is `inflight` (worst cases of calls under way)
 * plus the real costs of finished calls the last sync did not count as spend: `finished` ones,
 * by id, until the recorder commits them, then `committedCost`, one sum, until the next sync reads
 * the spend that holds them. A call is admitted only if its worst case keeps that within both the
 * lease (`granted`) and the budget's room (`ceiling`) as of the last sync.
 *
 * Why the sum: at 1,000 calls/s an entry per call kept until the next sync (up to 5 s) was the
 * largest share of what each call left in V8's old generation, and so of the full collections
 * that make the proxy's tail; the recorder commits a call within ~20-50 ms.
 */
export class HardBudget {
  period: Period;
  /** Bumped when the period or the scope changes: holds taken before no longer count here. */
  generation = 0;
  granted = 0n;
  ceiling = 0n;
  inflight = 0n;
  /** Finished calls by ledger id, with their real cost, until the recorder commits them or a sync finds them in the ledger. */
  readonly finished = new Map<string, bigint>();
  finishedCost = 0n;
  /** Real costs of finished calls the recorder committed since the spend the last sync read. */
  committedCost = 0n;
  /** Ledger spend at the last sync. */
  spend = 0n;
  holders = 1;
  /** A sync has answered in this generation since the definition last changed. */
  synced = false;
  /** performance.now() until which the lease is surely still ours, if not renewed. */
  liveUntil = 0;
  /** A call was refused since the last sync: the background refresh looks again. */
  refused = false;
  /** When a call last passed (Date.now()), to hand back leases of budgets gone quiet. */
  lastUsed = 0;
  lastSync = 0;
  /** Below this much unused, a sync is started ahead of need. */
  refillBelow = 0n;
  /** Worst cases of calls waiting for the next sync. */
  wanted = 0n;
  running: Promise<void> | undefined;
  queued: Promise<void> | undefined;

  constructor(
    public budget: Budget,
    now: Date,
  ) {
    this.period = budgetPeriod(budget, now);
  }

  get scope() {
    return this.budget.scope;
  }

  used(): bigint {
    return this.inflight + this.finishedCost + this.committedCost;
  }

  /** Finished calls still held against the lease that a sync has yet to count as spend. */
  awaitsLedger(): boolean {
    return this.finished.size > 0 || this.committedCost > 0n;
  }

  /** Unused lease the process may spend from now. */
  available(): bigint {
    return (this.granted < this.ceiling ? this.granted : this.ceiling) - this.used();
  }

  fit(reserve: bigint, t: number): Fit {
    if (!this.synced || t >= this.liveUntil) return "sync";
    const used = this.used();
    const after = used + reserve;
    if (after <= this.granted && after <= this.ceiling && used < this.ceiling) return "ok";
    if (used >= this.ceiling) return "exhausted";
    if (after > this.ceiling) return "insufficient";
    return "sync";
  }

  /** Starts afresh when `now` is past the period's end. */
  roll(now: number): boolean {
    if (now < this.period.end.getTime()) return false;
    this.restart(new Date(now));
    return true;
  }

  private restart(now: Date): void {
    this.period = budgetPeriod(this.budget, now);
    this.generation++;
    this.granted = this.ceiling = this.inflight = this.finishedCost = this.committedCost = this.spend = 0n;
    this.finished.clear();
    this.synced = false;
  }

  /**
   * A new definition: another scope or period starts afresh; any other change (a raise, a cut)
   * takes effect at the next call, which syncs first.
   */
  redefine(next: Budget, now: Date): void {
    const before = this.budget;
    this.budget = next;
    if (JSON.stringify(before.scope) !== JSON.stringify(next.scope) || before.period !== next.period || before.timezone !== next.timezone) this.restart(now);
    else this.synced = false;
  }

  /** A call is over: its worst case leaves, its real cost stays until the ledger has the call. */
  finish(id: string, reserve: bigint, cost: bigint | undefined): void {
    this.inflight -= reserve;
    if (cost === undefined || cost === 0n) return;
    this.finished.set(id, cost);
    this.finishedCost += cost;
  }

  /**
   * The recorder committed the call `id` to the ledger: its cost leaves the per-call map for the
   * committed sum. Nothing is released here: the spend this process knows (`ceiling`) is the last
   * sync's, so the call counts against the lease until a sync reads a spend that holds it.
   */
  committed(id: string): void {
    const cost = this.finished.get(id);
    if (cost === undefined) return;
    this.finished.delete(id);
    this.finishedCost -= cost;
    this.committedCost += cost;
  }

  /** Reads a sync's answer; false when the budget moved on (another period, scope) meanwhile. */
  applySync(state: LeaseState, sent: SyncSent, ttlMs: number): boolean {
    if (sent.generation !== this.generation) return false;
    // The sync took the calls the ledger has off the lease (`recorded`); they leave the local count
    // in step. Of those it found by id, one committed after it measured has moved to the sum since.
    let fromFinished = 0n;
    for (const id of state.inLedger) {
      const cost = this.finished.get(id);
      if (cost === undefined) continue;
      this.finished.delete(id);
      fromFinished += cost;
    }
    this.finishedCost -= fromFinished;
    this.committedCost -= state.recorded - fromFinished;
    this.granted = state.granted;
    this.ceiling = state.ceiling;
    this.spend = state.spend;
    this.holders = state.holders;
    this.synced = true;
    this.refused = false;
    this.lastSync = Date.now();
    this.liveUntil = sent.at + ttlMs / 2;
    this.refillBelow = (state.granted - state.consumed) / 2n;
    return true;
  }

  /**
   * The spend a refusal reports: the ledger's at the last sync and the calls finished here since.
   * A call that reached the ledger while the sync read it is in both until the next sync (counted
   * twice on purpose, never not at all), so beyond the amount only the ledger's own figure is shown.
   */
  private reportedSpend(): bigint {
    const estimate = this.spend + this.finishedCost + this.committedCost;
    const bound = max(this.spend, this.budget.amount);
    return estimate < bound ? estimate : bound;
  }

  /**
   * A refusal, in the budget's own terms: its spend and what is left of its amount, whichever
   * process holds the rest. This process may have used its share (`ceiling`) while others hold
   * leases for calls of their own: the budget is then not exhausted, and a refusal that said so
   * ("$0.995 of $1, remaining 0") would misstate what is unspent.
   */
  block(kind: BudgetBlock["kind"], reserve: bigint): BudgetBlock {
    const spend = this.reportedSpend();
    // Leases (this process's or others') and calls in flight are not spend: what is left is the amount less the spend.
    const remaining = this.budget.amount - spend;
    return {
      kind: kind === "exhausted" && remaining > 0n ? "insufficient" : kind,
      budget: this.budget.name,
      spend_usd: usd(spend),
      amount_usd: usd(this.budget.amount),
      remaining_usd: usd(remaining),
      reserve_usd: usd(reserve),
      resets_at: this.period.end,
    };
  }
}
