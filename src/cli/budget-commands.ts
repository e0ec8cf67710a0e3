import { readFile } from "node:fs/promises";
import { type BudgetFields, BudgetsFile, type Plan, type PlannedChange, parseBudgetsSource } from "../budgets/apply.ts";
import { BudgetInput, describeScope } from "../budgets/budget.ts";
import type { BudgetJson } from "../budgets/budget-json.ts";
import type { BudgetStatus } from "../budgets/status.ts";
import { pathOf } from "../errors.ts";
import { type AdminClient, CliError } from "./admin-client.ts";
import type { Command, CommandContext } from "./commands.ts";
import { withClient } from "./connect.ts";
import { renderTable } from "./render.ts";

const out = (text: string) => process.stdout.write(`${text}\n`);
const str = (v: string | boolean | undefined) => (typeof v === "string" ? v : undefined);
const json = (value: unknown) => ({ type: "application/json", data: JSON.stringify(value) });
const at = (idOrName: string) => `/api/budgets/${encodeURIComponent(idOrName)}`;

/** The answer of POST /api/budgets/apply. */
export type ApplyAnswer = Plan & { dry_run: boolean; applied: boolean };

function showValue(field: string, value: unknown): string {
  if (field === "scope") return describeScope(value as BudgetFields["scope"]);
  if (field === "amount_usd") return `$${String(value)}`;
  if (Array.isArray(value)) return value.join(",");
  return String(value);
}

function renderChange(change: PlannedChange): string[] {
  if (change.action === "delete") return [`- delete ${change.name}`];
  if (change.action === "create")
    return [`+ create ${change.name}`, ...Object.entries(change.budget).map(([field, value]) => `    ${field}: ${showValue(field, value)}`)];
  return [`~ update ${change.name}`, ...change.fields.map((f) => `    ${f.field}: ${showValue(f.field, f.before)} → ${showValue(f.field, f.after)}`)];
}

/** The diff as people read it, then what became of it. */
export function renderPlan(answer: ApplyAnswer): string {
  const lines = answer.changes.flatMap(renderChange);
  if (answer.unchanged.length > 0) lines.push(`= ${answer.unchanged.length} unchanged: ${answer.unchanged.join(", ")}`);
  if (answer.left_alone.length > 0) lines.push(`  ${answer.left_alone.length} not declared, left alone (--prune deletes them): ${answer.left_alone.join(", ")}`);
  const n = answer.changes.length;
  if (n === 0) lines.push("no changes");
  else if (answer.dry_run) lines.push(`dry run: ${n} change${n === 1 ? "" : "s"} not applied`);
  else lines.push(`applied ${n} change${n === 1 ? "" : "s"}`);
  return lines.join("\n");
}

/** `team:search,model:gpt-4o` → a scope; `everything` → `{}`. */
export function scopeOption(text: string): Record<string, string> {
  if (text.trim() === "everything") return {};
  return Object.fromEntries(
    text.split(",").map((part) => {
      const [dim, ...value] = part.trim().split(":");
      if (!dim || value.join(":") === "") throw new CliError(`--scope: "${part}" is not DIM:VALUE; write team:search,model:gpt-4o or everything`);
      return [dim, value.join(":")];
    }),
  );
}

function thresholdsOption(text: string): number[] {
  const parts = text.split(",").map((t) => t.trim());
  if (parts.some((t) => !/^\d+$/.test(t))) throw new CliError("--thresholds: whole percentages separated by commas, such as 50,80,100");
  return parts.map(Number);
}

/** Where each field of a budget comes from on the command line, to name it in errors. */
const OPTION_OF: Record<string, string> = { name: "NAME", scope: "--scope", amount_usd: "--amount", period: "--period", timezone: "--tz", thresholds: "--thresholds", mode: "--mode" };

/** `budget set NAME --amount 500 --period month ...` → one budget entry, checked here so errors name the options. */
function budgetOfOptions(name: string, ctx: CommandContext): Record<string, unknown> {
  const { options } = ctx;
  const amount = str(options.amount);
  if (!amount || !str(options.period)) throw new CliError("budget set needs --amount and --period: tollgate budget set NAME --amount 500 --period month");
  const entry: Record<string, unknown> = { name, amount_usd: amount.replace(/^\$/, ""), period: str(options.period) };
  if (str(options.scope) !== undefined) entry.scope = scopeOption(str(options.scope)!);
  if (str(options.tz)) entry.timezone = str(options.tz);
  if (str(options.thresholds)) entry.thresholds = thresholdsOption(str(options.thresholds)!);
  if (str(options.mode)) entry.mode = str(options.mode);
  const parsed = BudgetInput.safeParse(entry);
  if (!parsed.success)
    throw new CliError(
      parsed.error.issues
        .map((i) => {
          const [field, ...rest] = i.path.map(String);
          return `${OPTION_OF[field ?? ""] ?? field}${rest.length > 0 ? ` ${rest.join(".")}` : ""}: ${i.message}`;
        })
        .join("\n"),
    );
  return entry;
}

/** A budget with where it stands now: its settings from GET /api/budgets, its spend and state from .../status. */
type BudgetRow = BudgetJson & { status: BudgetStatus };

const LIST_COLUMNS = ["name", "scope", "period", "mode", "spend_usd", "amount_usd", "used", "state", "forecast_usd"];
const row = ({ status, ...b }: BudgetRow) => ({
  ...b,
  scope: describeScope(b.scope),
  thresholds: b.thresholds.map((t) => `${t} %`).join(", "),
  spend_usd: status.spend_usd,
  remaining_usd: status.remaining_usd,
  used: `${status.percent} %`,
  state: status.state,
  forecast_usd: status.forecast_usd ?? "",
  current_period: `${status.period.label} (${status.period.start} to ${status.period.end})`,
  top: status.top.map((t) => `${t.dimension}:${t.key} $${t.spend_usd}`).join(", "),
});
const SHOW_FIELDS = ["id", "name", "scope", "state", "spend_usd", "amount_usd", "used", "remaining_usd", "forecast_usd", "current_period", "top", "period", "timezone", "thresholds", "mode", "paused", "created_at", "updated_at"];

/** The budgets' settings and, for each, its status (the figures chat and digests show). */
async function withStatus(c: AdminClient, budgets: BudgetJson[]): Promise<BudgetRow[]> {
  return Promise.all(budgets.map(async (b) => ({ ...b, status: await c.get<BudgetStatus>(`${at(b.id)}/status`) })));
}

/** Reads and checks a budgets file; its problems come back as `FILE:LINE: path: what was expected`. */
async function readBudgetsFile(file: string): Promise<{ budgets: unknown }> {
  const text = await readFile(file, "utf8").catch(() => {
    throw new CliError(`cannot read ${file}`);
  });
  const read = parseBudgetsSource(text);
  if (!read.ok) throw new CliError(`${file}: ${read.message}`);
  const checked = BudgetsFile.safeParse(read.source.value);
  if (!checked.success) {
    const lines = checked.error.issues
      .map((i) => ({ line: read.source.lineOf(i.path), issue: i }))
      .sort((a, b) => (a.line ?? 0) - (b.line ?? 0))
      .map(({ line, issue }) => `${file}${line ? `:${line}` : ""}: ${pathOf(issue.path) || "(the file)"}: ${issue.message}`);
    throw new CliError(`${file} has ${lines.length} error${lines.length === 1 ? "" : "s"}; nothing was applied\n${lines.join("\n")}`);
  }
  return read.source.value as { budgets: unknown };
}

/** `tollgate budget ...`, `tollgate apply FILE` and `tollgate audit`, through the admin API. */
export const budgetCommands: Record<string, Command> = {
  async budget(ctx) {
    const [action, name, ...extra] = ctx.args;
    if (action === "list" && !name) {
      const budgets = await withClient(ctx, async (c) => withStatus(c, (await c.get<{ budgets: BudgetJson[] }>("/api/budgets")).budgets));
      out(budgets.length > 0 ? renderTable(budgets.map(row), LIST_COLUMNS) : "no budgets yet; add one with tollgate budget set NAME --amount 500 --period month");
      return 0;
    }
    if (action === "show" && name && extra.length === 0) {
      const [budget] = await withClient(ctx, async (c) => withStatus(c, [await c.get<BudgetJson>(at(name))]));
      const shown = row(budget!) as Record<string, unknown>;
      out(SHOW_FIELDS.map((k) => `${k.padEnd(14)} ${String(shown[k] ?? "")}`).join("\n"));
      return 0;
    }
    if (action === "set" && name && extra.length === 0) {
      const entry = budgetOfOptions(name, ctx);
      const answer = await withClient(ctx, (c) => c.postJson<ApplyAnswer>("/api/budgets/apply", { budgets: [entry] }));
      out(renderPlan({ ...answer, left_alone: [] }));
      return 0;
    }
    if ((action === "pause" || action === "resume") && name && extra.length === 0) {
      const res = await withClient(ctx, (c) => c.request("PATCH", at(name), json({ paused: action === "pause" })));
      out(`${action === "pause" ? "paused" : "resumed"} ${(res.json() as BudgetJson).name}`);
      return 0;
    }
    if (action === "delete" && name && extra.length === 0) {
      const res = await withClient(ctx, (c) => c.request("DELETE", at(name)));
      out(`deleted ${(res.json() as BudgetJson).name}`);
      return 0;
    }
    throw new CliError(
      "use: tollgate budget list | show NAME | set NAME --amount 500 --period month [--scope team:search,model:gpt-4o] [--mode hard] [--tz ZONE] [--thresholds 50,80,100] | pause NAME | resume NAME | delete NAME",
    );
  },

  async apply(ctx) {
    const [file, ...extra] = ctx.args;
    if (!file || extra.length > 0) throw new CliError("use: tollgate apply FILE [--dry-run] [--prune]");
    const { budgets } = await readBudgetsFile(file);
    const body = { budgets, prune: ctx.options.prune === true, dry_run: ctx.options["dry-run"] === true };
    const answer = await withClient(ctx, (c) => c.postJson<ApplyAnswer>("/api/budgets/apply", body));
    out(renderPlan(answer));
    return 0;
  },

  async audit(ctx) {
    if (ctx.args.length > 0) throw new CliError("use: tollgate audit [--entity budget] [--limit 50]");
    const query = new URLSearchParams();
    for (const option of ["entity", "limit"]) if (str(ctx.options[option])) query.set(option, str(ctx.options[option])!);
    const { entries } = await withClient(ctx, (c) => c.get<{ entries: AuditJson[] }>(`/api/audit?${query}`));
    out(renderTable(entries.map((e) => ({ ...e, change: changeOf(e) })), ["id", "at", "actor", "action", "entity", "entity_id", "change"]));
    return 0;
  },
};

interface AuditJson {
  id: number;
  at: string;
  actor: string;
  action: string;
  entity: string;
  entity_id: string;
  before: unknown;
  after: unknown;
}

const short = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));

/** `amount_usd 500 → 700`: the fields an entry changed, or the name of what it created or removed. */
function changeOf(entry: AuditJson): string {
  const before = (entry.before ?? {}) as Record<string, unknown>;
  const after = (entry.after ?? {}) as Record<string, unknown>;
  if (entry.before && entry.after)
    return Object.keys(after)
      .filter((k) => k !== "updated_at" && JSON.stringify(before[k]) !== JSON.stringify(after[k]))
      .map((k) => `${k} ${short(before[k])} → ${short(after[k])}`)
      .join("; ");
  const named = entry.after ? after : before;
  return short(named.name ?? named.provider ?? "");
}
