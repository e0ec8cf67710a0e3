/**
 * Exact spend in each of several time ranges (the days of a trend, the buckets of a budget's
 * period so far), optionally split by one dimension's values (the movers of a digest). Each range
 * is covered from the rollups as querySpend covers a period (coverRange: whole UTC days, whole
 * hours, events for what is left), and all of them are summed in one statement, as numeric.
 */
import { type SQL, sql } from "drizzle-orm";
import type { Database } from "../db/connection.ts";
import type { Dimension } from "./event.ts";
import { type LocalDate, addDays, startOfLocalDay } from "./period.ts";
import { type Range, type SpendQuery, coverRange, keyColumn, pieceFrom } from "./spend.ts";

export interface RangeSpend {
  /** Index of the range in the list asked for. */
  range: number;
  /** The value of the dimension split by ('' for spend with none); '' when not split. */
  key: string;
  /** pico-USD, exact. */
  cost: bigint;
}

/**
 * The spend of each range with `filters` applied, one row per range and key that has any usage
 * (a range with none has no row). `by` splits each range by that dimension's values.
 */
export async function spendInRanges(database: Database, ranges: readonly Range[], filters: SpendQuery["filters"], by?: Dimension): Promise<RangeSpend[]> {
  const withUser = by === "user" || filters.user !== undefined;
  const parts: SQL[] = ranges.flatMap((range, i) =>
    coverRange(range, withUser).map((piece) => sql`select ${i}::int as i, ${by ? keyColumn(piece, by) : sql`''`}::text as k, cost ${pieceFrom(piece, filters)}`),
  );
  if (parts.length === 0) return [];
  const rows = await database.rows<{ i: number | string; k: string; cost: string }>(sql`
    select i, k, sum(cost)::text as cost from (${sql.join(parts, sql` union all `)}) as src group by i, k`);
  return rows.map((r) => ({ range: Number(r.i), key: r.k, cost: BigInt(r.cost) }));
}

/** Each range's total spend, in the ranges' order (0 for a range with no usage). */
export async function spendPerRange(database: Database, ranges: readonly Range[], filters: SpendQuery["filters"]): Promise<bigint[]> {
  const totals: bigint[] = ranges.map(() => 0n);
  for (const r of await spendInRanges(database, ranges, filters)) totals[r.range] = (totals[r.range] ?? 0n) + r.cost;
  return totals;
}

/** The `count` local days from `from` in `timeZone` as instant ranges (a DST day is 23 or 25 hours long). */
export function localDayRanges(from: LocalDate, count: number, timeZone: string): Range[] {
  return Array.from({ length: count }, (_, i) => ({
    start: startOfLocalDay(addDays(from, i), timeZone).getTime(),
    end: startOfLocalDay(addDays(from, i + 1), timeZone).getTime(),
  }));
}
