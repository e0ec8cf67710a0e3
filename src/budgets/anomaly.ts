/**
 * Anomalous spend: the current hour's spend in a budget's scope far above that scope's own hourly
 * baseline. The decision is pure and exact (BigInt, no float near money); the query reads only
 * the hour rollups.
 *
 * The current UTC hour so far is compared with the 168 whole hours before it (a week, so the
 * baseline has seen every weekday). It is anomalous when all of these hold:
 * - it is at least the floor (TOLLGATE_ANOMALY_MIN_USD), so tiny scopes page nobody;
 * - the scope has at least 24 hours of history, so a new scope's first busy hour is not news;
 * - it is above the baseline mean by more than 3 standard deviations, and at least 3 × the mean
 *   (a very steady scope has a tiny deviation that ordinary noise would exceed).
 * A part hour never overstates the hour, so an hour found anomalous early stays so.
 */
import { sql } from "drizzle-orm";
import type { Database } from "../db/connection.ts";
import type { Dimension } from "../ledger/event.ts";
import { type ScopeGroup, dimList, rowScope, scopeKey, wantedCte, wantedRows } from "./spend-batch.ts";

const HOUR_MS = 3_600_000;
export const BASELINE_HOURS = 168;
const MIN_HISTORY_HOURS = 24;
const SIGMAS = 3n;
const RATIO = 3n;
/** After an anomaly alert, a scope stays quiet this long: a surge that goes on is one event, not one an hour. */
export const ANOMALY_QUIET_HOURS = 6;

export const hourOf = (now: Date) => new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS);

/** What the rollups say about one scope's hours. Amounts are pico-USD. */
export interface HourlyFacts {
  /** Start of the current UTC hour. */
  hour: Date;
  /** Spent since `hour`. */
  recent: bigint;
  /** Sum and sum of squares of the hourly spend over the BASELINE_HOURS hours before `hour`. */
  baselineSum: bigint;
  baselineSquares: bigint;
  /** The earliest of those hours with any spend; null when there was none. */
  firstSpendAt: Date | null;
}

export interface AnomalyVerdict {
  hour: Date;
  recent: bigint;
  /** The baseline's hourly mean and standard deviation, floored to the pico-dollar. */
  mean: bigint;
  stddev: bigint;
  baselineHours: number;
}

/** Floor of the square root of a non-negative integer, by Newton's method. */
export function isqrt(n: bigint): bigint {
  if (n < 2n) return n < 0n ? 0n : n;
  // Start from a power of two above the root: Newton's method then needs a handful of steps, not one per bit.
  let x = 1n << BigInt((n.toString(2).length >> 1) + 1);
  let y = (x + n / x) / 2n;
  while (y < x) {
    x = y;
    y = (x + n / x) / 2n;
  }
  return x;
}

/** The verdict when the hour is anomalous, null otherwise. */
export function detectAnomaly(facts: HourlyFacts, minSpend: bigint): AnomalyVerdict | null {
  const { hour, recent: r, baselineSum: s, baselineSquares: q, firstSpendAt } = facts;
  const n = BigInt(BASELINE_HOURS);
  if (r < minSpend) return null;
  if (!firstSpendAt || hour.getTime() - firstSpendAt.getTime() < MIN_HISTORY_HOURS * HOUR_MS) return null;
  // r > mean + k·σ with mean = s/n and σ = √(n·q − s²)/n, multiplied through by n and squared.
  const excess = n * r - s;
  const spread = n * q - s * s;
  if (n * r < RATIO * s || excess <= 0n || excess * excess <= SIGMAS * SIGMAS * spread) return null;
  return { hour, recent: r, mean: s / n, stddev: isqrt(spread) / n, baselineHours: BASELINE_HOURS };
}

type Baseline = Omit<HourlyFacts, "hour" | "recent">;
const NO_BASELINE: Baseline = { baselineSum: 0n, baselineSquares: 0n, firstSpendAt: null };

/**
 * Reads HourlyFacts, by scopeKey. Whole past hours only change when the hour turns, so a scope's
 * baseline is read once an hour and kept; each read after that reads only the current hour. (An
 * event arriving late for a past hour joins the baseline at the next hour: it is a statistic, not
 * a sum anyone is charged.) Scopes fixing a user are left out: rollups keep users by day only.
 */
export class HourlyFactsReader {
  private hour = Number.NaN;
  private readonly baselines = new Map<string, Baseline>();

  async read(database: Database, groups: readonly ScopeGroup<unknown>[], now: Date): Promise<Map<string, HourlyFacts>> {
    const hour = hourOf(now).getTime();
    if (hour !== this.hour) {
      this.baselines.clear();
      this.hour = hour;
    }
    const hourly = groups.filter((g) => !g.dims.includes("user"));
    const missing = hourly
      .map((g) => ({ dims: g.dims, byValues: new Map([...g.byValues].filter(([key]) => !this.baselines.has(scopeKey(scopeOf(g.dims, key))))) }))
      .filter((g) => g.byValues.size > 0);
    const [baselines, current] = await Promise.all([
      Promise.all(missing.map((g) => hourlySums(database, g, hour - BASELINE_HOURS * HOUR_MS, hour))),
      Promise.all(hourly.map((g) => hourlySums(database, g, hour, hour + HOUR_MS))),
    ]);
    missing.forEach((g, i) => {
      for (const key of g.byValues.keys()) {
        const scope = scopeKey(scopeOf(g.dims, key));
        this.baselines.set(scope, baselines[i]?.get(scope) ?? NO_BASELINE);
      }
    });
    const facts = new Map<string, HourlyFacts>();
    hourly.forEach((g, i) => {
      for (const key of g.byValues.keys()) {
        const scope = scopeKey(scopeOf(g.dims, key));
        facts.set(scope, { hour: new Date(hour), recent: current[i]?.get(scope)?.baselineSum ?? 0n, ...(this.baselines.get(scope) ?? NO_BASELINE) });
      }
    });
    return facts;
  }
}

/** The scope a group's lookup key stands for. */
const scopeOf = (dims: readonly Dimension[], key: string) => rowScope(dims, Object.fromEntries((JSON.parse(key) as string[]).map((v, i) => [`d${i}`, v])));

/** Per scope of a group, over the whole hours in [from, to): the sum, the sum of squares and the first hour with spend. */
async function hourlySums(database: Database, group: ScopeGroup<unknown>, from: number, to: number): Promise<Map<string, Baseline>> {
  const piece = { source: "hour" as const, start: from, end: to };
  const dims: readonly Dimension[] = group.dims;
  const inner = dimList(dims, "src");
  const outer = dimList(dims, "h");
  const rows = await database.rows<Record<string, string | null>>(sql`
    with ${wantedCte(dims, group.byValues.keys())} h as (
      select ${sql.join([...inner, sql`src.bucket`, sql`sum(src.cost) as c`], sql`, `)}
      from (${wantedRows(piece, dims, [sql`bucket`, sql`cost`])}) as src
      group by ${sql.join([...inner, sql`src.bucket`], sql`, `)}
    )
    select ${outer.length > 0 ? sql`${sql.join(outer, sql`, `)},` : sql``}
      coalesce(sum(h.c), 0)::text as s,
      coalesce(sum(h.c * h.c), 0)::text as q,
      (extract(epoch from min(h.bucket) filter (where h.c > 0)) * 1000)::bigint::text as first_ms
    from h
    ${outer.length > 0 ? sql`group by ${sql.join(outer, sql`, `)}` : sql``}`);
  return new Map(
    rows.map((r): [string, Baseline] => [
      scopeKey(rowScope(dims, r)),
      { baselineSum: BigInt(r.s ?? "0"), baselineSquares: BigInt(r.q ?? "0"), firstSpendAt: r.first_ms ? new Date(Number(r.first_ms)) : null },
    ]),
  );
}
