import type { types } from "@slack/bolt";
import { bar, columns } from "../../commands/render-text.ts";
import type { Reply } from "../../commands/reply.ts";
import { andMore, clip, fitCount, fitLines } from "../../commands/truncate.ts";
import type { Alert } from "../../src/alerts/alert.ts";
import { moverText, moversHeading } from "../../src/alerts/trends.ts";
import { describeScope } from "../../src/budgets/budget.ts";
import { type Chart, chartLines, chartNumber } from "../../src/charts/chart.ts";
import { decimalUsdToPico, formatUsd } from "../../src/pricing/money.ts";

/*
 * Block Kit for Tollgate's replies and alerts: pure functions from the platform-neutral values to
 * the message Slack is sent. Every text that reaches mrkdwn is escaped here (`&`, `<`, `>`), and
 * marked verbatim so Slack links nothing on its own: a feature named `<!channel>` or `@here`
 * arrives as those characters, never as a ping or a link. Slack's limits are kept by cutting with
 * "…and N more" rather than having the whole message refused.
 */

/** Slack's chart block (https://docs.slack.dev/reference/block-kit/blocks/data-visualization-block); @slack/types has no type for it yet. */
export interface DataVisualizationBlock {
  type: "data_visualization";
  title: string;
  chart:
    | { type: "bar" | "line" | "area"; series: { name: string; data: { label: string; value: number }[] }[]; axis_config: { categories: string[]; x_label?: string; y_label?: string } }
    | { type: "pie"; segments: { label: string; value: number }[] };
}

export type Block = types.KnownBlock | DataVisualizationBlock;
type Button = types.Button;
type MrkdwnElement = types.MrkdwnElement;

/** What chat.postMessage, chat.update, an ack and a response_url take. */
export interface SlackMessage {
  /** The notification and screen-reader text; mrkdwn, escaped. */
  text: string;
  blocks: Block[];
}

/** Slack's documented Block Kit limits. */
export const LIMITS = {
  blocks: 50,
  /** A Home tab (or modal) view holds twice a message's blocks. */
  viewBlocks: 100,
  sectionText: 3000,
  fields: 10,
  fieldText: 2000,
  headerText: 150,
  buttonText: 75,
  buttonValue: 2000,
  actions: 25,
  contextElements: 10,
  /** The top-level text is allowed 40,000; a notification shows a line of it. */
  text: 3000,
  /** data_visualization: a title, axis labels, categories and series names; categories and series per chart; charts per message. */
  chartTitle: 50,
  chartLabel: 20,
  chartCategories: 20,
  chartSeries: 6,
  pieSegments: 6,
  chartsPerMessage: 2,
  /** data_table: rows after the header, and columns. */
  tableRows: 100,
  tableColumns: 20,
} as const;

/** The block types Slack's clients may not all draw yet: a message refused for them is sent again without them. */
export const NATIVE_BLOCKS: ReadonlySet<string> = new Set(["data_visualization", "data_table"]);

/** The prefix of every action_id and callback_id Tollgate puts in a message or modal. */
export const ACTION_PREFIX = "tollgate:";
export const RAISE_MODAL = `${ACTION_PREFIX}raise`;

/** Look-alikes for mrkdwn's formatting marks, which Slack has no escape for. */
const MARK_LOOKALIKE: Record<string, string> = { "*": "∗", _: "ˍ", "~": "∼" };
const wordChar = (c: string | undefined) => c !== undefined && /[\p{L}\p{N}]/u.test(c);

/**
 * Makes any text inert in mrkdwn: Slack's control sequences all start with `<`, and `&` starts an
 * entity. `*`, `_` and `~` format only at a word's edge (`*bold*`, `_italic_`, `~struck~`), so
 * there they become look-alikes; inside a word (`apr_3f9a`, `team_search`) they stay, so what is
 * shown can be typed back.
 */
export const escapeMrkdwn = (text: string): string =>
  entities(text).replace(/[*_~]/g, (mark, at: number, all: string) => (wordChar(all[at - 1]) && wordChar(all[at + 1]) ? mark : MARK_LOOKALIKE[mark]!));

/** `&`, `<` and `>` as entities: all a code block needs, as nothing formats inside one. */
const entities = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Inside a ``` block a backtick run would end the block early; a look-alike keeps the text readable. */
const codeSafe = (text: string) => entities(text).replace(/`/g, "ˋ");

export const mrkdwn = (text: string): MrkdwnElement => ({ type: "mrkdwn", text, verbatim: true });
export const plain = (text: string, max: number) => ({ type: "plain_text" as const, text: clip(text.trim() || " ", max), emoji: false });
export const section = (text: string): Block => ({ type: "section", text: mrkdwn(clip(text, LIMITS.sectionText)) });

/** `*label*\nvalue`, both escaped, cut to a field's length. */
const field = (label: string, value: string): MrkdwnElement => mrkdwn(clip(`*${escapeMrkdwn(label)}*\n${escapeMrkdwn(value)}`, LIMITS.fieldText));

/** Up to ten fields; the tenth says how many more there were. */
function fieldsSection(fields: MrkdwnElement[]): Block | undefined {
  if (fields.length === 0) return undefined;
  const { shown, more } = fitCount(fields, LIMITS.fields);
  return { type: "section", fields: more > 0 ? [...shown, mrkdwn(andMore(more))] : shown };
}

const BAR_WIDTH = 16;

/** The shared text bar, padded so the values after it line up. */
const paddedBar = (share: number) => {
  const drawn = bar(share, BAR_WIDTH);
  return drawn + " ".repeat(BAR_WIDTH - [...drawn].length);
};

function codeBlock(lines: string[]): Block {
  const fence = "```";
  return section(`${fence}\n${fitLines(lines.map(codeSafe), LIMITS.sectionText - 2 * (fence.length + 1))}\n${fence}`);
}

/** Buttons for the actions, each carrying its target; duplicates get distinct ids, as Slack requires within a block. */
function actionsBlock(actions: readonly Reply["actions"][number][]): Block | undefined {
  if (actions.length === 0) return undefined;
  const seen = new Map<string, number>();
  const buttons = actions.slice(0, LIMITS.actions).map((a): Button => {
    const n = seen.get(a.action) ?? 0;
    seen.set(a.action, n + 1);
    const button: Button = {
      type: "button",
      action_id: `${ACTION_PREFIX}${a.action}${n > 0 ? `:${n}` : ""}`,
      text: plain(a.label, LIMITS.buttonText),
      value: clip(a.target, LIMITS.buttonValue),
    };
    if (a.action === "approve" || a.action === "request_raise") button.style = "primary";
    if (a.action === "reject") {
      button.style = "danger";
      button.confirm = { title: plain("Reject this raise?", 100), text: plain("Everyone in the approvals channels sees who rejected it.", 300), confirm: plain("Reject", 30), deny: plain("Cancel", 30) };
    }
    if (a.action === "mute")
      button.confirm = { title: plain(`Mute for 24 hours?`, 100), text: plain(`No alerts about ${a.target} in this channel for 24 hours.`, 300), confirm: plain("Mute", 30), deny: plain("Cancel", 30) };
    return button;
  });
  return { type: "actions", elements: buttons };
}

/**
 * Plain text for the new blocks' strings (chart titles and labels, table cells), which are not
 * mrkdwn: entities would show as typed, so `<` and `>`, which start every Slack control sequence
 * (`<!channel>`, links), become look-alikes instead. No value can ping or link.
 */
export const inert = (text: string): string => text.replace(/</g, "‹").replace(/>/g, "›");

/** Labels cut to Slack's 20 characters, kept distinct (a chart's series refer to categories by label). */
function chartLabels(raw: readonly string[]): string[] {
  const seen = new Set<string>();
  return raw.map(inert).map((label) => {
    let cut = clip(label.trim() || "(blank)", LIMITS.chartLabel);
    for (let n = 2; seen.has(cut); n++) cut = `${clip(label, LIMITS.chartLabel - String(n).length - 1)} ${n}`;
    seen.add(cut);
    return cut;
  });
}

/**
 * A Chart as Slack's data_visualization block, within its limits: the first 20 categories and 6
 * series (pie: 6 segments, positive values only; stacked: grouped bars). Labels are plain text to Slack, never mrkdwn, so
 * they are given as they are; values are numbers, as Slack draws them (the exact figures are in the
 * text beside the chart).
 */
export function chartBlock(chart: Chart): DataVisualizationBlock {
  const title = clip(inert(chart.title), LIMITS.chartTitle);
  if (chart.kind === "pie" || chart.kind === "donut") {
    const series = chart.series[0]!;
    const slices = chart.categories.map((c, i) => ({ c, v: chartNumber(series.values[i]!) })).filter((x) => x.v > 0);
    const labels = chartLabels(slices.map((x) => x.c));
    return { type: "data_visualization", title, chart: { type: "pie", segments: slices.slice(0, LIMITS.pieSegments).map((x, i) => ({ label: labels[i]!, value: x.v })) } };
  }
  const categories = chartLabels(chart.categories.slice(0, LIMITS.chartCategories));
  const names = chartLabels(chart.series.slice(0, LIMITS.chartSeries).map((s) => s.name));
  return {
    type: "data_visualization",
    title,
    chart: {
      // Slack's bar chart has no stacking: a stacked chart is drawn as its bars side by side, the same values.
      type: chart.kind === "stacked" ? "bar" : chart.kind,
      series: chart.series.slice(0, LIMITS.chartSeries).map((s, i) => ({ name: names[i]!, data: categories.map((label, j) => ({ label, value: chartNumber(s.values[j]!) })) })),
      axis_config: { categories, ...(chart.unit === "usd" ? { y_label: "USD" } : {}) },
    },
  };
}

/** A table as Slack's data_table block (raw_text cells: plain text, never parsed), its first 100 rows. */
export function dataTableBlock(t: NonNullable<Reply["table"]>, caption: string): types.DataTableBlock {
  const cell = (text: string) => ({ type: "raw_text" as const, text: inert(text) || " " });
  const width = Math.min(t.columns.length, LIMITS.tableColumns);
  const rows = t.rows.slice(0, LIMITS.tableRows).map((row) => Array.from({ length: width }, (_, i) => cell(row[i] ?? "")));
  return { type: "data_table", caption: clip(inert(caption), LIMITS.sectionText), rows: [t.columns.slice(0, width).map(cell), ...rows], page_size: Math.min(10, Math.max(1, rows.length)) };
}

/** Whether to draw charts (and the table beside them) with Slack's own blocks, or as text: the fallback when Slack refuses them. */
export interface RenderOptions {
  native?: boolean;
}

const notification = (title: string, summary: string | undefined) => clip(escapeMrkdwn(summary ? `${title}: ${summary}` : title), LIMITS.text);

/** A command's answer as Block Kit: its charts and table as Slack's own blocks unless `native` is false. */
export function replyMessage(reply: Reply, options: RenderOptions = {}): SlackMessage {
  // The text is the notification, and what screen readers and clients without charts read.
  const native = options.native ?? true;
  const charts = native ? reply.charts.slice(0, LIMITS.chartsPerMessage) : [];
  const blocks: (Block | undefined)[] = [
    reply.error ? section(`:warning: *${escapeMrkdwn(reply.title)}*`) : { type: "header", text: plain(reply.title, LIMITS.headerText) },
    reply.summary ? section(escapeMrkdwn(reply.summary)) : undefined,
    fieldsSection(reply.facts.map((f) => field(f.label, f.value))),
  ];
  if (reply.bars && reply.bars.rows.length > 0) {
    // Beside a chart the bars are figures only: the chart draws them.
    const lines = charts.length > 0 ? reply.bars.rows.map((r) => `${escapeMrkdwn(r.label)}: ${escapeMrkdwn(r.value)}`) : reply.bars.rows.map((r) => `\`${paddedBar(r.share)}\`  ${escapeMrkdwn(r.value)}  ${escapeMrkdwn(r.label)}`);
    const heading = `*${escapeMrkdwn(reply.bars.heading)}*\n`;
    if (charts.length > 0) blocks.push(...charts.map(chartBlock));
    blocks.push(section(heading + fitLines(lines, LIMITS.sectionText - heading.length)));
  } else blocks.push(...charts.map(chartBlock));
  // A table beside a chart (the budgets of a spend answer) is Slack's own too; others stay text.
  if (reply.table) blocks.push(charts.length > 0 ? dataTableBlock(reply.table, reply.title) : codeBlock(columns([reply.table.columns, ...reply.table.rows])));
  if (reply.notes.length > 0) {
    const { shown, more } = fitCount(reply.notes, LIMITS.contextElements);
    blocks.push({ type: "context", elements: [...shown.map((n) => mrkdwn(clip(escapeMrkdwn(n), LIMITS.sectionText))), ...(more > 0 ? [mrkdwn(andMore(more))] : [])] });
  }
  blocks.push(actionsBlock(reply.actions));
  // At most nine blocks: a reply never meets the 50-block limit.
  return { text: notification(reply.title, reply.summary), blocks: blocks.filter((b): b is Block => b !== undefined) };
}

/** Exact decimal USD from an alert, for display; the text as given when it is not a number. */
function usd(text: string | null): string | undefined {
  if (text === null) return undefined;
  const pico = decimalUsdToPico(text);
  return pico instanceof Error ? text : formatUsd(pico);
}

/**
 * A Slack user named in an alert (`slack:U0123ABCD`) becomes a mention; anyone else is their name
 * as text. Only these fields are read this way, never titles or usage values, so no name can ping.
 */
/** A Slack user as a mention (Slack shows each reader their current name); anyone else by the name Tollgate has for them. */
function person(actor: unknown, name: unknown): string {
  if (typeof actor !== "string") return "someone";
  const slackUser = /^slack:([UW][A-Z0-9]{2,})$/.exec(actor);
  return slackUser ? `<@${slackUser[1]}>` : escapeMrkdwn(typeof name === "string" ? name : actor);
}

/** A time every reader sees in their own zone; the ISO text is the fallback for old clients. */
export function when(iso: string, format = "{date_short_pretty} at {time}"): string {
  const seconds = Math.floor(Date.parse(iso) / 1000);
  return Number.isNaN(seconds) ? escapeMrkdwn(iso) : `<!date^${seconds}^${format}|${escapeMrkdwn(iso)}>`;
}

const str = (v: unknown) => (typeof v === "string" ? v : undefined);

/** The line an approval's outcome is read by: "Approved by @ana at 14:02: $500.00 → $800.00". */
function decisionLine(alert: Alert): string | undefined {
  const d = alert.details;
  const status = str(d.status);
  if (alert.kind !== "approval_decided" || !status) return undefined;
  const change = `${usd(str(d.from_usd) ?? null) ?? "?"} → ${usd(str(d.to_usd) ?? null) ?? "?"}`;
  if (status === "expired") return `:hourglass: *Expired* without a decision: ${change}`;
  const icon = status === "approved" ? ":white_check_mark:" : ":x:";
  const verb = status === "approved" ? "Approved" : "Rejected";
  return `${icon} *${verb}* by ${person(d.decided_by, d.decided_by_name)} at ${when(alert.at, "{time}")}: ${change}`;
}

function alertFields(alert: Alert): MrkdwnElement[] {
  const out: MrkdwnElement[] = [];
  const spend = usd(alert.spend_usd);
  const amount = usd(alert.amount_usd);
  if (spend && amount) out.push(field("Spent", `${spend} of ${amount}${alert.percent !== null ? ` (${alert.percent} %)` : ""}`));
  else if (amount) out.push(field("Amount", amount));
  const forecast = usd(alert.forecast_usd);
  if (forecast) out.push(field("Forecast", forecast));
  if (alert.budget) {
    out.push(field("Budget", `${alert.budget.name} (${alert.budget.mode}, per ${alert.budget.period})`));
    out.push(field("Scope", describeScope(alert.budget.scope)));
  }
  if (alert.period) out.push(mrkdwn(`*Period ends*\n${when(alert.period.end)}`));
  if (alert.run_out_at) out.push(mrkdwn(`*Runs out at this pace*\n${when(alert.run_out_at)}`));
  const d = alert.details;
  if (alert.kind === "approval_requested" || alert.kind === "approval_decided") {
    out.push(mrkdwn(`*Requested by*\n${person(d.requested_by, d.requested_by_name)}`));
    const reason = str(d.reason);
    if (reason) out.push(field("Reason", reason));
    if (str(d.approval_id)) out.push(field("Request", str(d.approval_id)!));
  }
  return out;
}

function contributorsSection(alert: Alert): Block | undefined {
  if (alert.top.length === 0) return undefined;
  const dimension = alert.top[0]!.dimension;
  const heading = `*Top ${escapeMrkdwn(dimension)}s*\n`;
  const lines = alert.top.map((c) => `• ${escapeMrkdwn(c.key)}: ${usd(c.spend_usd)}`);
  return section(heading + fitLines(lines, LIMITS.sectionText - heading.length));
}

function moversSection(alert: Alert): Block | undefined {
  if (alert.movers.length === 0) return undefined;
  const heading = `*${escapeMrkdwn(moversHeading(alert.movers))}*\n`;
  return section(heading + fitLines(alert.movers.map((m) => `• ${escapeMrkdwn(moverText(m))}`), LIMITS.sectionText - heading.length));
}

/** A chart as text (its title, then a line per category): where Slack's own block is not drawn. */
function chartText(chart: Chart): Block {
  const fence = "```";
  const heading = `*${escapeMrkdwn(chart.title)}*\n${fence}\n`;
  return section(`${heading}${fitLines(chartLines(chart).map(codeSafe), LIMITS.sectionText - heading.length - fence.length - 1)}\n${fence}`);
}

/** One alert whole (heading, what happened, facts, buttons); its chart as Slack's own block when `nativeChart`, else as text. */
export function alertBlocks(alert: Alert, nativeChart: boolean): Block[] {
  const decision = decisionLine(alert);
  const blocks: (Block | undefined)[] = [
    { type: "header", text: plain(alert.title, LIMITS.headerText) },
    decision ? section(decision) : undefined,
    section(escapeMrkdwn(alert.summary)),
    fieldsSection(alertFields(alert)),
    contributorsSection(alert),
    moversSection(alert),
    alert.chart ? (nativeChart ? chartBlock(alert.chart) : chartText(alert.chart)) : undefined,
    { type: "context", elements: [mrkdwn(`Tollgate · ${escapeMrkdwn(alert.kind.replace(/_/g, " "))} · ${when(alert.at)}`)] },
    actionsBlock(alert.actions),
  ];
  return blocks.filter((b): b is Block => b !== undefined);
}

/**
 * The alerts of one outbox message as Block Kit: each alert whole, divided from the next, as many
 * as fit in 50 blocks; the rest are named in a last line ("…and 3 more: …"). The first two charts
 * are Slack's own blocks (its limit a message) unless `native` is false; the others are text.
 */
export function alertsMessage(alerts: readonly Alert[], options: RenderOptions = {}): SlackMessage {
  const blocks: Block[] = [];
  let shown = 0;
  let charts = 0;
  for (const alert of alerts) {
    const native = (options.native ?? true) && charts < LIMITS.chartsPerMessage;
    const next = [...(shown > 0 ? [{ type: "divider" } as Block] : []), ...alertBlocks(alert, native)];
    const room = LIMITS.blocks - (shown + 1 < alerts.length ? 1 : 0);
    if (blocks.length + next.length > room) break;
    blocks.push(...next);
    if (native && alert.chart) charts++;
    shown++;
  }
  const left = alerts.slice(shown);
  if (left.length > 0) {
    const names = fitLines(left.map((a) => escapeMrkdwn(a.title)), LIMITS.sectionText - 40, "; ");
    blocks.push({ type: "context", elements: [mrkdwn(clip(`${andMore(left.length)}: ${names}`, LIMITS.sectionText))] });
  }
  const first = alerts[0];
  const text = first ? notification(alerts.length > 1 ? `${first.title} (and ${alerts.length - 1} more)` : first.title, first.summary) : "";
  return { text, blocks };
}

/** The form "Request raise" opens: the new amount and why. `metadata` comes back with the submission. */
export function raiseModal(budget: string, metadata: string): types.ModalView {
  return {
    type: "modal",
    callback_id: RAISE_MODAL,
    private_metadata: metadata,
    title: plain("Request a raise", 24),
    submit: plain("Request", 24),
    close: plain("Cancel", 24),
    blocks: [
      section(`Ask the approvers to raise *${escapeMrkdwn(budget)}*.`),
      {
        type: "input",
        block_id: "amount",
        label: plain("New amount in USD", 2000),
        hint: plain("The whole new amount, such as 800 or $1,200.", 2000),
        element: { type: "plain_text_input", action_id: "value", placeholder: plain("800", 150), max_length: 30 },
      },
      {
        type: "input",
        block_id: "reason",
        label: plain("Why is it needed?", 2000),
        element: { type: "plain_text_input", action_id: "value", multiline: true, max_length: 1000, placeholder: plain("Launch week: traffic doubles until Friday.", 150) },
      },
    ],
  };
}
