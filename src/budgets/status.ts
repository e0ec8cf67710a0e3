/**
 * Where a budget stands now: spend, percent, forecast and a one-word state, as
 * `GET /api/budgets/:id/status`, digests and chat replies show it. Money is decimal USD text.
 */
import type { Database } from "../db/connection.ts";
import { picoToDecimalString } from "../pricing/money.ts";
import type { Budget } from "./budget.ts";
import { type Contributor, topContributors } from "./contributors.ts";
import { percentOf, reached } from "./evaluate.ts";
import { FORECAST_METHOD, forecastSpend, runOutAt } from "./forecast.ts";
import { type BudgetSpend, spendForBudgets } from "./spend-batch.ts";

export const BUDGET_STATES = ["ok", "warning", "over", "blocked", "paused"] as const;
export type BudgetState = (typeof BUDGET_STATES)[number];

/**
 * `paused` whatever the spend; `blocked` for a hard budget at or over its amount, `over` for a
 * soft one; `warning` once a threshold below 100 % is crossed or the forecast is over the amount.
 */
export function budgetState(budget: Budget, spend: bigint, forecast: bigint | null): BudgetState {
  if (budget.paused) return "paused";
  if (spend >= budget.amount) return budget.mode === "hard" ? "blocked" : "over";
  const warned = budget.thresholds.some((t) => t < 100 && reached(spend, budget.amount, t));
  return warned || (forecast !== null && forecast > budget.amount) ? "warning" : "ok";
}

export interface BudgetStatus {
  budget: { id: string; name: string; scope: Budget["scope"]; mode: Budget["mode"]; period: Budget["period"]; timezone: string };
  state: BudgetState;
  spend_usd: string;
  amount_usd: string;
  remaining_usd: string;
  /** Whole percent of the amount spent, floored. */
  percent: number;
  forecast_usd: string | null;
  forecast_method: string | null;
  /** When the amount is reached at the recent run rate, if within the period (ISO 8601). */
  run_out: string | null;
  period: { start: string; end: string; label: string };
  top: Contributor[];
  as_of: string;
}

/** A status from spend already read; `top` left for the caller that wants it. */
export function statusOf({ budget, period, spend, recentSpend }: BudgetSpend, now: Date, top: Contributor[] = []): BudgetStatus {
  const forecast = forecastSpend({ period, now, spend, recentSpend });
  return {
    budget: { id: budget.id, name: budget.name, scope: budget.scope, mode: budget.mode, period: budget.period, timezone: budget.timezone },
    state: budgetState(budget, spend, forecast),
    spend_usd: picoToDecimalString(spend),
    amount_usd: picoToDecimalString(budget.amount),
    remaining_usd: picoToDecimalString(spend < budget.amount ? budget.amount - spend : 0n),
    percent: percentOf(spend, budget.amount),
    forecast_usd: forecast === null ? null : picoToDecimalString(forecast),
    forecast_method: forecast === null ? null : FORECAST_METHOD,
    run_out: runOutAt({ period, now, spend, recentSpend, amount: budget.amount })?.toISOString() ?? null,
    period: { start: period.start.toISOString(), end: period.end.toISOString(), label: period.label },
    top,
    as_of: now.toISOString(),
  };
}

/** One budget's status with its top contributors. */
export async function budgetStatus(database: Database, budget: Budget, now: Date): Promise<BudgetStatus> {
  const [spend] = await spendForBudgets(database, [budget], now);
  if (!spend) throw new Error(`no spend answer for budget ${budget.id}`);
  const [top] = await topContributors(database, [{ scope: budget.scope, period: spend.period }]);
  return statusOf(spend, now, top);
}

/** Where a budget stands in pico-USD, for answers that format money themselves (chat replies). */
export interface Standing {
  budget: Budget;
  spend: bigint;
  /** Whole percent of the amount spent, floored. */
  percent: number;
  forecast: bigint | null;
  /** When the amount is reached at the recent run rate, if within the period. */
  runOut: Date | null;
  state: BudgetState;
  period: { start: Date; end: Date };
}

/** Where each budget stands now, read in one batch however many there are. */
export async function budgetStandings(database: Database, budgets: readonly Budget[], now: Date): Promise<Standing[]> {
  const read = await spendForBudgets(database, [...budgets], now);
  return read.map(({ budget, period, spend, recentSpend }) => {
    const forecast = forecastSpend({ period, now, spend, recentSpend });
    const runOut = runOutAt({ period, now, spend, recentSpend, amount: budget.amount });
    return { budget, spend, percent: percentOf(spend, budget.amount), forecast, runOut, state: budgetState(budget, spend, forecast), period: { start: period.start, end: period.end } };
  });
}
