import type { Reply } from "../../commands/reply.ts";
import { bar } from "../../commands/render-text.ts";
import { andMore, clip, fitCount } from "../../commands/truncate.ts";
import type { Alert } from "../../src/alerts/alert.ts";
import { moverText, moversHeading } from "../../src/alerts/trends.ts";
import { describeScope } from "../../src/budgets/budget.ts";
import { type Chart, chartLines, chartNumber } from "../../src/charts/chart.ts";
import { decimalUsdToPico, formatUsd } from "../../src/pricing/money.ts";

/*
 * Replies and alerts as Adaptive Cards 1.5 (the version with Action.Execute and refresh, the
 * Universal Actions Teams answers through `adaptiveCard/action` invokes). Pure functions: the bot
 * and the deliverer only send what these return.
 */

export type Element = Record<string, unknown> & { type: string };
export interface AdaptiveCard {
  type: "AdaptiveCard";
  $schema: string;
  version: "1.5";
  body: Element[];
  actions?: Element[];
  refresh?: { action: Element };
  msteams?: { width: "Full" };
}

export const CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive";
const SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json";

/** Teams refuses messages over about 28 KB; rows and contributors beyond these are counted, not shown. */
export const LIMITS = { tableRows: 25, bars: 20, contributors: 10, facts: 20, cell: 80, text: 2000, title: 200 } as const;

/** Verbs of the card actions; `refresh` is Teams asking for a card's current state. */
export const VERBS = ["approve", "reject", "mute", "breakdown", "request_raise", "refresh"] as const;
export type Verb = (typeof VERBS)[number];

/**
 * Text from usage data and people made safe for the markdown subset Teams renders in TextBlocks
 * and facts: markup characters are escaped, and `{{` is broken so no value can become a
 * `{{DATE(...)}}` function.
 */
export function md(text: string): string {
  return text
    .replace(/[\\`*_~[\]<>|]/g, (c) => `\\${c}`)
    .replace(/^(\s*)([#>+-])/gm, "$1\\$2")
    .replace(/^(\s*\d+)([.)])/gm, "$1\\$2")
    .replace(/\{\{/g, "{\u200b{");
}

const text = (value: string, extra: Record<string, unknown> = {}): Element => ({ type: "TextBlock", text: clip(value, LIMITS.text), wrap: true, ...extra });
const facts = (pairs: { label: string; value: string }[]): Element | undefined => {
  if (pairs.length === 0) return undefined;
  const { shown, more } = fitCount(pairs, LIMITS.facts);
  return { type: "FactSet", facts: [...shown.map((f) => ({ title: md(f.label), value: md(f.value) })), ...(more ? [{ title: "", value: andMore(more) }] : [])] };
};
const present = (items: (Element | undefined)[]): Element[] => items.filter((e): e is Element => e !== undefined);

/** A time each reader sees in their own zone (Adaptive Card date functions); the ISO text when it is not one. */
function when(iso: string, what: "DATE" | "TIME" | "both" = "both"): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return md(iso);
  const z = new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
  if (what === "both") return `{{DATE(${z}, SHORT)}} {{TIME(${z})}}`;
  return what === "DATE" ? `{{DATE(${z}, SHORT)}}` : `{{TIME(${z})}}`;
}

function usd(value: string | null | undefined): string | undefined {
  if (value === null || value === undefined) return undefined;
  const pico = decimalUsdToPico(value);
  return pico instanceof Error ? value : formatUsd(pico);
}
const str = (v: unknown) => (typeof v === "string" ? v : undefined);

/** The ids of the inputs the forms under buttons ask for: unique in a card, since a card may show both forms. */
export const INPUTS = { amount: "raise_amount", raiseReason: "raise_reason", rejectReason: "reject_reason" } as const;

/** What an action sends back: its verb and target, read the same from Action.Execute and from the Action.Submit fallback. */
export interface ActionData {
  verb: Verb;
  target: string;
}

/**
 * A button as Action.Execute (Universal Actions: the bot answers with the updated card), with an
 * Action.Submit fallback for clients that do not know Action.Execute; both carry the same data.
 */
function execute(verb: Verb, title: string, target: string, extra: Record<string, unknown> = {}): Element {
  const data = { verb, target } satisfies ActionData;
  return { type: "Action.Execute", title: clip(title, 80), verb, data, ...extra, fallback: { type: "Action.Submit", title: clip(title, 80), data, ...extra } };
}

/** An action of a Reply or an Alert: a raise and a rejection ask for more first, in a card shown under the button. */
function action(a: { action: Verb; label: string; target: string }): Element {
  switch (a.action) {
    case "request_raise":
      return {
        type: "Action.ShowCard",
        title: clip(a.label, 80),
        card: {
          type: "AdaptiveCard",
          body: [
            { type: "Input.Text", id: INPUTS.amount, label: "New amount (USD)", placeholder: "800", isRequired: true, errorMessage: "The new amount, such as 800", maxLength: 20 },
            { type: "Input.Text", id: INPUTS.raiseReason, label: "Why", placeholder: "launch week", isMultiline: true, maxLength: 500 },
          ],
          actions: [execute("request_raise", "Send request", a.target, { associatedInputs: "auto" })],
        },
      };
    case "reject":
      return {
        type: "Action.ShowCard",
        title: clip(a.label, 80),
        card: {
          type: "AdaptiveCard",
          body: [{ type: "Input.Text", id: INPUTS.rejectReason, label: "Reason (shown to the requester)", isMultiline: true, maxLength: 500 }],
          actions: [execute("reject", "Reject", a.target, { associatedInputs: "auto" })],
        },
      };
    case "approve":
      return execute("approve", a.label, a.target, { style: "positive" });
    default:
      return execute(a.action, a.label, a.target);
  }
}

function card(body: Element[], actions: Element[] = [], refresh?: Element): AdaptiveCard {
  return { type: "AdaptiveCard", $schema: SCHEMA, version: "1.5", body, ...(actions.length > 0 ? { actions } : {}), ...(refresh ? { refresh: { action: refresh } } : {}), msteams: { width: "Full" } };
}

function table(t: NonNullable<Reply["table"]>): Element[] {
  const { shown, more } = fitCount(t.rows, LIMITS.tableRows);
  const cell = (value: string, bold = false): Element => ({ type: "TableCell", items: [text(md(clip(value, LIMITS.cell)), bold ? { weight: "Bolder" } : {})] });
  return present([
    {
      type: "Table",
      firstRowAsHeader: true,
      gridStyle: "accent",
      columns: t.columns.map(() => ({ width: 1 })),
      rows: [
        { type: "TableRow", cells: t.columns.map((c) => cell(c, true)) },
        ...shown.map((row) => ({ type: "TableRow", cells: t.columns.map((_, i) => cell(row[i] ?? "")) })),
      ],
    },
    more ? text(andMore(more), { isSubtle: true }) : undefined,
  ]);
}

function bars(b: NonNullable<Reply["bars"]>): Element[] {
  if (b.rows.length === 0) return [];
  const { shown, more } = fitCount(b.rows, LIMITS.bars);
  return present([
    text(md(b.heading), { weight: "Bolder", spacing: "Medium" }),
    {
      type: "ColumnSet",
      columns: [
        { type: "Column", width: "auto", items: shown.map((r) => text(md(r.label), { spacing: "None" })) },
        { type: "Column", width: "auto", items: shown.map((r) => text(md(r.value), { spacing: "None", horizontalAlignment: "Right" })) },
        { type: "Column", width: "stretch", items: shown.map((r) => text(bar(r.share) || " ", { spacing: "None", color: "Accent" })) },
      ],
    },
    more ? text(andMore(more), { isSubtle: true }) : undefined,
  ]);
}

/**
 * A Chart as Teams' own chart element (Chart.HorizontalBar for a breakdown, Chart.Line for a
 * trend, Chart.Pie / Chart.Donut), with `fallback` the elements a client without charts shows
 * instead. Labels are plain strings to Teams' chart renderer (no markdown), cut to the cell
 * length; values are numbers as drawn, the exact amounts being in the fallback and the facts.
 */
export function chartElement(chart: Chart, fallback: Element): Element {
  // Chart labels and titles are not markdown, but `{{` is still broken so no value can become a date function.
  const inert = (text: string, max: number) => clip(text, max).replace(/\{\{/g, "{\u200b{");
  const label = (text: string) => inert(text, LIMITS.cell);
  const categories = chart.categories.slice(0, LIMITS.bars);
  const title = inert(chart.title, LIMITS.title);
  const at = (values: readonly string[]) => categories.map((c, i) => ({ x: label(c), y: chartNumber(values[i]!) }));
  switch (chart.kind) {
    case "bar":
      return chart.series.length === 1
        ? { type: "Chart.HorizontalBar", title, data: at(chart.series[0]!.values), fallback }
        : { type: "Chart.Line", title, data: chart.series.map((s) => ({ legend: label(s.name), values: at(s.values) })), fallback };
    case "line":
      return { type: "Chart.Line", title, data: chart.series.map((s) => ({ legend: label(s.name), values: at(s.values) })), fallback };
    case "pie":
    case "donut":
      return { type: chart.kind === "pie" ? "Chart.Pie" : "Chart.Donut", title, data: categories.map((c, i) => ({ legend: label(c), value: chartNumber(chart.series[0]!.values[i]!) })), fallback };
  }
}

/** A command's answer; `notice` is a line put above it (a refusal to press a button, say). */
export function replyCard(r: Reply, notice?: string): AdaptiveCard {
  return card(
    present([
      notice ? text(md(notice), { color: "Attention", weight: "Bolder" }) : undefined,
      text(md(clip(r.title, LIMITS.title)), { size: "Medium", weight: "Bolder", ...(r.error ? { color: "Attention" } : {}) }),
      r.summary ? text(md(r.summary)) : undefined,
      facts(r.facts),
      // A chart where Teams draws one, the text bars where it does not.
      ...(r.bars && r.charts[0] ? [chartElement(r.charts[0], { type: "Container", items: bars(r.bars) })] : r.bars ? bars(r.bars) : []),
      ...(r.table ? table(r.table) : []),
      ...r.notes.map((n) => text(md(n), { isSubtle: true })),
    ]),
    r.actions.map(action),
  );
}

/** The line an approval's outcome is read by: "Approved by Dana Ruiz, 14:02, $500.00 → $800.00". */
function decisionLine(alert: Alert): Element | undefined {
  const d = alert.details;
  const status = str(d.status);
  if (alert.kind !== "approval_decided" || !status) return undefined;
  const change = `${usd(str(d.from_usd)) ?? "?"} → ${usd(str(d.to_usd)) ?? "?"}`;
  if (status === "expired") return text(`**Expired** without a decision, ${when(alert.at)}, ${md(change)}`, { color: "Warning", size: "Medium" });
  const verb = status === "approved" ? "Approved" : "Rejected";
  return text(`**${verb}** by ${md(str(d.decided_by_name) ?? str(d.decided_by) ?? "someone")}, ${when(alert.at, "TIME")}, ${md(change)}`, {
    color: status === "approved" ? "Good" : "Attention",
    size: "Medium",
  });
}

function alertFacts(alert: Alert): { label: string; value: string }[] {
  const out: { label: string; value: string }[] = [];
  const d = alert.details;
  if (alert.budget) out.push({ label: "Budget", value: `${alert.budget.name} (${alert.budget.mode}, per ${alert.budget.period})` }, { label: "Scope", value: describeScope(alert.budget.scope) });
  const spend = usd(alert.spend_usd);
  const amount = usd(alert.amount_usd);
  if (spend && amount) out.push({ label: "Spent", value: `${spend} of ${amount}${alert.percent !== null ? ` (${alert.percent} %)` : ""}` });
  else if (spend) out.push({ label: "Spent", value: spend });
  else if (amount) out.push({ label: "Amount", value: amount });
  const forecast = usd(alert.forecast_usd);
  if (forecast) out.push({ label: "Forecast", value: forecast });
  if (alert.kind === "approval_requested") {
    out.push({ label: "Requested", value: `${usd(str(d.from_usd)) ?? "?"} → ${usd(str(d.to_usd)) ?? "?"}` });
    out.push({ label: "Requested by", value: str(d.requested_by_name) ?? str(d.requested_by) ?? "someone" });
    if (str(d.reason)) out.push({ label: "Reason", value: str(d.reason)! });
    if (str(d.approval_id)) out.push({ label: "Request", value: str(d.approval_id)! });
  }
  if (alert.kind === "approval_decided" && str(d.reason)) out.push({ label: "Reason", value: str(d.reason)! });
  if (alert.kind === "approval_decided" && str(d.decision_reason)) out.push({ label: "Decision note", value: str(d.decision_reason)! });
  return out;
}

function alertElements(alert: Alert): Element[] {
  const top = fitCount(alert.top, LIMITS.contributors);
  return present([
    text(md(clip(alert.title, LIMITS.title)), { size: "Medium", weight: "Bolder", ...(alert.kind === "blocked" ? { color: "Attention" } : {}) }),
    decisionLine(alert),
    text(md(alert.summary)),
    facts(alertFacts(alert)),
    alert.kind === "approval_requested" && str(alert.details.expires_at) ? text(`Expires ${when(str(alert.details.expires_at)!)}`, { isSubtle: true, spacing: "None" }) : undefined,
    alert.period ? text(`Period ends ${when(alert.period.end)}`, { isSubtle: true, spacing: "None" }) : undefined,
    alert.run_out_at ? text(`Runs out at this pace ${when(alert.run_out_at)}`, { isSubtle: true, spacing: "None" }) : undefined,
    top.shown.length > 0 ? text(`**Top ${md(top.shown[0]!.dimension)}s**`, { spacing: "Medium" }) : undefined,
    top.shown.length > 0
      ? { type: "FactSet", facts: [...top.shown.map((c) => ({ title: md(c.key), value: usd(c.spend_usd) ?? md(c.spend_usd) })), ...(top.more ? [{ title: "", value: andMore(top.more) }] : [])] }
      : undefined,
    alert.movers.length > 0 ? text(`**${md(moversHeading(alert.movers))}**`, { spacing: "Medium" }) : undefined,
    ...alert.movers.map((m) => text(md(`• ${moverText(m)}`), { spacing: "None" })),
    // Teams' own chart; a client without charts shows its text lines instead.
    alert.chart ? chartElement(alert.chart, { type: "Container", items: [text(`**${md(alert.chart.title)}**`), ...chartLines(alert.chart).map((l) => text(md(l), { spacing: "None" }))] }) : undefined,
    text(`Tollgate · ${md(alert.kind.replace(/_/g, " "))} · ${when(alert.at)}`, { isSubtle: true, size: "Small" }),
  ]);
}

/**
 * The alerts of one outbox message as one card. A pending approval carries `refresh`, so every
 * viewer's Teams asks for its current state and sees it decided as soon as it is; a message of
 * several alerts keeps only the first's buttons out of Teams' limits, the others in their own text.
 */
export function alertsCard(alerts: readonly Alert[], notice?: string): AdaptiveCard {
  const body: Element[] = notice ? [text(md(notice), { color: "Attention", weight: "Bolder" })] : [];
  alerts.forEach((alert, i) => body.push(...alertElements(alert).map((e, j) => (i > 0 && j === 0 ? { ...e, separator: true, spacing: "Large" } : e))));
  // A form's inputs are named once per card: a second raise or rejection form would clash with the first.
  const withForm = new Set<string>();
  const actions = alerts
    .flatMap((a) => a.actions)
    .filter((a) => !(a.action === "reject" || a.action === "request_raise") || (!withForm.has(a.action) && withForm.add(a.action)))
    .slice(0, 6)
    .map(action);
  const pending = alerts.find((a) => a.kind === "approval_requested" && str(a.details.approval_id));
  return card(body, actions, pending ? { type: "Action.Execute", verb: "refresh", title: "Refresh", data: { verb: "refresh", target: str(pending.details.approval_id)! } } : undefined);
}

/** The preview text of a card in notifications and the activity feed. */
export function summaryText(title: string): string {
  return clip(title, 200);
}
