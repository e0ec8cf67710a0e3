/**
 * The budget pages: one budget with its history (alerts fired, raises, changes), and the form that
 * creates or edits a budget. The form is read into the admin API's JSON shape and checked by the
 * same schema (BudgetInput), so a page refuses exactly what `/api/budgets` refuses, each error
 * shown at its field, with what was typed kept.
 */
import type { FiringInfo } from "../../alerts/firings.ts";
import type { Approval } from "../../approvals/requests.ts";
import type { AuditPage } from "../../audit/log.ts";
import { BUDGET_PERIODS, type Budget, BudgetInput, describeScope } from "../../budgets/budget.ts";
import { DIMENSIONS, type Dimension } from "../../ledger/event.ts";
import { decimalUsdToPico, picoToDecimalString } from "../../pricing/money.ts";
import type { Standing } from "../../budgets/status.ts";
import { type Html, type HtmlValue, html } from "../html.ts";
import { csrfForm, money, table, when } from "../layout.ts";
import { approvalsTable, budgetsTable } from "../pages.ts";

/** The form's fields as typed: text, so a refused form comes back as it was. */
export interface BudgetFormValues {
  name: string;
  amount_usd: string;
  period: string;
  timezone: string;
  thresholds: string;
  mode: string;
  scope: Partial<Record<Dimension, string>>;
}

/** Form field name → what is wrong with it; "" for the form as a whole. */
export type FieldErrors = Map<string, string>;

const LABELS: Record<string, string> = {
  name: "Name",
  amount_usd: "Amount (USD)",
  period: "Period",
  timezone: "Time zone",
  thresholds: "Alert thresholds (%)",
  mode: "Mode",
  ...Object.fromEntries(DIMENSIONS.map((d) => [d, `Scope: ${d}`])),
};

/** A new budget's starting values: a month, the organisation's zone, the API's default thresholds and mode. */
export function newBudgetValues(timeZone: string): BudgetFormValues {
  return { name: "", amount_usd: "", period: "month", timezone: timeZone, thresholds: "50, 80, 100", mode: "soft", scope: {} };
}

export function budgetValues(budget: Budget): BudgetFormValues {
  return {
    name: budget.name,
    amount_usd: picoToDecimalString(budget.amount),
    period: budget.period,
    timezone: budget.timezone,
    thresholds: budget.thresholds.join(", "),
    mode: budget.mode,
    scope: { ...budget.scope },
  };
}

/** The posted form's fields; anything missing or repeated reads as empty. */
export function postedValues(body: unknown): BudgetFormValues {
  const fields = (body ?? {}) as Record<string, unknown>;
  const text = (name: string) => (typeof fields[name] === "string" ? (fields[name] as string).trim().slice(0, 300) : "");
  return {
    name: text("name"),
    amount_usd: text("amount_usd"),
    period: text("period"),
    timezone: text("timezone"),
    thresholds: text("thresholds"),
    mode: text("mode"),
    scope: Object.fromEntries(DIMENSIONS.flatMap((d) => (text(d) ? [[d, text(d)]] : []))),
  };
}

/** "50, 80 100" → [50, 80, 100]; a word stays a word, for the schema to say what it should be. */
const thresholdList = (text: string) => text.split(/[\s,;%]+/).filter(Boolean).map((t) => (/^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t));

/**
 * The body the admin API would be sent for this form: an empty field is left out, so the schema
 * gives its default (time zone, thresholds, mode) or says it is required.
 */
export function budgetRequest(v: BudgetFormValues): Record<string, unknown> {
  const fields: [string, unknown][] = [
    ["name", v.name],
    ["scope", v.scope],
    ["amount_usd", v.amount_usd],
    ["period", v.period],
    ["timezone", v.timezone],
    ["thresholds", v.thresholds && thresholdList(v.thresholds)],
    ["mode", v.mode],
  ];
  return Object.fromEntries(fields.filter(([, value]) => value !== ""));
}

/** The schema's issues at the form's fields: `scope.team` is the team field, `thresholds[1]` names the value typed. */
export function formErrors(issues: readonly { path: readonly PropertyKey[]; message: string; code?: string }[], request: Record<string, unknown>): FieldErrors {
  const errors: FieldErrors = new Map();
  for (const issue of issues) {
    const [head, sub] = issue.path;
    const key = String(head ?? "");
    const field = key === "scope" && typeof sub === "string" ? sub : key in LABELS ? key : "";
    let message = request[key] === undefined && issue.code === "invalid_type" ? "required" : issue.message;
    if (key === "thresholds" && typeof sub === "number") message = `"${String((request.thresholds as unknown[])[sub])}": ${message}`;
    errors.set(field, errors.has(field) ? `${errors.get(field)}; ${message}` : message);
  }
  return errors;
}

function field(name: string, errors: FieldErrors, control: (attrs: Html) => Html, help?: HtmlValue): Html {
  const id = `budget-${name}`;
  const error = errors.get(name);
  const describedBy = [help ? `${id}-help` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ");
  const attrs = html` id="${id}" name="${name}"${describedBy ? html` aria-describedby="${describedBy}"` : ""}${error ? html` aria-invalid="true"` : ""}`;
  return html`<div class="field"><label for="${id}">${LABELS[name]}</label>${control(attrs)}${help ? html`<span id="${id}-help" class="muted">${help}</span>` : ""}${error ? html`<span id="${id}-error" class="field-error">${error}</span>` : ""}</div>`;
}

const input = (value: string, extra: Html = html``) => (attrs: Html) => html`<input${attrs} value="${value}"${extra}>`;
const select = (options: readonly { value: string; label: string }[], value: string) => (attrs: Html) =>
  html`<select${attrs}>${options.map((o) => html`<option value="${o.value}"${o.value === value ? html` selected` : ""}>${o.label}</option>`)}</select>`;

export interface BudgetFormProps {
  action: string;
  csrf: string;
  values: BudgetFormValues;
  errors: FieldErrors;
  submit: string;
}

/** The create or edit form: every field of the admin API's budget, errors at their fields and listed first. */
export function budgetForm({ action, csrf, values, errors, submit }: BudgetFormProps): Html {
  const summary =
    errors.size > 0
      ? html`<div class="error" role="alert"><p>The budget was not saved:</p><ul>${[...errors].map(([name, message]) =>
          name ? html`<li><a href="#budget-${name}">${LABELS[name]}</a>: ${message}</li>` : html`<li>${message}</li>`,
        )}</ul></div>`
      : "";
  return html`${summary}<form method="post" action="${action}" aria-label="Budget"><input type="hidden" name="_csrf" value="${csrf}">
<div class="fields">
${field("name", errors, input(values.name, html` required maxlength="200" autocomplete="off"`), "letters, digits, dot, dash and underscore")}
${field("amount_usd", errors, input(values.amount_usd, html` required inputmode="decimal"`), "exact decimal USD, such as 500 or 12.50")}
${field("period", errors, select(BUDGET_PERIODS.map((p) => ({ value: p, label: p })), values.period))}
${field("timezone", errors, input(values.timezone), "where the period starts, such as UTC or Europe/Berlin")}
${field("thresholds", errors, input(values.thresholds), "percentages of the amount that alert, such as 50, 80, 100")}
${field("mode", errors, select([{ value: "soft", label: "soft: alerts only" }, { value: "hard", label: "hard: alerts, and blocks proxied calls at 100 %" }], values.mode))}
</div>
<fieldset><legend>Scope: the spend it counts (all empty: all spend)</legend><div class="fields">
${DIMENSIONS.map((d) => field(d, errors, input(values.scope[d] ?? "")))}
</div></fieldset>
<p><button class="primary" type="submit">${submit}</button></p></form>`;
}

type Change = AuditPage["entries"][number];

/** What a change did, field by field in the budget's order: `amount_usd 100 → 150`. */
function changeText(c: Change): string {
  if (c.action !== "update") return c.action;
  const before = (c.before ?? {}) as Record<string, unknown>;
  const after = (c.after ?? {}) as Record<string, unknown>;
  const shown = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));
  const changed = Object.keys(BudgetInput.shape).filter((k) => shown(before[k]) !== shown(after[k]));
  return changed.map((k) => `${k} ${shown(before[k])} → ${shown(after[k])}`).join("; ") || "nothing";
}

export interface BudgetPageProps {
  budget: Budget;
  standing: Standing | undefined;
  firings: readonly FiringInfo[];
  raises: readonly Approval[];
  /** The budget's audit entries, for admins. */
  changes?: Change[];
  /** Edit and pause buttons, for admins. */
  manage?: { csrf: string };
  notice?: string;
}

export function budgetPage({ budget, standing, firings, raises, changes, manage, notice }: BudgetPageProps): Html {
  const at = `/budgets/${encodeURIComponent(budget.id)}`;
  return html`<h1>Budget ${budget.name}</h1>${notice ? html`<p class="notice" role="status">${notice}</p>` : ""}
<p>${describeScope(budget.scope)}, ${money(budget.amount)} a ${budget.period} (${budget.timezone}), ${budget.mode}${budget.paused ? ", paused" : ""}; alerts at ${budget.thresholds.join(", ")} %.</p>
${manage ? html`<p class="actions"><a href="${at}/edit">Edit ${budget.name}</a> ${csrfForm(`${at}/${budget.paused ? "resume" : "pause"}`, manage.csrf, html`<button type="submit">${budget.paused ? "Resume" : "Pause"} ${budget.name}</button>`)}</p>` : ""}
${standing ? budgetsTable([standing]) : ""}
<h2>Alerts fired</h2>
${table<FiringInfo>(
  "Firings",
  [
    { head: "When", cell: (f) => when(f.fired_at) },
    { head: "Kind", cell: (f) => (f.threshold === null ? f.kind : `${f.kind} ${f.threshold} %`) },
    { head: "Spent then", num: true, cell: (f) => moneyText(f.spend_usd) },
    { head: "Amount then", num: true, cell: (f) => moneyText(f.amount_usd) },
  ],
  firings,
  "none yet.",
)}
<h2>Raises</h2>${approvalsTable(raises, undefined)}
${changes ? html`<h2>Changes</h2>${table<Change>("Changes", [{ head: "When", cell: (c) => when(c.at) }, { head: "Who", cell: (c) => c.actor }, { head: "What", cell: changeText }], changes, "none.")}` : ""}`;
}

/** Exact decimal USD text (as the API stores it) shown as money. */
function moneyText(usd: string): Html {
  const pico = decimalUsdToPico(usd);
  return pico instanceof Error ? html`${usd}` : money(pico);
}
