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

/**
 * A weekly digest with its trend chart and top movers, as the digest job writes it; `name` stands
 * where usage data goes (a team: in the title, the chart's title and categories' neighbours, the movers).
 */
export function sampleDigest(name = "search", overrides: Partial<Alert> = {}): Alert {
  const days = ["Mon 9 Nov", "Tue 10 Nov", "Wed 11 Nov", "Thu 12 Nov", "Fri 13 Nov", "Sat 14 Nov", "Sun 15 Nov"];
  return sampleAlert({
    id: `digest_weekly:c1:2026-11-16:team:${name}`,
    kind: "digest_weekly",
    title: `Weekly spend on team:${name}: $70.00 in last-week`,
    summary: "$70.00 over 1,234 requests, +40.0 % against the week before ($50.00).",
    budget: null,
    amount_usd: null,
    percent: null,
    threshold: null,
    forecast_usd: null,
    forecast_method: null,
    run_out_at: null,
    spend_usd: "70",
    top: [{ dimension: "feature", key: name, spend_usd: "40" }],
    movers: [{ dimension: "feature", key: name, spend_usd: "40", previous_spend_usd: "12.5", change_usd: "27.5" }],
    chart: {
      kind: "line",
      title: `Daily spend, team:${name}`,
      categories: days,
      series: [
        { name: "Last 7 days", values: ["10", "10", "12.5", "7.5", "10", "10", "10"] },
        { name: "7 days before", values: ["5", "5", "10", "10", "5", "10", "5"] },
      ],
      unit: "usd",
    },
    actions: [],
    ...overrides,
  });
}

/** A threshold alert with its budget's period so far: 20 buckets of running spend against the $500 amount. */
export function sampleChartedAlert(overrides: Partial<Alert> = {}): Alert {
  const categories = Array.from({ length: 20 }, (_, i) => `${i + 1} Nov`);
  return sampleAlert({
    chart: {
      kind: "line",
      title: "search-monthly: this-month so far",
      categories,
      series: [
        { name: "Spent", values: categories.map((_, i) => String(20 * (i + 1) + 0.625)) },
        { name: "Budget", values: categories.map(() => "500") },
      ],
      unit: "usd",
    },
    ...overrides,
  });
}
