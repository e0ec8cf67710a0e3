import type { Alert } from "../../src/alerts/alert.ts";

/** One alert as a webhook receiver reads it; documented in README.md ("Webhook channel"). */
export interface WebhookAlert {
  id: string;
  kind: Alert["kind"];
  title: string;
  summary: string;
  budget: string | null;
  budget_id: string | null;
  mode: "soft" | "hard" | null;
  scope: Record<string, string> | null;
  spend_usd: string | null;
  amount_usd: string | null;
  percent: number | null;
  threshold: number | null;
  period: { unit: string | null; start: string; end: string } | null;
  forecast_usd: string | null;
  forecast_method: string | null;
  /** When the amount is reached at the forecast's run rate (threshold and forecast alerts), or null. */
  run_out_at: string | null;
  top: Alert["top"];
  /** Largest increases against the period before (digests). */
  movers: Alert["movers"];
  /** The alert's chart as Tollgate's neutral value (kind, title, categories, series of exact decimal text, unit), or null. */
  chart: Alert["chart"];
  actions: Alert["actions"];
  details: Record<string, unknown>;
  links: Record<string, string>;
  at: string;
}

/** The body: the first alert's fields at the top, for receivers that expect one alert, and every alert of the message in `alerts`. */
export type WebhookBody = WebhookAlert & { type: "tollgate.alerts"; alerts: WebhookAlert[] };

/** Where a reader can look further, when the gateway knows its own address. */
function links(alert: Alert, publicUrl: string | undefined): Record<string, string> {
  if (!publicUrl) return {};
  const base = publicUrl.replace(/\/+$/, "");
  const out: Record<string, string> = { alerts: `${base}/api/alerts` };
  if (alert.budget) out.budget_status = `${base}/api/budgets/${encodeURIComponent(alert.budget.id)}/status`;
  const approval = alert.details.approval_id;
  if (typeof approval === "string") out.approval = `${base}/api/approvals/${encodeURIComponent(approval)}`;
  return out;
}

export function webhookAlert(alert: Alert, publicUrl: string | undefined): WebhookAlert {
  return {
    id: alert.id,
    kind: alert.kind,
    title: alert.title,
    summary: alert.summary,
    budget: alert.budget?.name ?? null,
    budget_id: alert.budget?.id ?? null,
    mode: alert.budget?.mode ?? null,
    scope: alert.budget?.scope ?? null,
    spend_usd: alert.spend_usd,
    amount_usd: alert.amount_usd,
    percent: alert.percent,
    threshold: alert.threshold,
    period: alert.period && { unit: alert.budget?.period ?? null, start: alert.period.start, end: alert.period.end },
    forecast_usd: alert.forecast_usd,
    forecast_method: alert.forecast_method,
    run_out_at: alert.run_out_at,
    top: alert.top,
    movers: alert.movers,
    chart: alert.chart,
    actions: alert.actions,
    details: alert.details,
    links: links(alert, publicUrl),
    at: alert.at,
  };
}

export function webhookBody(alerts: readonly Alert[], publicUrl: string | undefined): WebhookBody {
  const rendered = alerts.map((a) => webhookAlert(a, publicUrl));
  return { type: "tollgate.alerts", ...rendered[0]!, alerts: rendered };
}
