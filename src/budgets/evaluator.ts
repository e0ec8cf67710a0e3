/**
 * Budget evaluation against the database: all budgets on a schedule, and, after each recorder
 * flush, the budgets the flushed events count against. Every alert is at most once because its
 * firing row is: rows are inserted with ON CONFLICT DO NOTHING and only the rows this process
 * actually inserted are handed to the notifier, in the same transaction, so two processes
 * evaluating at once send each alert once between them.
 *
 * After a flush, a budget is read again only when it may have something to say: each exact read
 * leaves an estimate (the spend read plus what this process has written against the budget since
 * the read began), and a budget is evaluated when that estimate reaches its next line, or when it
 * has no estimate, changed, or entered a new period. An estimate may count an event twice (an
 * extra read, never a false alert, as alerts come from exact reads only) or miss another process's
 * events (caught by that process's own flushes, or by the scheduled run of all budgets). Under a
 * steady flood of writes, evaluation then costs memory lookups, not queries. Forecasts and
 * anomalies come from the scheduled run and from budgets read for another reason.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { type SQL, eq, sql } from "drizzle-orm";
import type { Alert } from "../alerts/alert.ts";
import { budgetAlert, chartShown } from "../alerts/budget-alerts.ts";
import type { Notifier } from "../alerts/notifier.ts";
import { budgetPeriodChart } from "../alerts/trends.ts";
import type { Database } from "../db/connection.ts";
import { alertFirings, budgets } from "../db/schema.ts";
import type { PricedEvent } from "../ledger/event.ts";
import { type Period, previousPeriod } from "../ledger/period.ts";
import type { Logger } from "../logger.ts";
import { ANOMALY_QUIET_HOURS, HourlyFactsReader, detectAnomaly, hourOf } from "./anomaly.ts";
import type { Budget } from "./budget.ts";
import { topContributors } from "./contributors.ts";
import { type BudgetFacts, type Decision, type Firing, evaluateBudget, nextLine } from "./evaluate.ts";
import { forecastSpend, runOutAt } from "./forecast.ts";
import { type ScopeGroup, type Window, budgetWindows, groupByScope, matchingKeys, scopeKey, spendInWindows } from "./spend-batch.ts";
import { budgetOf } from "./store.ts";
import { CostsByAttribution } from "./costs-by-attribution.ts";

export interface EvaluatorOptions {
  /** pico-USD: an hour below this is never an anomaly. */
  anomalyMinSpend: bigint;
  logger: Logger;
  /** How long a flush waits for later ones to share its evaluation. */
  coalesceMs?: number;
}

export interface EvaluationResult {
  budgets: number;
  /** Firings this run recorded; another process may have recorded the others first. */
  recorded: number;
  /** Alerts this run handed to the notifier. */
  alerts: Alert[];
}

const HOUR_MS = 3_600_000;
/** How long runs after writes may use the list of budgets: changes made in this process drop it at once. */
const BUDGETS_MAX_AGE_MS = 5000;
/** Rows per insert statement, well under the 65,535 parameters a statement may have. */
const INSERT_CHUNK = 1000;

/**
 * What the latest exact read said of a budget. The estimate is `read` plus what this process has
 * written against the budget since that read began: its running total of writes less `written`.
 */
interface Estimate {
  /** Which evaluation read it: a slower, older read never replaces a newer one. */
  run: number;
  updatedAt: number;
  periodEnd: number;
  /** pico-USD read from the rollups. */
  read: bigint;
  /** The process's running total of writes against the budget when the read began. */
  written: bigint;
  /** nextLine(budget, read). */
  next: bigint | null;
}

interface Planned {
  facts: BudgetFacts;
  runOut: Date | null;
  decision: Decision;
  id: string;
}

export class BudgetEvaluator {
  /** Attribution of flushed events and their cost (evaluateMatching). */
  private readonly pending = new CostsByAttribution();
  private readonly estimates = new Map<string, Estimate>();
  /** pico-USD this process has written against each budget, ever: only grows. */
  private readonly written = new Map<string, bigint>();
  private runs = 0;
  private listed: { at: number; budgets: Budget[]; groups: ScopeGroup<Budget>[] } | undefined;
  private readonly changed = new Set<string>();
  private readonly hourly = new HourlyFactsReader();
  private running: Promise<void> | undefined;

  constructor(
    private readonly database: Database,
    private readonly notifier: Notifier,
    private readonly opts: EvaluatorOptions,
  ) {}

  /** Every budget that is not paused, from the rollups. */
  async evaluateAll(now = new Date()): Promise<EvaluationResult> {
    return this.evaluate((await this.activeBudgets(0)).budgets, now);
  }

  /**
   * The recorder's flush hook: notes what the events were attributed to and cost, and returns at
   * once. One run after writes goes at a time; flushes (and budget changes) arriving meanwhile are
   * coalesced into the next, so a flood of flushes costs one run per run's length, not one per flush.
   */
  evaluateMatching(events: readonly PricedEvent[]): void {
    // No budget to count them against: the list read less than BUDGETS_MAX_AGE_MS ago is empty and
    // none changed here since, so a run now would read that same list and find nothing to do. A
    // budget made by another gateway is seen once the list is older, as before: a flush then notes
    // its events and the run reads the list again. (A gateway that only ingests noted every event.)
    if (this.changed.size === 0 && this.listed?.budgets.length === 0 && Date.now() - this.listed.at < BUDGETS_MAX_AGE_MS) return;
    this.pending.add(events);
    this.schedule();
  }

  /** A budget was created or changed (a raise lifts it back under at once): evaluated with the next run. */
  budgetChanged(id: string): void {
    this.listed = undefined;
    this.changed.add(id);
    this.schedule();
  }

  /** Resolves once the evaluations asked for so far have run. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private schedule(): void {
    if (this.running || (this.pending.size === 0 && this.changed.size === 0)) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      this.schedule();
    });
  }

  private async drain(): Promise<void> {
    await sleep(this.opts.coalesceMs ?? 50);
    const seen = this.pending.take();
    const changed = new Set(this.changed);
    this.changed.clear();
    try {
      const { budgets: active, groups } = await this.activeBudgets(BUDGETS_MAX_AGE_MS);
      const now = new Date();
      const due = new Set(active.filter((b) => changed.has(b.id)));
      for (const group of groups) {
        // Summed per scope first: a budget on everything is touched once per run, not once per event.
        const costs = new Map<string, bigint>();
        for (const { attributes, cost } of seen)
          for (const key of matchingKeys(group.dims, attributes))
            if (group.byValues.has(key)) costs.set(key, (costs.get(key) ?? 0n) + cost);
        for (const [key, cost] of costs)
          for (const budget of group.byValues.get(key) ?? []) {
            const written = (this.written.get(budget.id) ?? 0n) + cost;
            this.written.set(budget.id, written);
            const estimate = this.estimates.get(budget.id);
            if (!estimate || estimate.updatedAt !== budget.updated_at.getTime() || now.getTime() >= estimate.periodEnd) due.add(budget);
            else if (estimate.next !== null && estimate.read + written - estimate.written >= estimate.next) due.add(budget);
          }
      }
      if (due.size === 0) return;
      const started = performance.now();
      const result = await this.evaluate([...due], now);
      this.opts.logger.debug({ budgets: result.budgets, alerts: result.alerts.length, ms: Math.round(performance.now() - started) }, "budgets evaluated after writes");
    } catch (err) {
      // The scheduled evaluation catches up; the flush that asked has long been answered.
      this.opts.logger.error({ error: (err as Error).name, code: (err as { code?: string }).code }, "budget evaluation after a write failed");
    }
  }

  /** Budgets that are not paused, read again when the list is older than `maxAgeMs`. */
  private async activeBudgets(maxAgeMs: number): Promise<{ budgets: Budget[]; groups: ScopeGroup<Budget>[] }> {
    if (this.listed && Date.now() - this.listed.at < maxAgeMs) return this.listed;
    const at = Date.now();
    const list = (await this.database.db.select().from(budgets).where(eq(budgets.paused, false))).map(budgetOf);
    const listed = { at, budgets: list, groups: groupByScope(list) };
    this.listed = listed;
    const ids = new Set(list.map((b) => b.id));
    for (const id of this.estimates.keys()) if (!ids.has(id)) this.estimates.delete(id);
    for (const id of this.written.keys()) if (!ids.has(id)) this.written.delete(id);
    return listed;
  }

  /**
   * Evaluates these budgets at `now`: records what is true, sends what is news. Runs may overlap
   * (a run after writes does not wait for the minute's run of all budgets); the firings' unique key
   * keeps each alert single, in this process as between processes.
   */
  async evaluate(candidates: readonly Budget[], now: Date): Promise<EvaluationResult> {
    const active = candidates.filter((b) => !b.paused);
    if (active.length === 0) return { budgets: 0, recorded: 0, alerts: [] };
    const run = ++this.runs;
    // Writes heard from here on may or may not be in what is read: counted on top, at worst twice (an extra read).
    const writtenBefore = new Map(active.map((b) => [b.id, this.written.get(b.id) ?? 0n]));
    const windows = budgetWindows(active, now);
    // Budgets of one period and zone share their Period: the one before is worked out once for them.
    const previous = new Map<Period, Date>();
    for (const w of windows) if (!previous.has(w.period)) previous.set(w.period, previousPeriod(w.period).start);
    const [spends, hourly, firings] = await Promise.all([
      spendInWindows(this.database, windows),
      this.hourly.read(this.database, groupByScope(active), now),
      this.recordedFirings(windows, previous, now),
    ]);
    for (const s of spends) {
      if ((this.estimates.get(s.budget.id)?.run ?? 0) > run) continue;
      this.estimates.set(s.budget.id, {
        run,
        updatedAt: s.budget.updated_at.getTime(),
        periodEnd: s.period.end.getTime(),
        read: s.spend,
        written: writtenBefore.get(s.budget.id) ?? 0n,
        next: nextLine(s.budget, s.spend),
      });
    }
    const planned = spends.flatMap((s): Planned[] => {
      const hours = hourly.get(scopeKey(s.budget.scope));
      const facts: BudgetFacts = {
        budget: s.budget,
        period: s.period,
        previousStart: previous.get(s.period)!,
        spend: s.spend,
        forecast: forecastSpend({ period: s.period, now, spend: s.spend, recentSpend: s.recentSpend }),
        anomaly: hours ? detectAnomaly(hours, this.opts.anomalyMinSpend) : null,
        firings: firings.get(s.budget.id) ?? [],
      };
      const runOut = runOutAt({ period: s.period, now, spend: s.spend, recentSpend: s.recentSpend, amount: s.budget.amount });
      return evaluateBudget(facts).map((decision) => ({ facts, runOut, decision, id: randomUUID() }));
    });
    if (planned.length === 0) return { budgets: active.length, recorded: 0, alerts: [] };

    // Built before the transaction, which must hold nothing but its own statements (PGlite has one connection).
    const notified = planned.filter((p) => p.decision.notify);
    const [tops, charts] = await Promise.all([
      topContributors(this.database, notified.map((p) => ({ scope: p.facts.budget.scope, period: p.facts.period }))),
      // The chart as it stands now, stored with the alert: a delivery delayed by an outage still shows the moment it fired.
      Promise.all(notified.map((p) => (chartShown(p.decision) ? budgetPeriodChart(this.database, p.facts.budget, p.facts.period, now) : null))),
    ]);
    const alerts = notified.map((p, i) => budgetAlert({ ...p.facts, id: p.id, decision: p.decision, runOut: p.runOut, top: tops[i] ?? [], chart: charts[i] ?? null, now }));

    const sent = await this.database.db.transaction(async (tx) => {
      const rows = planned
        .map((p) => ({
          id: p.id,
          budgetId: p.facts.budget.id,
          periodStart: p.decision.periodStart,
          kind: p.decision.kind,
          threshold: p.decision.threshold,
          spend: p.facts.spend.toString(),
          amount: p.facts.budget.amount.toString(),
        }))
        // One order for every process, so two inserting the same keys wait on each other rather than deadlock.
        .sort((a, b) => cmp(a.budgetId, b.budgetId) || cmp(a.kind, b.kind) || a.threshold - b.threshold || a.periodStart.getTime() - b.periodStart.getTime());
      const inserted = new Set<string>();
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
        const done = await tx.insert(alertFirings).values(rows.slice(i, i + INSERT_CHUNK)).onConflictDoNothing().returning({ id: alertFirings.id });
        for (const r of done) inserted.add(r.id);
      }
      const mine = alerts.filter((a) => inserted.has(a.id));
      await this.notifier.enqueue(tx, mine);
      return { recorded: inserted.size, alerts: mine };
    });
    return { budgets: active.length, ...sent };
  }

  /** Firings of these budgets in their current and previous periods, and their recent anomalies. */
  private async recordedFirings(windows: readonly Window[], previous: ReadonlyMap<Period, Date>, now: Date): Promise<Map<string, Firing[]>> {
    const wanted = windows.map((w) => ({ id: w.budget.id, cur: w.period.start.toISOString(), prev: previous.get(w.period)?.toISOString() }));
    const quietSince = new Date(hourOf(now).getTime() - ANOMALY_QUIET_HOURS * HOUR_MS).toISOString();
    const rows = await this.database.rows<{ budget_id: string; period_ms: string; kind: string; threshold: number; amount: string; fired_ms: string }>(sql`
      select f.budget_id, ${epochMs(sql`f.period_start`)} as period_ms, f.kind, f.threshold, f.amount::text as amount,
        ${epochMs(sql`f.fired_at`)} as fired_ms
      from ${alertFirings} f
      join json_to_recordset(${JSON.stringify(wanted)}::json) as b(id text, cur timestamptz, prev timestamptz) on f.budget_id = b.id
      where f.period_start in (b.cur, b.prev) or (f.kind = 'anomaly' and f.period_start >= ${quietSince}::timestamptz)`);
    const byBudget = new Map<string, Firing[]>();
    for (const r of rows) {
      const firing: Firing = { periodStart: new Date(Number(r.period_ms)), kind: r.kind, threshold: Number(r.threshold), amount: BigInt(r.amount), firedAt: new Date(Number(r.fired_ms)) };
      const list = byBudget.get(r.budget_id);
      if (list) list.push(firing);
      else byBudget.set(r.budget_id, [firing]);
    }
    return byBudget;
  }
}

/** Milliseconds since the epoch as text: the same from either driver, whatever its date parsing. */
const epochMs = (column: SQL) => sql`(extract(epoch from ${column}) * 1000)::bigint::text`;

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
