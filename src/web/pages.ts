/** The dashboard's pages as pure functions of what was read: HTML out, every value escaped. */
import type { Alert } from "../alerts/alert.ts";
import type { Approval } from "../approvals/requests.ts";
import { type Scope, describeScope } from "../budgets/budget.ts";
import type { Standing } from "../budgets/status.ts";
import { DIMENSIONS, type Dimension } from "../ledger/event.ts";
import { PERIOD_NAMES } from "../ledger/period.ts";
import type { SpendReport, Totals } from "../ledger/spend.ts";
import { changeText } from "../pricing/money.ts";
import { chartFigure } from "./chart-figure.ts";
import { type Html, type HtmlValue, html } from "./html.ts";
import { count, csrfForm, money, stateText, table, when } from "./layout.ts";
import type { Overview } from "./reads.ts";

const share = (part: bigint, whole: bigint) => (whole > 0n ? `${Number((part * 1000n) / whole) / 10}\u00a0%` : "–");

function groupsTable(caption: string, dim: Dimension, report: SpendReport, link?: (key: string) => string): Html {
  return table<SpendReport["groups"][number]>(
    caption,
    [
      { head: dim, cell: (g) => (link && g.key !== "other" ? html`<a href="${link(g.key)}">${g.key}</a>` : g.key) },
      { head: "Spend", num: true, cell: (g) => money(g.cost) },
      { head: "Share", num: true, cell: (g) => share(g.cost, report.total.cost) },
      { head: "Requests", num: true, cell: (g) => count(g.requests) },
    ],
    report.groups,
    "no spend in this period.",
  );
}

function card(label: string, value: HtmlValue, note?: HtmlValue): Html {
  return html`<div class="card"><div class="label">${label}</div><div class="value">${value}</div>${note ? html`<div class="note">${note}</div>` : ""}</div>`;
}

export function scopeNote(scope: Scope): Html {
  return Object.keys(scope).length > 0 ? html`<p class="muted">Showing ${describeScope(scope)} only.</p>` : html``;
}

export function overviewPage(o: Overview, scope: Scope, exploreLink: (query: Record<string, string>) => string): Html {
  const m = o.month;
  return html`<h1>Overview</h1>${scopeNote(scope)}
<section aria-labelledby="totals"><h2 id="totals" class="muted">${m.period.label}</h2><div class="cards">
${card("This month so far", html`<span id="month-total">${money(m.total.cost)}</span>`, `${count(m.total.requests)} requests`)}
${card("Same point last month", money(m.previous.cost), changeText(m.total.cost, m.previous.cost))}
${card("All of last month", money(o.lastMonth.total.cost), o.lastMonth.period.label)}
${card("Forecast to month end", o.forecast === null ? html`<span class="muted">too early</span>` : money(o.forecast), "at the last 7 days' pace")}
${m.unpriced_requests > 0 ? card("Unpriced requests", count(m.unpriced_requests), "calls to models without a price: not counted in spend") : ""}
</div></section>
${chartFigure({ id: "daily", kind: "line", title: `Daily spend in ${m.period.label}, top teams`, labels: o.daily.days, series: o.daily.series })}
<div class="grid">
<section>${groupsTable("Top teams", "team", m, (k) => exploreLink({ period: "this-month", by: "project", team: k }))}</section>
<section>${groupsTable("Top models", "model", o.models, (k) => exploreLink({ period: "this-month", by: "team", model: k }))}</section>
<section>${groupsTable("Top features", "feature", o.features, (k) => exploreLink({ period: "this-month", by: "model", feature: k }))}</section>
</div>
<section><h2>Budgets at risk</h2>${budgetsTable(o.atRisk, "no budget is at risk.")}</section>
<section><h2>Pending raises</h2>${approvalsTable(o.pending, undefined)}</section>
<section><h2>Recent alerts</h2>${alertsTable(o.alerts)}</section>`;
}

export function budgetsTable(standings: readonly Standing[], empty = "no budgets yet."): Html {
  return table<Standing>(
    "Budgets",
    [
      { head: "Budget", cell: (s) => html`<a href="/budgets/${encodeURIComponent(s.budget.id)}">${s.budget.name}</a>` },
      { head: "Scope", cell: (s) => describeScope(s.budget.scope) },
      { head: "Period", cell: (s) => s.budget.period },
      { head: "Spent", num: true, cell: (s) => money(s.spend) },
      { head: "Amount", num: true, cell: (s) => money(s.budget.amount) },
      { head: "Used", num: true, cell: (s) => `${s.percent} %` },
      { head: "Forecast", num: true, cell: (s) => (s.forecast === null ? html`<span class="muted">too early</span>` : money(s.forecast)) },
      { head: "Mode", cell: (s) => s.budget.mode },
      { head: "State", cell: (s) => stateText(s.state) },
    ],
    standings,
    empty,
  );
}

/** Pending and past raises; with `csrf`, buttons to approve or reject the pending ones. */
export function approvalsTable(approvals: readonly Approval[], decide: { csrf: string } | undefined): Html {
  return table<Approval>(
    "Raise requests",
    [
      { head: "Budget", cell: (a) => html`<a href="/budgets/${encodeURIComponent(a.budget_id)}">${a.budget}</a>` },
      { head: "From", num: true, cell: (a) => money(a.from_amount) },
      { head: "To", num: true, cell: (a) => money(a.to_amount) },
      { head: "Reason", cell: (a) => a.reason },
      { head: "Asked by", cell: (a) => a.requested_by_name ?? a.requested_by },
      { head: "Status", cell: (a) => (a.status === "pending" ? html`pending until ${when(a.expires_at)}` : html`${a.status}${a.decided_by ? html` by ${a.decided_by_name ?? a.decided_by}` : ""}`) },
      ...(decide
        ? [
            {
              head: "Decision",
              cell: (a: Approval) =>
                a.status === "pending"
                  ? html`${csrfForm(`/approvals/${encodeURIComponent(a.id)}/decision`, decide.csrf, html`<input type="hidden" name="decision" value="approve"><button class="primary" type="submit">Approve ${a.budget}</button>`)}
${csrfForm(`/approvals/${encodeURIComponent(a.id)}/decision`, decide.csrf, html`<input type="hidden" name="decision" value="reject"><button type="submit">Reject</button>`)}`
                  : "",
            },
          ]
        : []),
    ],
    approvals,
    "no raise is waiting.",
  );
}

export function alertsTable(alerts: readonly Alert[]): Html {
  return table<Alert>(
    "Alerts",
    [
      { head: "When", cell: (a) => when(a.at) },
      { head: "Kind", cell: (a) => a.kind },
      { head: "Alert", cell: (a) => html`<strong>${a.title}</strong><br><span class="muted">${a.summary}</span>` },
    ],
    alerts,
    "none sent yet.",
  );
}

export interface ExploreForm {
  period: string;
  by: Dimension | "";
  filters: Partial<Record<Dimension, string>>;
}

/** A period of the command grammar, typed or picked from the named ones (a datalist: no script needed). */
export function periodField(value: string): Html {
  return html`<label>Period<input name="period" list="periods" value="${value}" required aria-describedby="period-help"></label>
<datalist id="periods">${PERIOD_NAMES.map((p) => html`<option value="${p}">`)}</datalist>`;
}

export const periodHelp = html`<p id="period-help" class="muted">Periods: ${PERIOD_NAMES.join(", ")}, YYYY-MM or YYYY-MM-DD..YYYY-MM-DD.</p>`;

/** The explorer's form: any period of the command grammar, a grouping, a filter per dimension (the viewer's own scope fixed). */
export function exploreForm(form: ExploreForm, fixed: Scope): Html {
  return html`<form class="filters" method="get" action="/explore" role="search" aria-label="Spend query">
${periodField(form.period)}
<label>Group by<select name="by"><option value=""${form.by === "" ? html` selected` : ""}>nothing</option>${DIMENSIONS.map((d) => html`<option value="${d}"${form.by === d ? html` selected` : ""}>${d}</option>`)}</select></label>
${DIMENSIONS.filter((d) => fixed[d] === undefined).map((d) => html`<label>${d}<input name="${d}" value="${form.filters[d] ?? ""}" size="12"></label>`)}
<button class="primary" type="submit">Show</button></form>
${periodHelp}`;
}

const TOKEN_COLUMNS: { head: string; field: keyof Totals }[] = [
  { head: "Input tokens", field: "input_tokens" },
  { head: "Cached input", field: "cached_input_tokens" },
  { head: "Output tokens", field: "output_tokens" },
];

export function exploreResult(report: SpendReport, by: Dimension | "", csvLink: string | undefined, chart: Html): Html {
  const rows: ({ key: string } & Totals)[] = by ? report.groups : [{ key: "all", ...report.total }];
  return html`<h2>${report.period.label}: <span id="explore-total">${money(report.total.cost)}</span></h2>
<p class="muted">${count(report.total.requests)} requests, ${changeText(report.total.cost, report.previous.cost)} on the period before (${money(report.previous.cost)})${report.unpriced_requests > 0 ? html`; <strong>${count(report.unpriced_requests)} unpriced</strong> requests are not in the spend` : ""}.
${csvLink ? html` <a href="${csvLink}" download>Finance report (CSV)</a>` : ""}</p>
${chart}
${table<{ key: string } & Totals>(
  `Spend ${by ? `by ${by}` : ""}`,
  [
    { head: by || "scope", cell: (g) => g.key },
    { head: "Spend", num: true, cell: (g) => money(g.cost) },
    { head: "Share", num: true, cell: (g) => share(g.cost, report.total.cost) },
    { head: "Requests", num: true, cell: (g) => count(g.requests) },
    { head: "Errors", num: true, cell: (g) => count(g.errors) },
    ...TOKEN_COLUMNS.map((c) => ({ head: c.head, num: true, cell: (g: { key: string } & Totals) => count(g[c.field] as number) })),
    { head: "Unpriced", num: true, cell: (g) => count(g.unpriced) },
  ],
  rows,
  "no spend in this period.",
)}`;
}

export function problemPage(title: string, message: string): Html {
  return html`<h1>${title}</h1><p class="error" role="alert">${message}</p><p><a href="/">Back to the overview</a></p>`;
}

/** Models called without a known price: their calls are counted but not in the spend, until a price is added. */
export function unpricedPage(report: SpendReport, form: Html): Html {
  const models = report.groups.filter((g) => g.unpriced > 0);
  return html`<h1>Unpriced usage</h1>${form}
<p>Calls to a model Tollgate has no price for are recorded with their tokens and marked unpriced: they are never counted as $0, and
they are not in any spend figure until the model has a price. Add one in the price file (<code>TOLLGATE_PRICES</code>, see the
configuration docs' "Price file" section); events already recorded keep the price they were recorded with.</p>
${table<SpendReport["groups"][number]>(
  `Unpriced calls in ${report.period.label}`,
  [
    { head: "model", cell: (g) => g.key },
    { head: "Unpriced calls", num: true, cell: (g) => count(g.unpriced) },
    { head: "All calls", num: true, cell: (g) => count(g.requests) },
    { head: "Input tokens", num: true, cell: (g) => count(g.input_tokens) },
    { head: "Output tokens", num: true, cell: (g) => count(g.output_tokens) },
  ],
  models,
  "every call had a price.",
)}`;
}
