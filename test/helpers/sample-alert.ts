import type { Alert } from "../../src/alerts/alert.ts";

/** A threshold alert as the evaluator writes it (search-monthly past 80 % of $500), for rendering tests; `overrides` replace whole fields. */
export function sampleAlert(overrides: Partial<Alert> = {}): Alert {
  return {
    id: "firing:1",
    kind: "threshold",
    title: "search-monthly passed 80 % of $500.00",
    summary: "$412.50 of $500.00 (82 %) spent on team:search in this-month; the period ends 1 Dec 2026, 00:00 UTC.",
    budget: { id: "b1", name: "search-monthly", scope: { team: "search" }, mode: "hard", period: "month" },
    spend_usd: "412.5",
    amount_usd: "500",
    percent: 82,
    threshold: 80,
    period: { start: "2026-11-01T00:00:00.000Z", end: "2026-12-01T00:00:00.000Z" },
    forecast_usd: "610.25",
    forecast_method: "run rate",
    run_out_at: "2026-11-27T09:30:00.000Z",
    top: [
      { dimension: "feature", key: "autocomplete", spend_usd: "300" },
      { dimension: "feature", key: "rerank", spend_usd: "112.5" },
    ],
    movers: [],
    chart: null,
    actions: [
      { action: "request_raise", label: "Request a raise", target: "search-monthly" },
      { action: "mute", label: "Mute", target: "search-monthly" },
      { action: "breakdown", label: "Breakdown", target: "search-monthly" },
    ],
    details: {},
    at: "2026-11-23T14:02:00.000Z",
    ...overrides,
  };
}
