import { BUTTON_MUTE } from "../../commands/actions.ts";
import { bar, columns } from "../../commands/render-text.ts";
import type { Reply } from "../../commands/reply.ts";
import { andMore, clip, fitLines } from "../../commands/truncate.ts";
import type { Alert } from "../../src/alerts/alert.ts";
import { moverText, moversHeading } from "../../src/alerts/trends.ts";
import { describeScope } from "../../src/budgets/budget.ts";
import { chartLines } from "../../src/charts/chart.ts";
import { decimalUsdToPico, formatUsd } from "../../src/pricing/money.ts";

/*
 * Telegram HTML for Tollgate's replies and alerts: pure functions from the platform-neutral values
 * to the text and keyboard sendMessage takes. Every value is escaped here (`&`, `<`, `>`), so a
 * feature named `<b>` arrives as those characters; nothing is ever cut inside an entity or a tag.
 * A message stays within Telegram's 4,096 characters: tables and lists lose their last rows to
 * "…and N more" rather than the message being refused. Lengths are measured on the HTML, which is
 * never shorter than the text Telegram counts after parsing it.
 */

/** Telegram's documented limits. */
export const LIMITS = {
  /** sendMessage `text`, after entities parsing. */
  message: 4096,
  /** An inline button's `callback_data`, in bytes. */
  callbackData: 64,
  /** answerCallbackQuery `text`. */
  callbackAnswer: 200,
} as const;

/** Shares of a message each part may take, so one long part cannot crowd out the others. */
const ROOM = { title: 256, summary: 1000, facts: 900, notes: 500, line: 300 } as const;

/** Bars in a chat are read on phones: narrower than the CLI's. */
const BAR_WIDTH = 12;

export const escapeHtml = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** `text` escaped in at most `max` characters of HTML: cut before escaping, so no entity is ever split. */
export function escapeClipped(text: string, max: number): string {
  let escaped = escapeHtml(text);
  let keep = text.length;
  while (escaped.length > max && keep > 0) {
    keep = Math.max(0, keep - Math.max(1, Math.ceil((escaped.length - max) / 5)));
    escaped = escapeHtml(clip(text, keep));
  }
  return escaped;
}

/** An inline keyboard button that calls back; `data` is at most 64 bytes. */
export interface CallbackButton {
  text: string;
  callback_data: string;
}

export interface TelegramMessage {
  /** HTML, for parse_mode "HTML". */
  html: string;
  /** Rows of buttons, for `reply_markup.inline_keyboard`; empty when there are none. */
  keyboard: CallbackButton[][];
}

type Action = Reply["actions"][number];

/** One letter per action in callback_data, leaving the 64 bytes to the target. */
const CODES: Record<Action["action"], string> = { mute: "m", request_raise: "r", breakdown: "b", approve: "a", reject: "x" };
const ACTIONS_BY_CODE = new Map(Object.entries(CODES).map(([action, code]) => [code, action as Action["action"]]));

/** `m:<target>`; undefined when it would not fit in 64 bytes (the button is then left out). */
export function callbackData(action: Action["action"], target: string): string | undefined {
  const data = `${CODES[action]}:${target}`;
  return Buffer.byteLength(data, "utf8") <= LIMITS.callbackData ? data : undefined;
}

/** What a press stands for; undefined for data Tollgate never made. */
export function parseCallbackData(data: string): { action: Action["action"]; target: string } | undefined {
  const action = ACTIONS_BY_CODE.get(data.slice(0, data.indexOf(":")));
  const target = data.slice(data.indexOf(":") + 1);
  return action && target ? { action, target } : undefined;
}

const MUTE_TEXT = `${BUTTON_MUTE.ms / 3_600_000} h`;

/** A button's words: a mute says for how long, since pressing it acts at once. */
const buttonText = (a: Action) => (a.action === "mute" ? `${a.label} ${MUTE_TEXT}` : a.label);

/**
 * Buttons for actions, three to a row. `target` says what goes in the callback data: budgets by
 * id, which fit in 64 bytes where a long budget name would not. A button whose data would not fit
 * is left out rather than the message refused.
 */
export function keyboard(actions: readonly Action[], target: (a: Action) => string = (a) => a.target): CallbackButton[][] {
  const buttons = actions.flatMap((a) => {
    const data = callbackData(a.action, target(a));
    return data ? [{ text: clip(buttonText(a), 64), callback_data: data }] : [];
  });
  const rows: CallbackButton[][] = [];
  for (let i = 0; i < buttons.length; i += 3) rows.push(buttons.slice(i, i + 3));
  return rows;
}

const bold = (text: string, max: number = ROOM.title) => `<b>${escapeClipped(text, max)}</b>`;

/**
 * As many whole lines of HTML as fit in `max`, then "…and N more"; undefined when not even the
 * first fits with that note, since cutting HTML could split a tag or an entity.
 */
function fitWhole(lines: readonly string[], max: number): string | undefined {
  const first = lines[0];
  if (first === undefined) return undefined;
  const note = lines.length > 1 ? 1 + andMore(lines.length).length : 0;
  return first.length + note <= max || lines.join("\n").length <= max ? fitLines(lines, max) : undefined;
}

/** Parts of a message in order: fixed ones first take what they need (within their share), then `flexible` ones share the rest. */
interface Part {
  /** The part's HTML for at most `room` characters; undefined when it has nothing to say. */
  render(room: number): string | undefined;
  flexible?: boolean;
}

const SEPARATOR = "\n\n";

function assemble(parts: readonly Part[], max: number = LIMITS.message): string {
  const fixed = new Map<Part, string>();
  let used = 0;
  for (const part of parts.filter((p) => !p.flexible)) {
    const html = part.render(Math.max(0, max - used - SEPARATOR.length));
    if (html === undefined || html === "") continue;
    fixed.set(part, html);
    used += html.length + SEPARATOR.length;
  }
  const flexible = parts.filter((p) => p.flexible);
  const each = Math.floor((max - used) / Math.max(1, flexible.length)) - SEPARATOR.length;
  const out: string[] = [];
  for (const part of parts) {
    const html = part.flexible ? (each > 0 ? part.render(each) : undefined) : fixed.get(part);
    if (html) out.push(html);
  }
  return out.join(SEPARATOR);
}

/** A table in `<pre>`: columns aligned before escaping (an entity shows as one character), rows cut to fit. */
function tablePart(rows: string[][], heading?: string): Part {
  return {
    flexible: true,
    render(room) {
      if (rows.length === 0) return undefined;
      const head = heading ? `${bold(heading)}\n` : "";
      const wrap = head.length + "<pre></pre>".length;
      if (room <= wrap) return undefined;
      const body = fitWhole(
        columns(rows).map((l) => escapeClipped(l, ROOM.line)),
        room - wrap,
      );
      return body && `${head}<pre>${body}</pre>`;
    },
  };
}

/** Text escaped within its share of the room; `style` wraps it in tags, whose length is counted too. */
const textPart = (text: string | undefined, share: number, style: (html: string) => string = (h) => h): Part => ({
  render: (room) => (text ? style(escapeClipped(text, Math.min(share, room) - style("").length)) : undefined),
});

/** Lines of HTML, each already within `ROOM.line`, as many as fit in their share of the room. */
const linesPart = (lines: string[], share: number): Part => ({
  render: (room) => fitWhole(lines, Math.min(share, room)),
});

/** A command's answer as Telegram HTML. `target` maps a button's target to its callback data (budget names to ids). */
export function replyMessage(reply: Reply, target?: (a: Action) => string): TelegramMessage {
  const facts = reply.facts.map((f) => `${bold(`${f.label}:`, 100)} ${escapeClipped(f.value, ROOM.line)}`);
  const html = assemble([
    { render: () => (reply.error ? `⚠️ ${bold(reply.title)}` : bold(reply.title)) },
    textPart(reply.summary, ROOM.summary),
    linesPart(facts, ROOM.facts),
    reply.bars ? tablePart(reply.bars.rows.map((r) => [r.label, r.value, bar(r.share, BAR_WIDTH)]), reply.bars.heading) : { render: () => undefined },
    reply.table ? tablePart([reply.table.columns, ...reply.table.rows]) : { render: () => undefined },
    linesPart(reply.notes.map((n) => `<i>${escapeClipped(n, ROOM.line)}</i>`), ROOM.notes),
  ]);
  return { html, keyboard: keyboard(reply.actions, target) };
}

/** Exact decimal USD from an alert, for display; the text as given when it is not a number. */
function usd(text: string | null): string | undefined {
  if (text === null) return undefined;
  const pico = decimalUsdToPico(text);
  return pico instanceof Error ? text : formatUsd(pico);
}

const str = (v: unknown) => (typeof v === "string" ? v : undefined);

const ICONS: Partial<Record<Alert["kind"], string>> = {
  threshold: "🟠",
  forecast: "📈",
  anomaly: "⚡",
  blocked: "⛔",
  recovered: "✅",
  approval_requested: "🙋",
  digest_daily: "📊",
  digest_weekly: "📊",
};

/** "Approved by Ana Diaz: $500.00 → $800.00", for a decided raise. */
function decisionLine(alert: Alert): string | undefined {
  const d = alert.details;
  const status = str(d.status);
  if (alert.kind !== "approval_decided" || !status) return undefined;
  const change = `${usd(str(d.from_usd) ?? null) ?? "?"} → ${usd(str(d.to_usd) ?? null) ?? "?"}`;
  if (status === "expired") return `⌛ Expired without a decision: ${change}`;
  return `${status === "approved" ? "✅ Approved" : "❌ Rejected"} by ${str(d.decided_by_name) ?? str(d.decided_by) ?? "someone"}: ${change}`;
}

/** The facts of an alert as `label value` pairs, unescaped. */
function alertFacts(alert: Alert): [string, string][] {
  const out: [string, string][] = [];
  const spend = usd(alert.spend_usd);
  const amount = usd(alert.amount_usd);
  if (spend && amount) out.push(["Spent", `${spend} of ${amount}${alert.percent !== null ? ` (${alert.percent} %)` : ""}`]);
  else if (amount) out.push(["Amount", amount]);
  const forecast = usd(alert.forecast_usd);
  if (forecast) out.push(["Forecast", forecast]);
  if (alert.budget) {
    out.push(["Budget", `${alert.budget.name} (${alert.budget.mode}, per ${alert.budget.period})`]);
    out.push(["Scope", describeScope(alert.budget.scope)]);
  }
  if (alert.period) out.push(["Period ends", `${alert.period.end.slice(0, 16).replace("T", " ")} UTC`]);
  if (alert.run_out_at) out.push(["Runs out at this pace", `${alert.run_out_at.slice(0, 16).replace("T", " ")} UTC`]);
  const d = alert.details;
  if (alert.kind === "approval_requested" || alert.kind === "approval_decided") {
    out.push(["Requested by", str(d.requested_by_name) ?? str(d.requested_by) ?? "someone"]);
    if (str(d.reason)) out.push(["Reason", str(d.reason)!]);
    if (str(d.approval_id)) out.push(["Request", str(d.approval_id)!]);
  }
  return out;
}

/**
 * One alert in at most `room` characters: headline, what happened, the facts, the top contributors
 * and movers, and its chart as text unless `photo` (the chart is sent as a picture beside it).
 */
function alertHtml(alert: Alert, room: number, photo: boolean): string {
  const icon = ICONS[alert.kind];
  const decision = decisionLine(alert);
  const top = alert.top.map((c) => [c.key, usd(c.spend_usd) ?? c.spend_usd]);
  return assemble(
    [
      { render: () => `${icon ? `${icon} ` : ""}${bold(alert.title)}` },
      textPart(decision, ROOM.line),
      textPart(alert.summary, ROOM.summary),
      linesPart(alertFacts(alert).map(([label, value]) => `${bold(`${label}:`, 100)} ${escapeClipped(value, ROOM.line)}`), ROOM.facts),
      tablePart(top, alert.top[0] ? `Top ${alert.top[0].dimension}s` : undefined),
      alert.movers.length > 0 ? linesPart([bold(moversHeading(alert.movers)), ...alert.movers.map((m) => `• ${escapeClipped(moverText(m), ROOM.line)}`)], ROOM.facts) : { render: () => undefined },
      alert.chart && !photo ? tablePart(chartLines(alert.chart).map((l) => [l]), alert.chart.title) : { render: () => undefined },
      textPart(`Tollgate · ${alert.kind.replace(/_/g, " ")} · ${alert.at.slice(0, 16).replace("T", " ")} UTC`, ROOM.line, (h) => `<i>${h}</i>`),
    ],
    room,
  );
}

/**
 * Callback data names a budget by its id: a budget name may be longer than 64 bytes allow, an id
 * never is. Approvals are named by their own short ids.
 */
const alertTarget = (alert: Alert) => (a: Action) => (alert.budget && a.target === alert.budget.name ? alert.budget.id : a.target);

/**
 * The alerts of one outbox message as one Telegram message: each alert in turn, as many as fit,
 * then "…and N more". Buttons: one alert's own ("Mute 24 h", "Request a raise", "Breakdown");
 * with several, each alert's row names its budget. The charts of the alerts in `photographed`
 * go as photos beside the message; the others' are written out as text.
 */
export function alertsMessage(alerts: readonly Alert[], photographed: ReadonlySet<Alert> = new Set()): TelegramMessage {
  const parts: string[] = [];
  let used = 0;
  let shown = 0;
  const divider = "\n\n— — —\n\n";
  for (const alert of alerts) {
    const reserve = shown + 1 < alerts.length ? divider.length + andMore(alerts.length).length : 0;
    const room = LIMITS.message - used - (shown > 0 ? divider.length : 0) - reserve;
    // Later alerts get what is left; the first always shows, however long.
    if (shown > 0 && room < 400) break;
    const html = alertHtml(alert, room, photographed.has(alert));
    parts.push(html);
    used += html.length + (shown > 0 ? divider.length : 0);
    shown++;
  }
  const more = alerts.length - shown;
  const html = parts.join(divider) + (more > 0 ? `${divider}<i>${andMore(more)}</i>` : "");
  const single = alerts.length === 1;
  const rows = alerts.slice(0, shown).flatMap((alert) => {
    const named = single ? alert.actions : alert.actions.map((a) => ({ ...a, label: `${a.label}: ${alert.budget?.name ?? a.target}` }));
    return keyboard(named, alertTarget(alert));
  });
  return { html, keyboard: rows };
}

/** The question "Request raise" asks, as a reply to it (ForceReply). `mention` links the person asked, so only their reply box opens. */
export function raiseQuestion(budget: string, person: { id: number; name: string }): string {
  return (
    `<a href="tg://user?id=${person.id}">${escapeClipped(person.name, 64)}</a>, reply to this message with the new amount for ${bold(budget)} and why, ` +
    `such as <code>800 launch week doubles traffic</code>.`
  );
}
