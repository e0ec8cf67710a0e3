/**
 * What the dashboard's pages read, each figure through the same services as `/api/spend` and
 * chat (querySpend over the rollups, budget standings, recent alerts, approvals), narrowed to the
 * scope the person looks through.
 */
import type { Alert } from "../alerts/alert.ts";
import type { Approval } from "../approvals/requests.ts";
import type { Budget, Scope } from "../budgets/budget.ts";
import { forecastSpend } from "../budgets/forecast.ts";
import { spendForBudgets } from "../budgets/spend-batch.ts";
import type { Standing } from "../budgets/status.ts";
import type { Database } from "../db/connection.ts";
import type { Dimension } from "../ledger/event.ts";
import { type LocalDate, type Period, localDate, resolvePeriod } from "../ledger/period.ts";
import { OTHER_KEY, type SpendReport } from "../ledger/spend.ts";
import type { Services } from "../services.ts";
import { withinScope } from "./viewer.ts";

export interface ReadParts {
  database: Database;
  services: Services;
  timeZone: string;
}

/** A period of the command grammar in the organisation's zone; throws only on a name the grammar refuses, which callers check first. */
export function period(text: string, timeZone: string, now: Date): Period {
  const resolved = resolvePeriod(text, { now, timeZone });
  if (!resolved.ok) throw new Error(resolved.error.message);
  return resolved.period;
}

const pad = (n: number) => String(n).padStart(2, "0");
const dayText = (d: LocalDate) => `${d.year}-${pad(d.month)}-${pad(d.day)}`;

/** The local days of a period up to today (or its last day, for a finished period). */
export function daysOf(p: Period, now: Date): string[] {
  const last = localDate(new Date(Math.min(now.getTime(), p.end.getTime() - 1)), p.timeZone);
  const days: string[] = [];
  for (let d = { ...p.span.from }; days.length < 400; ) {
    days.push(dayText(d));
    if (d.year === last.year && d.month === last.month && d.day === last.day) break;
    const next = new Date(Date.UTC(d.year, d.month - 1, d.day + 1));
    d = { year: next.getUTCFullYear(), month: next.getUTCMonth() + 1, day: next.getUTCDate() };
  }
  return days;
}

export interface DailySeries {
  days: string[];
  /** The stacked series: the period's top groups and, when there are more, "other"; pico-USD per day. */
  series: { name: string; values: bigint[] }[];
}

/**
 * Spend per local day, stacked by the period's top groups of `by`: each day is one spend query
 * (the same as `/api/spend?period=DAY&by=…`), and whatever is not a top group goes to "other", so
 * each day's stack adds up to its total.
 */
export async function dailySpend(parts: ReadParts, p: Period, by: Dimension, top: string[], scope: Scope, now: Date): Promise<DailySeries> {
  const days = daysOf(p, now);
  const reports = await Promise.all(days.map((day) => parts.services.spend.report({ period: period(day, p.timeZone, now), by, filters: scope, top: 50, now })));
  const names = [...top, OTHER_KEY];
  const values = names.map(() => days.map(() => 0n));
  reports.forEach((r, day) => {
    for (const g of r.groups) {
      const i = top.indexOf(g.key);
      values[i >= 0 ? i : top.length]![day]! += g.cost;
    }
  });
  const series = names.map((name, i) => ({ name, values: values[i]! }));
  return { days, series: series.filter((s) => s.name !== OTHER_KEY || s.values.some((v) => v > 0n)) };
}

/** The budgets whose whole scope a person may see. */
export async function visibleBudgets(parts: ReadParts, scope: Scope): Promise<Budget[]> {
  return (await parts.services.budgets.list()).filter((b) => withinScope(b.scope, scope));
}

/**
 * Which alerts a person looking through `scope` may see: those of the budgets inside it (`visible`);
 * whoever sees all spend sees every alert, including those of no budget (digests) or of a budget since deleted.
 */
export function alertsVisible(visible: readonly Budget[], scope: Scope): (alert: { budget: { id: string } | null }) => boolean {
  if (Object.keys(scope).length === 0) return () => true;
  const ids = new Set(visible.map((b) => b.id));
  return (alert) => alert.budget !== null && ids.has(alert.budget.id);
}

export interface Overview {
  month: SpendReport;
  lastMonth: SpendReport;
  /** pico-USD projected at the month's end, null while it is too early to say. */
  forecast: bigint | null;
  models: SpendReport;
  features: SpendReport;
  daily: DailySeries;
  atRisk: Standing[];
  alerts: Alert[];
  pending: Approval[];
}

const AT_RISK = new Set(["warning", "over", "blocked"]);

export async function readOverview(parts: ReadParts, scope: Scope, now: Date): Promise<Overview> {
  const { services, timeZone } = parts;
  const month = period("this-month", timeZone, now);
  const spend = (text: string, by?: Dimension) => services.spend.report({ period: period(text, timeZone, now), by, filters: scope, top: 5, now });
  const [teams, lastMonth, models, features, budgets, recent, pending, forecast] = await Promise.all([
    spend("this-month", "team"),
    spend("last-month"),
    spend("this-month", "model"),
    spend("this-month", "feature"),
    visibleBudgets(parts, scope),
    services.alerts.recent(30),
    services.approvals.list({ status: "pending", limit: 50 }),
    monthForecast(parts.database, scope, timeZone, now),
  ]);
  const topTeams = teams.groups.filter((g) => g.key !== OTHER_KEY).slice(0, 4).map((g) => g.key);
  const daily = await dailySpend(parts, month, "team", topTeams, scope, now);
  const standings = await services.spend.standings(budgets, now);
  const visible = new Set(budgets.map((b) => b.id));
  return {
    month: teams,
    lastMonth,
    forecast,
    models,
    features,
    daily,
    atRisk: standings.filter((s) => AT_RISK.has(s.state)).sort((a, b) => b.percent - a.percent).slice(0, 10),
    alerts: recent.filter(alertsVisible(budgets, scope)).slice(0, 10),
    pending: pending.filter((a) => visible.has(a.budget_id)),
  };
}

/** The month's projection as budgets make it (forecast.ts): spend so far plus the recent run rate over the days left. */
async function monthForecast(database: Database, scope: Scope, timeZone: string, now: Date): Promise<bigint | null> {
  const asBudget: Budget = { id: "", name: "", scope, amount: 1n, period: "month", timezone: timeZone, thresholds: [], mode: "soft", paused: false, created_at: now, updated_at: now };
  const [read] = await spendForBudgets(database, [asBudget], now);
  return read ? forecastSpend({ period: read.period, now, spend: read.spend, recentSpend: read.recentSpend }) : null;
}
