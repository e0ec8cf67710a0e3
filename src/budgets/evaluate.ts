/**
 * What one evaluation of one budget records and sends. Pure: the spend, the forecast, the hourly
 * verdict and the firings already recorded are all arguments.
 *
 * Firings are keyed by (budget, period start, kind, threshold, amount). With the amount in the
 * key, a raise from $500 to $800 makes 80 % of $800 a new line to cross, while 80 % of $500 never
 * fires twice. Everything that is true is recorded; one alert per budget is sent, the most telling
 * one: back under budget, else blocked, else the highest threshold crossed, else the forecast. The
 * others are recorded unsent, as the alert sent already says where the budget stands (it carries
 * spend, percent and forecast). Anomalies are about the last hour rather than the period, are
 * keyed by that hour, and are sent on their own.
 */
import type { Period } from "../ledger/period.ts";
import { ANOMALY_QUIET_HOURS, type AnomalyVerdict } from "./anomaly.ts";
import type { Budget } from "./budget.ts";

export type FiringKind = "threshold" | "forecast" | "anomaly" | "blocked" | "recovered";

/** A row of alert_firings. Amounts are pico-USD. */
export interface Firing {
  periodStart: Date;
  kind: string;
  threshold: number;
  amount: bigint;
  firedAt: Date;
}

export interface BudgetFacts {
  budget: Budget;
  period: Period;
  /** Start of the period before, whose last firings say whether the budget ended it over. */
  previousStart: Date;
  spend: bigint;
  forecast: bigint | null;
  anomaly: AnomalyVerdict | null;
  /** This budget's firings in its current and previous periods, and its recent anomalies. */
  firings: readonly Firing[];
}

export interface Decision {
  kind: FiringKind;
  /** The percent crossed; 0 for other kinds. */
  threshold: number;
  /** The budget's period start, or the anomalous hour. */
  periodStart: Date;
  /** Whether this is the alert sent for the budget; the rest are only recorded. */
  notify: boolean;
  /** Why a budget is back under: its amount changed, or a new period began. */
  reason?: "raise" | "new_period";
}

const HOUR_MS = 3_600_000;

/** Firings that say whether a budget was over when they fired. */
const overMark = (f: Firing) => f.kind === "blocked" || (f.kind === "threshold" && f.threshold >= 100);
const isMark = (f: Firing) => overMark(f) || f.kind === "recovered";

function latestMark(firings: readonly Firing[], periodStart: Date): Firing | undefined {
  let latest: Firing | undefined;
  for (const f of firings)
    if (f.periodStart.getTime() === periodStart.getTime() && isMark(f) && (!latest || f.firedAt >= latest.firedAt)) latest = f;
  return latest;
}

/** Whether `spend` has reached `percent` % of `amount`, exactly. */
export const reached = (spend: bigint, amount: bigint, percent: number) => spend * 100n >= BigInt(percent) * amount;

/**
 * The spend at which a budget next has a line to cross: its lowest threshold not yet reached, or
 * for a hard budget its amount. Null when every line is behind it. Between full evaluations, spend
 * short of this needs no reading of the rollups.
 */
export function nextLine(budget: Pick<Budget, "amount" | "thresholds" | "mode">, spend: bigint): bigint | null {
  const percents = budget.mode === "hard" ? [...budget.thresholds, 100] : budget.thresholds;
  let next: bigint | null = null;
  for (const t of percents) {
    // reached ⇔ spend × 100 ≥ t × amount ⇔ spend ≥ ⌈t × amount / 100⌉
    const at = (BigInt(t) * budget.amount + 99n) / 100n;
    if (at > spend && (next === null || at < next)) next = at;
  }
  return next;
}

/** Whole percent of the amount spent, floored. */
export const percentOf = (spend: bigint, amount: bigint): number => Number((spend * 100n) / amount);

export function evaluateBudget(facts: BudgetFacts): Decision[] {
  const { budget, period, previousStart, spend, forecast, anomaly, firings } = facts;
  if (budget.paused) return [];
  const start = period.start;
  const recorded = (kind: FiringKind, threshold = 0) =>
    firings.some((f) => f.periodStart.getTime() === start.getTime() && f.kind === kind && f.threshold === threshold && f.amount === budget.amount);
  const over = spend >= budget.amount;

  const candidates: Omit<Decision, "notify">[] = [];
  if (!over) {
    const reason = recoveryReason(firings, period.start, previousStart);
    if (reason && !recorded("recovered")) candidates.push({ kind: "recovered", threshold: 0, periodStart: start, reason });
  }
  if (over && budget.mode === "hard" && !recorded("blocked")) candidates.push({ kind: "blocked", threshold: 0, periodStart: start });
  const crossed = budget.thresholds.filter((t) => reached(spend, budget.amount, t) && !recorded("threshold", t)).sort((a, b) => b - a);
  for (const t of crossed) candidates.push({ kind: "threshold", threshold: t, periodStart: start });
  if (!over && forecast !== null && forecast > budget.amount && !recorded("forecast"))
    candidates.push({ kind: "forecast", threshold: 0, periodStart: start });

  const decisions: Decision[] = candidates.map((c, i) => ({ ...c, notify: i === 0 }));
  if (anomaly && !quietAfterAnomaly(firings, anomaly.hour)) decisions.push({ kind: "anomaly", threshold: 0, periodStart: anomaly.hour, notify: true });
  return decisions;
}

/** Why a budget under its amount now was over it last time it was looked at, if it was. */
function recoveryReason(firings: readonly Firing[], start: Date, previousStart: Date): Decision["reason"] {
  const mark = latestMark(firings, start);
  // Spend only grows within a period, so over-then-under means the amount went up (or usage was erased).
  if (mark) return overMark(mark) ? "raise" : undefined;
  const before = latestMark(firings, previousStart);
  return before && overMark(before) ? "new_period" : undefined;
}

/** An anomaly alert in this hour or the few before it: the surge is already known. */
function quietAfterAnomaly(firings: readonly Firing[], hour: Date): boolean {
  const since = hour.getTime() - (ANOMALY_QUIET_HOURS - 1) * HOUR_MS;
  return firings.some((f) => f.kind === "anomaly" && f.periodStart.getTime() >= since && f.periodStart.getTime() <= hour.getTime());
}
