/**
 * The charts and movers alerts carry (issue 15): a digest's daily spend against the days before,
 * the values of a dimension whose spend grew most, and a budget's period so far against its
 * amount. Pure builders from exact sums, and the thin reads that fetch those sums.
 *
 * Slack draws at most 20 categories a chart, so every chart here has at most 20: a digest's trend
 * is 7 days; a budget's period so far is cut into at most 20 buckets of whole local days (hours for
 * a one-day budget), each point the spend up to the bucket's end. A cumulative line loses nothing
 * by being sampled: every point shown is exact.
 */
import type { Scope } from "../budgets/budget.ts";
import { type Chart, usdValue } from "../charts/chart.ts";
import type { Database } from "../db/connection.ts";
import type { Dimension } from "../ledger/event.ts";
import { type LocalDate, type Period, addDays, localDate, previousPeriod, startOfLocalDay } from "../ledger/period.ts";
import { localDayRanges, spendInRanges, spendPerRange } from "../ledger/spend-series.ts";
import type { Range } from "../ledger/spend.ts";
import { decimalUsdToPico, formatUsd, picoToDecimalString } from "../pricing/money.ts";
import type { Mover } from "./alert.ts";

/** Days a digest's trend shows: the week up to the digest's last day, against the week before. */
export const TREND_DAYS = 7;
/** The most categories a chart has: Slack's limit, which every platform is held to so all show the same. */
export const MAX_POINTS = 20;
/** Movers a digest lists. */
export const MOVERS = 3;

const HOUR_MS = 3_600_000;
const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** "Mon 30 Nov": a day as an axis label. */
export function dayLabel(d: LocalDate, weekday = true): string {
  const day = `${d.day} ${MONTHS[d.month - 1]}`;
  return weekday ? `${WEEKDAYS[new Date(Date.UTC(d.year, d.month - 1, d.day)).getUTCDay()]} ${day}` : day;
}

/**
 * A line of the spend of each of `days` against the same number of days before them, aligned by
 * day index (the first day against the first day before): the axis names this period's days.
 */
export function trendChart(title: string, days: readonly LocalDate[], current: readonly bigint[], previous: readonly bigint[]): Chart {
  return {
    kind: "line",
    title,
    categories: days.map((d) => dayLabel(d)),
    series: [
      { name: `Last ${days.length} days`, values: current.map(usdValue) },
      { name: `${days.length} days before`, values: previous.map(usdValue) },
    ],
    unit: "usd",
  };
}

/**
 * The values whose spend grew most from `previous` to `current`, largest increase first (ties by
 * name), `top` of them. Spend with no value ('') names no mover, as it names no contributor.
 */
export function moversOf(dimension: Dimension, current: ReadonlyMap<string, bigint>, previous: ReadonlyMap<string, bigint>, top = MOVERS): Mover[] {
  return [...current]
    .map(([key, cost]) => ({ key, cost, before: previous.get(key) ?? 0n }))
    .filter((m) => m.key !== "" && m.cost > m.before)
    .sort((a, b) => {
      const [da, db] = [a.cost - a.before, b.cost - b.before];
      return da === db ? a.key.localeCompare(b.key) : da > db ? -1 : 1;
    })
    .slice(0, top)
    .map((m) => ({ dimension, key: m.key, spend_usd: picoToDecimalString(m.cost), previous_spend_usd: picoToDecimalString(m.before), change_usd: picoToDecimalString(m.cost - m.before) }));
}

/** A mover as plain text every renderer escapes for its markup: "search: +$12.00 ($3.00 → $15.00)". */
export function moverText(m: Mover): string {
  const usd = (text: string) => {
    const pico = decimalUsdToPico(text);
    return pico instanceof Error ? text : formatUsd(pico);
  };
  return `${m.key}: +${usd(m.change_usd)} (${usd(m.previous_spend_usd)} → ${usd(m.spend_usd)})`;
}

/** The heading above a list of movers: "Top movers by team". */
export const moversHeading = (movers: readonly Mover[]): string => `Top movers by ${movers[0]?.dimension ?? "team"}`;

/** A digest's trend (the 7 days up to the period's last day against the 7 before) and its movers (the period against the one before). */
export async function digestTrend(database: Database, scope: Scope, period: Period, by: Dimension | undefined, title: string): Promise<{ chart: Chart | null; movers: Mover[] }> {
  const first = addDays(period.span.from, period.span.count - TREND_DAYS);
  const days = Array.from({ length: TREND_DAYS }, (_, i) => addDays(first, i));
  const ranges = localDayRanges(addDays(first, -TREND_DAYS), 2 * TREND_DAYS, period.timeZone);
  const before = previousPeriod(period);
  const [daily, split] = await Promise.all([
    spendPerRange(database, ranges, scope),
    by ? spendInRanges(database, [rangeOf(period), rangeOf(before)], scope, by) : Promise.resolve([]),
  ]);
  const [previous, current] = [daily.slice(0, TREND_DAYS), daily.slice(TREND_DAYS)];
  const sums = (i: number) => new Map(split.filter((r) => r.range === i).map((r) => [r.key, r.cost]));
  return {
    chart: daily.some((c) => c > 0n) ? trendChart(title, days, current, previous) : null,
    movers: by ? moversOf(by, sums(0), sums(1)) : [],
  };
}

const rangeOf = (p: { start: Date; end: Date }): Range => ({ start: p.start.getTime(), end: p.end.getTime() });

/**
 * The period from its start to `now` cut into at most MAX_POINTS buckets, each labelled by where
 * it ends: whole local days (several to a bucket in a long period), or hours for a one-day period.
 * The last bucket ends at `now`.
 */
export function periodBuckets(period: Period, now: Date): { ranges: Range[]; labels: string[] } {
  const start = period.start.getTime();
  const cut = Math.min(Math.max(now.getTime(), start), period.end.getTime());
  if (cut <= start) return { ranges: [], labels: [] };
  const oneDay = period.span.unit === "day" && period.span.count === 1;
  const hm = new Intl.DateTimeFormat("en-GB", { timeZone: period.timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  // Bucket edges: local midnights (or hours) from the start, then `now`.
  const edges: number[] = [];
  if (oneDay) for (let t = start; t < cut; t += HOUR_MS) edges.push(t);
  else for (let d = period.span.from; startOfLocalDay(d, period.timeZone).getTime() < cut; d = addDays(d, 1)) edges.push(startOfLocalDay(d, period.timeZone).getTime());
  const step = Math.ceil(edges.length / MAX_POINTS);
  const starts = edges.filter((_, i) => i % step === 0);
  const ranges = starts.map((s, i) => ({ start: s, end: starts[i + 1] ?? cut }));
  const labels = ranges.map((r) => (oneDay ? hm.format(r.end) : dayLabel(localDate(new Date(r.end - 1), period.timeZone), false)));
  return { ranges, labels };
}

/** Running totals of per-bucket spend: what had been spent by each bucket's end. */
export function cumulative(perBucket: readonly bigint[]): bigint[] {
  let sum = 0n;
  return perBucket.map((c) => (sum += c));
}

/** A budget's spend so far in its period as a line, against its amount as a second, flat line. */
export function budgetChart(name: string, period: Period, labels: readonly string[], spent: readonly bigint[], amount: bigint): Chart {
  return {
    kind: "line",
    title: `${name}: ${period.label} so far`,
    categories: [...labels],
    series: [
      { name: "Spent", values: spent.map(usdValue) },
      { name: "Budget", values: labels.map(() => usdValue(amount)) },
    ],
    unit: "usd",
  };
}

/** The chart of a budget's period so far, read now (the moment its alert is made); null before the period has begun. */
export async function budgetPeriodChart(database: Database, budget: { name: string; scope: Scope; amount: bigint }, period: Period, now: Date): Promise<Chart | null> {
  const { ranges, labels } = periodBuckets(period, now);
  if (ranges.length === 0) return null;
  return budgetChart(budget.name, period, labels, cumulative(await spendPerRange(database, ranges, budget.scope)), budget.amount);
}
