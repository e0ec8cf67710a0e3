import { randomUUID } from "node:crypto";
import type { Alert } from "../../src/alerts/alert.ts";
import type { Gateway } from "../../src/app.ts";

export interface BudgetRef {
  id: string;
  name: string;
  scope?: Record<string, string>;
}

/** A threshold alert as the evaluator raises it: `budget` passed `threshold` % of $500 in June. */
export function thresholdAlert(budget: BudgetRef, threshold: number, overrides: Partial<Alert> = {}): Alert {
  return {
    id: randomUUID(),
    kind: "threshold",
    title: `${budget.name} passed ${threshold} % of $500.00`,
    summary: `Spend this month is $${(5 * threshold).toFixed(2)} of $500.00.`,
    budget: { id: budget.id, name: budget.name, scope: budget.scope ?? {}, mode: "soft", period: "month" },
    spend_usd: `${5 * threshold}`,
    amount_usd: "500",
    percent: threshold,
    threshold,
    period: { start: "2025-06-01T00:00:00.000Z", end: "2025-07-01T00:00:00.000Z" },
    forecast_usd: "612.5",
    forecast_method: "linear over the days elapsed",
    run_out_at: "2025-06-26T14:00:00.000Z",
    top: [{ dimension: "team", key: "search", spend_usd: `${4 * threshold}` }],
    movers: [],
    chart: null,
    actions: [{ action: "request_raise", label: "Request a raise", target: budget.name }],
    details: {},
    at: "2025-06-20T10:00:00.000Z",
    ...overrides,
  };
}

/** Enqueues through the gateway's notifier in a transaction of its own, as the evaluator does. */
export async function enqueue(gateway: Gateway, alerts: Alert[], opts?: { channelIds?: string[] }): Promise<void> {
  await gateway.database.db.transaction((tx) => gateway.notifier.enqueue(tx, alerts, opts));
}
