/**
 * Daily and weekly digests: for each channel subscribed to them, the spend of the day (or week)
 * before in each of the channel's scopes, against the one before it, with the top contributors, the
 * top movers (largest increases against the one before), a chart of the daily spend of the last
 * 7 days against the 7 before (trends.ts) and the state of the budgets within the scope.
 *
 * They go out at TOLLGATE_DIGEST_HOUR (09:00 by default) in each channel's own time zone, weekly
 * ones on Mondays. The job runs every hour and sends to the channels whose local time is then in
 * that hour, so half-hour zones are served as well. An alert's id is the channel, the kind, the
 * local date and the scope, and the outbox keeps one row per id: a second run in the same hour,
 * or a second gateway process, sends nothing more.
 */
import { and, isNull, sql } from "drizzle-orm";
import { type Scope, describeScope, scopeMatches } from "../budgets/budget.ts";
import { type Contributor, contributorDimension, contributorsOf } from "../budgets/contributors.ts";
import { spendForBudgets } from "../budgets/spend-batch.ts";
import { BUDGET_STATES, type BudgetStatus, statusOf } from "../budgets/status.ts";
import { budgetOf } from "../budgets/store.ts";
import type { Database } from "../db/connection.ts";
import { budgets, channels } from "../db/schema.ts";
import { type Period, resolvePeriod } from "../ledger/period.ts";
import { type SpendReport, querySpend } from "../ledger/spend.ts";
import { changeText, formatUsd, picoToDecimalString } from "../pricing/money.ts";
import type { Chart } from "../charts/chart.ts";
import type { Alert, Mover } from "./alert.ts";
import type { Notifier } from "./notifier.ts";
import { digestTrend } from "./trends.ts";

export type DigestKind = "digest_daily" | "digest_weekly";

/** Local date and hour at `now` in a zone: what decides whether a digest is due. */
export interface LocalClock {
  /** YYYY-MM-DD */
  date: string;
  hour: number;
  /** ISO weekday: Monday 1 … Sunday 7. */
  weekday: number;
}

const clocks = new Map<string, Intl.DateTimeFormat>();
const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

export function localClock(now: Date, timeZone: string): LocalClock {
  let f = clocks.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", hourCycle: "h23", weekday: "short" });
    clocks.set(timeZone, f);
  }
  const part = Object.fromEntries(f.formatToParts(now).map((p) => [p.type, p.value]));
  return { date: `${part.year}-${part.month}-${part.day}`, hour: Number(part.hour), weekday: WEEKDAYS.indexOf(part.weekday ?? "") + 1 };
}

/** Whether a digest of this kind is due at `now` for a channel in `timeZone`, sent at `hour` local time. */
export function digestDue(kind: DigestKind, now: Date, timeZone: string, hour: number): boolean {
  const clock = localClock(now, timeZone);
  return clock.hour === hour && (kind === "digest_daily" || clock.weekday === 1);
}

const ORDER = new Map<string, number>([["blocked", 0], ["over", 1], ["warning", 2], ["ok", 3], ["paused", 4]]);
/** Budgets listed by name in a digest; the rest are only counted. */
const LISTED_BUDGETS = 10;

export interface DigestFacts {
  kind: DigestKind;
  channelId: string;
  scope: Scope;
  /** The local date the digest is sent on. */
  date: string;
  report: SpendReport;
  top: Contributor[];
  /** Largest increases against the period before. */
  movers: Mover[];
  /** Daily spend of the last 7 days against the 7 before; null when there was none. */
  chart: Chart | null;
  /** Budgets within the scope, as they stand now. */
  budgets: BudgetStatus[];
  now: Date;
}

export function digestAlert(facts: DigestFacts): Alert {
  const { kind, channelId, scope, date, report, top, movers, chart, now } = facts;
  const what = describeScope(scope);
  const [spent, before] = [report.total.cost, report.previous.cost];
  const unit = kind === "digest_daily" ? "day" : "week";
  const sorted = [...facts.budgets].sort((a, b) => (ORDER.get(a.state) ?? 9) - (ORDER.get(b.state) ?? 9) || b.percent - a.percent || a.budget.name.localeCompare(b.budget.name));
  const counts = BUDGET_STATES.map((s) => [s, sorted.filter((b) => b.state === s).length] as const).filter(([, n]) => n > 0);
  const standing = counts.length > 0 ? ` Budgets: ${counts.map(([s, n]) => `${n} ${s}`).join(", ")}.` : "";
  return {
    id: `${kind}:${channelId}:${date}:${what}`,
    kind,
    title: `${kind === "digest_daily" ? "Daily" : "Weekly"} spend on ${what}: ${formatUsd(spent)} in ${report.period.label}`,
    summary: `${formatUsd(spent)} over ${report.total.requests.toLocaleString("en-US")} requests, ${changeText(spent, before)} against the ${unit} before (${formatUsd(before)}).${standing}`,
    budget: null,
    spend_usd: picoToDecimalString(spent),
    amount_usd: null,
    percent: null,
    threshold: null,
    period: { start: report.period.start.toISOString(), end: report.period.end.toISOString() },
    forecast_usd: null,
    forecast_method: null,
    run_out_at: null,
    top,
    movers,
    chart,
    actions: [],
    details: {
      scope,
      period_label: report.period.label,
      previous_spend_usd: picoToDecimalString(before),
      requests: report.total.requests,
      unpriced_requests: report.unpriced_requests,
      budget_states: Object.fromEntries(counts),
      budgets: sorted.slice(0, LISTED_BUDGETS).map((b) => ({
        name: b.budget.name,
        state: b.state,
        spend_usd: b.spend_usd,
        amount_usd: b.amount_usd,
        percent: b.percent,
        period: b.period.label,
      })),
    },
    at: now.toISOString(),
  };
}

export interface DigestDeps {
  database: Database;
  notifier: Notifier;
  /** Local hour digests are sent at. */
  hour: number;
}

const PERIOD: Record<DigestKind, string> = { digest_daily: "yesterday", digest_weekly: "last-week" };
const SUBSCRIPTION: Record<DigestKind, string> = { digest_daily: "daily", digest_weekly: "weekly" };

/** The hourly job functions; each answers how many digests it handed to the outbox. */
export function digestJobs(deps: DigestDeps) {
  return {
    runDailyDigests: (now: Date) => runDigests(deps, "digest_daily", now),
    runWeeklyDigests: (now: Date) => runDigests(deps, "digest_weekly", now),
  };
}

async function runDigests({ database, notifier, hour }: DigestDeps, kind: DigestKind, now: Date): Promise<number> {
  const subscribed = await database.db
    .select({ id: channels.id, scopes: channels.scopes, timezone: channels.timezone })
    .from(channels)
    .where(and(isNull(channels.disabledAt), sql`${SUBSCRIPTION[kind]} = any(${channels.kinds})`));
  const due = subscribed.filter((c) => digestDue(kind, now, c.timezone, hour));
  if (due.length === 0) return 0;
  const statuses = (await spendForBudgets(database, (await database.db.select().from(budgets)).map(budgetOf), now)).map((s) => statusOf(s, now));
  let handed = 0;
  for (const channel of due) {
    const scopes: Scope[] = channel.scopes.length > 0 ? channel.scopes : [{}];
    const resolved = resolvePeriod(PERIOD[kind], { now, timeZone: channel.timezone });
    if (!resolved.ok) continue;
    const date = localClock(now, channel.timezone).date;
    const alerts = await Promise.all(scopes.map((scope) => scopeDigest(database, kind, channel.id, scope, resolved.period, date, statuses, now)));
    await notifier.enqueue(database.db, alerts, { channelIds: [channel.id] });
    handed += alerts.length;
  }
  return handed;
}

async function scopeDigest(database: Database, kind: DigestKind, channelId: string, scope: Scope, period: Period, date: string, statuses: readonly BudgetStatus[], now: Date): Promise<Alert> {
  const by = contributorDimension(scope);
  const report = await querySpend(database, { period, by, filters: scope, top: 3, now });
  const top = by ? contributorsOf(report, by) : [];
  const { chart, movers } = await digestTrend(database, scope, period, by, `Daily spend, ${describeScope(scope)}`);
  const within = statuses.filter((s) => scopeMatches(scope, s.budget.scope));
  return digestAlert({ kind, channelId, scope, date, report, top, movers, chart, budgets: within, now });
}
