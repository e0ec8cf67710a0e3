import { picoToDecimalString } from "../pricing/money.ts";
import type { Budget, BudgetPeriod, Scope } from "./budget.ts";

/** A budget as every answer, audit record and diff shows it: the amount as exact decimal USD text. */
export interface BudgetJson {
  id: string;
  name: string;
  scope: Scope;
  amount_usd: string;
  period: BudgetPeriod;
  timezone: string;
  thresholds: number[];
  mode: Budget["mode"];
  paused: boolean;
  created_at: string;
  updated_at: string;
}

export function budgetJson(budget: Budget): BudgetJson {
  return {
    id: budget.id,
    name: budget.name,
    scope: budget.scope,
    amount_usd: picoToDecimalString(budget.amount),
    period: budget.period,
    timezone: budget.timezone,
    thresholds: budget.thresholds,
    mode: budget.mode,
    paused: budget.paused,
    created_at: budget.created_at.toISOString(),
    updated_at: budget.updated_at.toISOString(),
  };
}
