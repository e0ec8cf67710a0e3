import type { Budget } from "../../src/budgets/budget.ts";
import { PICO_PER_USD } from "../../src/pricing/money.ts";

/** A soft monthly budget as the store returns it ($500 for team:search, thresholds 50/80/100 %), for evaluation tests; `overrides` replace whole fields. */
export function sampleBudget(overrides: Partial<Budget> = {}): Budget {
  return {
    id: "b1",
    name: "search-monthly",
    scope: { team: "search" },
    amount: 500n * PICO_PER_USD,
    period: "month",
    timezone: "UTC",
    thresholds: [50, 80, 100],
    mode: "soft",
    paused: false,
    created_at: new Date("2026-01-01T00:00Z"),
    updated_at: new Date("2026-01-01T00:00Z"),
    ...overrides,
  };
}
