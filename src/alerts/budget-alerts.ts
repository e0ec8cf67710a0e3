/**
 * Alert values about one budget: what a reader needs to act (spend, amount, percent, period end,
 * forecast, top contributors) and the actions that make sense for the kind.
 */
import type { AnomalyVerdict } from "../budgets/anomaly.ts";
import { type Budget, describeScope } from "../budgets/budget.ts";
import type { Contributor } from "../budgets/contributors.ts";
import { type Decision, percentOf } from "../budgets/evaluate.ts";
import { FORECAST_METHOD } from "../budgets/forecast.ts";
import type { Chart } from "../charts/chart.ts";
import type { Period } from "../ledger/period.ts";
import { formatUsd, picoToDecimalString } from "../pricing/money.ts";
import type { Alert } from "./alert.ts";

export interface BudgetAlertFacts {
  /** The firing's id: unique per occurrence. */
  id: string;
  decision: Decision;
  budget: Budget;
  period: Period;
  spend: bigint;
  forecast: bigint | null;
  /** When the amount is reached at the forecast's run rate (runOutAt), or null. */
  runOut: Date | null;
  anomaly: AnomalyVerdict | null;
  top: Contributor[];
  /** The budget's period so far against its amount (trends.ts), read when the alert is made; shown on threshold and forecast alerts. */
  chart: Chart | null;
  now: Date;
}

type Action = Alert["actions"][number];

const ACTIONS: Record<Decision["kind"], Action["action"][]> = {
  threshold: ["request_raise", "mute", "breakdown"],
  forecast: ["request_raise", "mute", "breakdown"],
  blocked: ["request_raise", "breakdown", "mute"],
  anomaly: ["breakdown", "mute"],
  recovered: ["breakdown"],
};

const LABELS: Record<Action["action"], string> = {
  request_raise: "Request a raise",
  mute: "Mute",
  breakdown: "Breakdown",
  approve: "Approve",
  reject: "Reject",
};

/** The end of a period as people in the budget's zone read it: "1 Apr 2026, 00:00 Europe/Berlin". */
export function localTime(at: Date, timeZone: string): string {
  const text = new Intl.DateTimeFormat("en-GB", { timeZone, day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(at);
  return `${text} ${timeZone}`;
}

const plainScope = (budget: Budget): Record<string, string> =>
  Object.fromEntries(Object.entries(budget.scope).filter((e): e is [string, string] => e[1] !== undefined));

export function budgetAlert(facts: BudgetAlertFacts): Alert {
  const { id, decision, budget, period, spend, forecast, top, now } = facts;
  const percent = percentOf(spend, budget.amount);
  const { title, summary } = wording(facts, percent);
  return {
    id,
    kind: decision.kind,
    title,
    summary,
    budget: { id: budget.id, name: budget.name, scope: plainScope(budget), mode: budget.mode, period: budget.period },
    spend_usd: picoToDecimalString(spend),
    amount_usd: picoToDecimalString(budget.amount),
    percent,
    threshold: decision.kind === "threshold" ? decision.threshold : null,
    period: { start: period.start.toISOString(), end: period.end.toISOString() },
    forecast_usd: forecast === null ? null : picoToDecimalString(forecast),
    forecast_method: forecast === null ? null : FORECAST_METHOD,
    run_out_at: runOutShown(facts)?.toISOString() ?? null,
    top,
    movers: [],
    chart: chartShown(facts.decision) ? facts.chart : null,
    actions: ACTIONS[decision.kind].map((action) => ({ action, label: LABELS[action], target: budget.name })),
    details: details(facts),
    at: now.toISOString(),
  };
}

/** The alerts that look ahead (a line crossed on the way, a forecast over) carry the run-out date and the period's chart. */
export const chartShown = (decision: Pick<Decision, "kind">): boolean => decision.kind === "threshold" || decision.kind === "forecast";
const runOutShown = ({ decision, runOut }: BudgetAlertFacts): Date | null => (chartShown(decision) ? runOut : null);

function details({ decision, budget, period, spend, anomaly }: BudgetAlertFacts): Record<string, unknown> {
  const common = { period_label: period.label, timezone: budget.timezone, remaining_usd: picoToDecimalString(budget.amount > spend ? budget.amount - spend : 0n) };
  if (decision.kind === "blocked") return { ...common, resets_at: period.end.toISOString() };
  if (decision.kind === "recovered") return { ...common, reason: decision.reason };
  if (decision.kind === "anomaly" && anomaly)
    return {
      ...common,
      hour_start: anomaly.hour.toISOString(),
      hour_spend_usd: picoToDecimalString(anomaly.recent),
      baseline_mean_usd: picoToDecimalString(anomaly.mean),
      baseline_stddev_usd: picoToDecimalString(anomaly.stddev),
      baseline_hours: anomaly.baselineHours,
    };
  return common;
}

function wording(facts: BudgetAlertFacts, percent: number): { title: string; summary: string } {
  const { decision, budget, period, spend, forecast, anomaly } = facts;
  const [spent, amount] = [formatUsd(spend), formatUsd(budget.amount)];
  const scope = describeScope(budget.scope);
  const ends = localTime(period.end, budget.timezone);
  const standing = `${spent} of ${amount} (${percent} %) spent on ${scope} in ${period.label}; the period ends ${ends}.`;
  const runOut = runOutShown(facts);
  const reachedBy = runOut === null ? "" : ` At this pace ${amount} is reached ${localTime(runOut, budget.timezone)}.`;
  const outlook = (forecast === null ? "" : ` Forecast for the period: ${formatUsd(forecast)}.`) + reachedBy;
  switch (decision.kind) {
    case "threshold":
      return { title: `${budget.name} passed ${decision.threshold} % of ${amount}`, summary: standing + outlook };
    case "forecast":
      return { title: `${budget.name} is on course to spend ${formatUsd(forecast ?? 0n)} of ${amount}`, summary: standing + outlook };
    case "blocked":
      return {
        title: `${budget.name} is blocked: ${spent} of ${amount} spent`,
        summary: `${standing} Calls on ${scope} are refused (429 budget_exceeded) until then, or until a raise is approved.`,
      };
    case "recovered":
      return {
        title: `${budget.name} is back under budget`,
        summary:
          decision.reason === "new_period"
            ? `A new period began: ${standing}`
            : `The amount is now ${amount}: ${standing}${budget.mode === "hard" ? " Calls are allowed again." : ""}`,
      };
    case "anomaly":
      if (!anomaly) return { title: `Unusual spend on ${budget.name}`, summary: standing };
      return {
        title: `Unusual spend on ${budget.name}: ${formatUsd(anomaly.recent)} this hour`,
        summary: `${formatUsd(anomaly.recent)} spent on ${scope} since ${localTime(anomaly.hour, budget.timezone)}, against a usual ${formatUsd(anomaly.mean)} an hour (standard deviation ${formatUsd(anomaly.stddev)}) over the last ${anomaly.baselineHours / 24} days. ${standing}`,
      };
  }
}
