/**
 * Spend queries. Answers come from the rollups (usage_rollups, usage_user_days, usage_user_months); usage_events is read only for the part of an
 * hour no rollup can answer, and for the events not yet folded into the rollups (fold.ts), so
 * every figure is exact whatever the time zone and whenever folds run.
 */
import { type SQL, sql } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import { z } from "zod";
import type { Database } from "../db/connection.ts";
import { type RollupGrain, usageEvents, usageRollups, usageUserMonths, usageUserDays } from "../db/schema.ts";
import { picoToDecimalString } from "../pricing/money.ts";
import type { Dimension } from "./event.ts";
import { modelInScopeSql } from "./model-family.ts";
import { type Period, daysOf, previousPeriod } from "./period.ts";
import { EVENT_SUMS, keyOfEvent } from "./event-sums.ts";

export interface Totals {
  /** pico-USD (1e-12 USD), exact. */
  cost: bigint;
  requests: number;
  errors: number;
  unpriced: number;
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
}

export interface SpendQuery {
  period: Period;
  by?: Dimension;
  /**
   * dim → value; the value "(none)" matches spend with no value for that dimension, and a model
   * matches its dated snapshots too (model-family.ts).
   */
  filters: Partial<Record<Dimension, string>>;
  /** Groups listed by name; the rest are summed into one group keyed "other". Default 10. */
  top?: number;
  /** Where a running period is cut off; defaults to the clock. */
  now?: Date;
}

export interface SpendReport {
  period: { start: Date; end: Date; label: string };
  /** Spend from the period's start up to its end or now, whichever comes first. */
  total: Totals;
  /** The previous equal period, cut to the same elapsed length while this one is still running. */
  previous: Totals;
  /** Largest cost first, "other" last. Empty without `by`. */
  groups: ({ key: string } & Totals)[];
  unpriced_requests: number;
}

/** Group key of spend with no value for the grouped dimension. */
export const NONE_KEY = "(none)";
export const OTHER_KEY = "other";

const TOKEN_FIELDS = ["input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens"] as const;
const COUNT_FIELDS = ["requests", "errors", "unpriced", ...TOKEN_FIELDS] as const;
const SUM_FIELDS = ["cost", ...COUNT_FIELDS] as const;
type CountField = (typeof COUNT_FIELDS)[number];

/** The only columns a query can group or filter by: user text never becomes an identifier. */
const COLUMNS: Record<Dimension, { rollup: PgColumn; event: PgColumn }> = {
  team: { rollup: usageRollups.team, event: usageEvents.team },
  project: { rollup: usageRollups.project, event: usageEvents.project },
  feature: { rollup: usageRollups.feature, event: usageEvents.feature },
  user: { rollup: usageRollups.user, event: usageEvents.user },
  model: { rollup: usageRollups.model, event: usageEvents.model },
  provider: { rollup: usageRollups.provider, event: usageEvents.provider },
  key: { rollup: usageRollups.apiKeyId, event: usageEvents.apiKeyId },
};

/** Epoch milliseconds, start inclusive, end exclusive. */
export interface Range {
  start: number;
  end: number;
}

/** Where a piece of a range is read from: a rollup grain, or the events themselves. */
export type Source = RollupGrain | "events";
/** A piece is added, or (sign -1) taken away: the part of a month bucket past a running period's end. */
export type Piece = Range & { source: Source; sign?: -1 };

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Rollup grains from coarsest to finest. The hour and day grains carry no user. */
const GRAINS = {
  withUser: [{ grain: "user-day", ms: DAY_MS }],
  withoutUser: [
    { grain: "day", ms: DAY_MS },
    { grain: "hour", ms: HOUR_MS },
  ],
} as const satisfies Record<string, readonly { grain: RollupGrain; ms: number }[]>;

/**
 * Covers [start, end) with the fewest rollup rows: whole UTC days from a day grain, the whole
 * hours left at either side from the hour grain, and what is left of a partial hour (a
 * half-hour zone such as Asia/Kolkata, or a period cut at now or at the previous period's same
 * point) from usage_events, which alone can answer it exactly. Queries about users have no hour
 * grain, so their partial days come from events.
 *
 * A partial bucket is read from events whichever way reads less of them: the part itself, or the
 * whole rollup bucket with the events of the rest of it taken away. With `openEnd` (the range ends
 * at now) the rest past the end holds only events dated ahead, normally none, so the running
 * hour (or, for users, day) is its rollup row less an empty read, not every event since the hour began.
 */
export function coverRange(range: Range, withUser: boolean, openEnd = false): Piece[] {
  return cover(range, withUser ? GRAINS.withUser : GRAINS.withoutUser, openEnd);
}

/**
 * Covers [start, end) for a query about users and nothing else (by user, or a user filter): each
 * whole UTC month is one `user-month` row per user. The month a running period ends in is read
 * whole too when the period began with it (`this-month` in UTC): what lies past the period's end
 * (`openEnd`: its end is now) can only be events dated ahead, which are taken away again from
 * usage_events through the time index, normally an empty read. Anything else is covered as
 * coverRange covers it.
 */
export function coverUserMonths(range: Range, openEnd: boolean): Piece[] {
  const pieces: Piece[] = [];
  for (let t = range.start; t < range.end; ) {
    const month = monthStart(t);
    const next = monthStart(month + 32 * DAY_MS);
    const end = Math.min(next, range.end);
    if (t === month && (end === next || (openEnd && end === range.end))) {
      pieces.push({ start: month, end: next, source: "user-month" });
      if (end < next) pieces.push({ start: end, end: next, source: "events", sign: -1 });
    } else pieces.push(...coverRange({ start: t, end }, true, openEnd && end === range.end));
    t = end;
  }
  return pieces;
}

const monthStart = (ms: number) => {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
};

function cover(range: Range, grains: readonly { grain: RollupGrain; ms: number }[], openEnd: boolean): Piece[] {
  const [coarsest, ...finer] = grains;
  if (range.start >= range.end) return [];
  if (!coarsest) return [{ ...range, source: "events" }];
  const { grain, ms } = coarsest;
  const first = Math.ceil(range.start / ms) * ms;
  // What is not a whole bucket is left to the finer grains, and at the finest each part bucket is read the cheaper way.
  const part = (r: Range, open: boolean) =>
    finer.length > 0 ? cover(r, finer, open) : r.start < first && first < r.end ? [...partBucket({ start: r.start, end: first }, grain, ms, false), ...partBucket({ start: first, end: r.end }, grain, ms, open)] : partBucket(r, grain, ms, open);
  // An open end is read to the end of its bucket, less the events past now.
  const last = (openEnd ? Math.ceil : Math.floor)(range.end / ms) * ms;
  if (first >= last) return part(range, openEnd);
  return [
    ...part({ start: range.start, end: first }, false),
    { start: first, end: last, source: grain },
    ...(last > range.end ? [{ start: range.end, end: last, source: "events" as const, sign: -1 as const }] : part({ start: last, end: range.end }, false)),
  ];
}

/**
 * Part of one bucket: its events, or the bucket's rollup rows less the events of the rest of it,
 * whichever spans less time; events past an open end count as none.
 */
function partBucket(part: Range, grain: RollupGrain, ms: number, openEnd: boolean): Piece[] {
  if (part.start >= part.end) return [];
  const start = Math.floor(part.start / ms) * ms;
  const end = start + ms;
  if (part.end - part.start <= part.start - start + (openEnd ? 0 : end - part.end)) return [{ ...part, source: "events" }];
  return [
    { start, end, source: grain },
    ...(start < part.start ? [{ start, end: part.start, source: "events" as const, sign: -1 as const }] : []),
    ...(part.end < end ? [{ start: part.end, end, source: "events" as const, sign: -1 as const }] : []),
  ];
}

/**
 * One statement answers total, previous and groups: grouping sets split the current period into
 * its total and its top N groups plus the rest, and give the previous one its total; at most
 * N + 3 rows come back whatever the number of groups.
 */
export async function querySpend(database: Database, query: SpendQuery): Promise<SpendReport> {
  const { period, by, filters, top = 10, now = new Date() } = query;
  // Compare like with like: while a period runs, the previous one is cut to the same elapsed
  // length (but never past its own end, as months differ in length).
  const cutoff = Math.min(Math.max(now.getTime(), period.start.getTime()), period.end.getTime());
  const before = previousPeriod(period);
  const current = { start: period.start.getTime(), end: cutoff };
  const previous = {
    start: before.start.getTime(),
    end: Math.min(before.start.getTime() + (cutoff - current.start), before.end.getTime()),
  };

  // The previous period is a total: it needs the user grains only when a user is asked about.
  const coverOf = (range: Range, grouped: Dimension | undefined, open: boolean) => {
    const withUser = grouped === "user" || filters.user !== undefined;
    const onlyUser = (grouped === undefined || grouped === "user") && Object.entries(filters).every(([dim, v]) => v === undefined || dim === "user");
    return withUser && onlyUser ? coverUserMonths(range, open) : coverRange(range, withUser, open);
  };
  const parts = [
    ...coverOf(current, by, cutoff === now.getTime()).map((piece) => slice(piece, true, by, filters)),
    ...coverOf(previous, undefined, false).map((piece) => slice(piece, false, undefined, filters)),
  ];
  // The top N are ranked on cost alone, so the per-group step keeps one sum per group (thousands
  // of users with every sum would spill to disk); the sums are then taken once over the rows.
  const rows = await database.rows<SpendRow>(sql`
    with src as (${parts.length > 0 ? sql.join(parts, sql` union all `) : emptySlice()}),
    named as (
      select k from src where cur group by k order by sum(cost) desc, k limit ${top}::int
    )
    select cur, gk as key, grouping(gk) = 1 as is_total, ${sumsAsText()}
    from (select src.*, case when cur and k in (select k from named) then k end as gk from src) as s
    group by grouping sets ((cur), (cur, gk))`);
  return report(period, by, rows);
}

export interface DailySpendQuery {
  period: Period;
  by: Dimension;
  filters: SpendQuery["filters"];
  /** Groups kept by name (NONE_KEY for spend without a value); every other group is summed into "other". */
  keys: readonly string[];
  /** Where a running period is cut off; defaults to the clock. */
  now?: Date;
}

export interface DaySpend {
  /** The local day, as `/api/spend?period=YYYY-MM-DD` resolves it. */
  day: Period;
  total: Totals;
  /** The named keys with spend that day, largest cost first, then "other" if any spend is left. */
  groups: ({ key: string } & Totals)[];
}

/**
 * Spend per local day of a period up to now, grouped: each day's figures are exactly those of a
 * spend query for that day alone, read in one statement. Every day is covered as coverRange
 * covers it, and adjacent pieces of one source within their days are read as one range, whose
 * rows are put back in their day by their time (each day was covered on its own, so no such row
 * straddles two).
 */
export async function querySpendByDay(database: Database, query: DailySpendQuery): Promise<DaySpend[]> {
  const { period, by, filters, keys, now = new Date() } = query;
  const days = daysOf(period, now);
  const cutoff = Math.min(Math.max(now.getTime(), period.start.getTime()), period.end.getTime());
  const withUser = by === "user" || filters.user !== undefined;
  // A piece reaching outside its day (a whole bucket less the rest of it) or taken away is read for its day by name.
  const pieces = mergeAdjacent(
    days.flatMap((d, i) => {
      const range = { start: d.start.getTime(), end: Math.min(d.end.getTime(), cutoff) };
      return coverRange(range, withUser, range.end === now.getTime()).map((piece) => ({ ...piece, day: piece.sign || piece.start < range.start || piece.end > range.end ? i : undefined }));
    }),
  );
  // width_bucket numbers the days from 0: before the second day's start is day 0.
  const starts = sql.join(days.slice(1).map((d) => sql`${iso(d.start.getTime())}::timestamptz`), sql`, `);
  const dayOf = (piece: DayPiece) => (piece.day !== undefined ? sql`${piece.day}::int` : days.length > 1 ? sql`width_bucket(${timeColumn(piece)}, array[${starts}])` : sql`0`);
  const wanted = keys.map((k) => (k === NONE_KEY ? "" : k));
  const rows =
    pieces.length === 0
      ? []
      : await database.rows<SpendRow & { day: number }>(sql`
    select day, gk as key, grouping(gk) = 1 as is_total, ${sumsAsText()}
    from (
      select src.*, case when k in (${wanted.length > 0 ? sql.join(wanted.map((k) => sql`${k}`), sql`, `) : sql`null`}) then k end as gk
      from (${sql.join(
        pieces.map((piece) => sql`select ${dayOf(piece)} as day, ${keyColumn(piece, by)}::text as k, ${sumColumns(piece)} ${pieceFrom(piece, filters)}`),
        sql` union all `,
      )}) as src
    ) as s
    group by grouping sets ((day), (day, gk))`);
  return days.map((day, i) => {
    const own = rows.filter((r) => Number(r.day) === i).map((r) => ({ ...r, cur: true }));
    const { total, groups } = report(day, by, own);
    return { day, total, groups };
  });
}

/** A piece of a by-day read; `day` when its rows are not all in the day their time falls in. */
type DayPiece = Piece & { day?: number };

/** Pieces within their days that continue one another from the same source, as one. */
function mergeAdjacent(pieces: DayPiece[]): DayPiece[] {
  const merged: DayPiece[] = [];
  for (const piece of pieces) {
    const last = merged.at(-1);
    if (last && last.source === piece.source && last.end === piece.start && last.day === undefined && piece.day === undefined) last.end = piece.end;
    else merged.push({ ...piece });
  }
  return merged;
}

interface SpendRow extends Record<string, unknown> {
  cur: boolean;
  /** null on the row of the groups beyond the top N. */
  key: string | null;
  is_total: boolean;
  cost: string;
  requests: string;
  errors: string;
  unpriced: string;
  input_tokens: string;
  cached_input_tokens: string;
  cache_write_tokens: string;
  output_tokens: string;
  reasoning_tokens: string;
}

function report(period: Period, by: Dimension | undefined, rows: SpendRow[]): SpendReport {
  // Grouping an empty input yields no row at all, not a row of zeros.
  const totalOf = (cur: boolean) => {
    const row = rows.find((r) => r.is_total && r.cur === cur);
    return row ? totals(row) : ZERO;
  };
  const groupRows = rows.filter((r) => r.cur && !r.is_total);
  const named = groupRows
    .filter((r) => r.key !== null)
    .map((r) => ({ key: r.key || NONE_KEY, ...totals(r) }))
    .sort((a, b) => (a.cost === b.cost ? a.key.localeCompare(b.key) : a.cost > b.cost ? -1 : 1));
  const rest = groupRows.find((r) => r.key === null);
  const total = totalOf(true);
  return {
    period: { start: period.start, end: period.end, label: period.label },
    total,
    previous: totalOf(false),
    groups: by ? [...named, ...(rest ? [{ key: OTHER_KEY, ...totals(rest) }] : [])] : [],
    unpriced_requests: total.unpriced,
  };
}

function totals(row: SpendRow): Totals {
  const counts = Object.fromEntries(COUNT_FIELDS.map((f) => [f, count(row[f], f)])) as Record<CountField, number>;
  return { cost: BigInt(row.cost), ...counts };
}

/** All sums zero. */
export const ZERO: Totals = {
  cost: 0n,
  requests: 0,
  errors: 0,
  unpriced: 0,
  input_tokens: 0,
  cached_input_tokens: 0,
  cache_write_tokens: 0,
  output_tokens: 0,
  reasoning_tokens: 0,
};

/** Counts are plain numbers; a sum beyond 2^53 would be silently wrong as one, so it stops here. */
function count(text: string, field: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`${field} sum ${text} is beyond exact number range`);
  return n;
}

/** Cast to text: numeric must reach JS as digits, never through a float. */
function sumsAsText(): SQL {
  return sql.join(
    SUM_FIELDS.map((f) => sql`sum(${sql.identifier(f)})::text as ${sql.identifier(f)}`),
    sql`, `,
  );
}

/** One piece of the current or previous period, keyed by the grouped dimension (or '' for none). */
function slice(piece: Piece, cur: boolean, by: Dimension | undefined, filters: SpendQuery["filters"]): SQL {
  const flag = cur ? sql`true` : sql`false`;
  const key = by ? keyColumn(piece, by) : sql`''`;
  return sql`select ${flag} as cur, ${key}::text as k, ${sumColumns(piece)} ${pieceFrom(piece, filters)}`;
}

/** Attribution of a piece's rows: rollups keep '' for none, events NULL, and both answer ''. */
export function keyColumn(piece: Piece, dim: Dimension): SQL {
  return piece.source === "events" ? sql`coalesce(${COLUMNS[dim].event}, '')` : sql`${COLUMNS[dim].rollup}`;
}

/** The instant a piece's row stands for: a rollup row's bucket start, an event's time. */
function timeColumn(piece: Piece): SQL {
  return piece.source === "events" ? sql`${usageEvents.ts}` : sql`${usageRollups.bucket}`;
}

/** The summable columns, named alike whether a piece reads rollups or events. */
export const SUM_COLUMNS = sql.raw(`requests, errors, unpriced, input_tokens, cached_input_tokens,
  cache_write_tokens, output_tokens, reasoning_tokens, cost`);

/** SUM_COLUMNS, in its order, negated. */
const NEGATED_SUM_COLUMNS = sql.raw([...COUNT_FIELDS, "cost"].map((c) => `-${c} as ${c}`).join(", "));

/** A piece's sums, negated when it is taken away. */
const sumColumns = (piece: Piece) => (piece.sign === -1 ? NEGATED_SUM_COLUMNS : SUM_COLUMNS);

/**
 * The FROM and WHERE of one piece: rollup rows of its grain, or single events shaped like rollup
 * rows (one request each) for the partial hours no rollup answers.
 */
export function pieceFrom(piece: Piece, filters: SpendQuery["filters"]): SQL {
  const [from, to] = [iso(piece.start), iso(piece.end)];
  if (piece.source === "events")
    return sql`from (select ${usageEvents}.*, 1::bigint as requests, (${usageEvents.status} <> 'ok')::int::bigint as errors,
        (not ${usageEvents.priced})::int::bigint as unpriced
      from ${usageEvents}
      where ${usageEvents.ts} >= ${from}::timestamptz and ${usageEvents.ts} < ${to}::timestamptz
        ${filterSql(filters, "event")}) as ${sql.identifier("usage_events")}`;
  // Each grain answers under usage_rollups' name, with the events not folded into it yet; the user
  // grains have tables of their own with usage_rollups' columns but the grain. A user-month piece
  // is asked about users only (coverUserMonths).
  return sql`from ${grainRows(piece.source, from, to)} as ${sql.identifier("usage_rollups")}
    where true ${filterSql(filters, "rollup")}`;
}

/**
 * Events written but not folded into the rollups yet (fold.ts); the queue of batches is read in
 * the same statement (one snapshot) as the grain's table, so a batch a fold commits meanwhile is
 * counted once, in one or the other. Found through the fold batch index: a few seconds of writes
 * at most, none once folds have caught up.
 */
const UNFOLDED = sql.raw(`from usage_events where fold_batch = any(array(select batch from usage_rollup_queue))`);
/** All of an hour or day row's key columns, by place. */
const ROW_KEY = "1, 2, 3, 4, 5, 6, 7, 8";
/**
 * The hour or day grain's rows and the key it sums an unfolded event under. The grain is a
 * literal, not a parameter, so even a prepared statement's generic plan counts on the grain's own
 * rows (an hour row for every day row 24 times over).
 */
const withoutUser = (grain: "hour" | "day") => ({
  rows: sql`select bucket, team, project, feature, "user", provider, model, api_key_id, ${SUM_COLUMNS} from ${usageRollups} where ${usageRollups.grain} = '${sql.raw(grain)}'`,
  key: keyOfEvent(grain, "''"),
  groupBy: ROW_KEY,
});
/**
 * Each grain's rows (usage_rollups' columns but the grain, up to a WHERE to add to), the key it sums
 * an unfolded event under, and that key's columns by place.
 */
const GRAINS_READ: Record<RollupGrain, { rows: SQL; key: string; groupBy: string }> = {
  hour: withoutUser("hour"),
  day: withoutUser("day"),
  "user-day": {
    rows: sql`select bucket, team, project, feature, "user", provider, model, api_key_id, ${SUM_COLUMNS} from ${usageUserDays} where true`,
    key: keyOfEvent("day", `coalesce("user", '')`),
    groupBy: ROW_KEY,
  },
  "user-month": {
    rows: sql`select bucket, "user", ${SUM_COLUMNS} from ${usageUserMonths} where true`,
    key: `date_trunc('month', ts, 'UTC') as bucket, coalesce("user", '') as "user"`,
    groupBy: "1, 2",
  },
};

/**
 * A grain's rows in [from, to) and its unfolded events of that time summed as the grain would
 * hold them, with usage_rollups' columns but the grain. A piece's bounds are the grain's own bucket
 * edges (UTC), so an event's bucket is in range exactly when its time is: the events are picked by
 * time, which costs a comparison, not date_trunc in a named zone twice per unfolded event (~0.5 µs a
 * call). Summed here, the query above them adds up a few rows per key rather than every event
 * (with 50,000 unfolded, a month by user read 24,000 of them).
 */
function grainRows(grain: RollupGrain, from: string, to: string): SQL {
  const { rows, key, groupBy } = GRAINS_READ[grain];
  return sql`(${rows} and bucket >= ${from}::timestamptz and bucket < ${to}::timestamptz
  union all
  select ${sql.raw(key)}, ${EVENT_SUMS} ${UNFOLDED} and ts >= ${from}::timestamptz and ts < ${to}::timestamptz group by ${sql.raw(groupBy)})`;
}

/** Keeps the union well-typed when both periods are empty (a period that has not begun). */
function emptySlice(): SQL {
  return sql`select true as cur, ''::text as k, 0::bigint as requests, 0::bigint as errors, 0::bigint as unpriced,
    0::numeric as input_tokens, 0::numeric as cached_input_tokens, 0::numeric as cache_write_tokens,
    0::numeric as output_tokens, 0::numeric as reasoning_tokens, 0::numeric as cost where false`;
}

function filterSql(filters: SpendQuery["filters"], table: "rollup" | "event"): SQL {
  const conditions = (Object.entries(filters) as [Dimension, string | undefined][])
    .filter((f): f is [Dimension, string] => f[1] !== undefined)
    .map(([dim, value]) => {
      const wanted = value === NONE_KEY ? "" : value;
      // Rollups store absent attribution as ''; events as NULL.
      const column = table === "rollup" ? sql`${COLUMNS[dim].rollup}` : sql`coalesce(${COLUMNS[dim].event}, '')`;
      return dim === "model" ? sql` and ${modelInScopeSql(column, wanted)}` : sql` and ${column} = ${wanted}`;
    });
  return sql.join(conditions);
}

const iso = (ms: number) => new Date(ms).toISOString();

// ---- the JSON answer of GET /api/spend and `tollgate spend --json` ----

const TotalsJson = z.object({
  /** Decimal USD, exact: money never travels as a JSON number. */
  cost_usd: z.string(),
  requests: z.number().int(),
  errors: z.number().int(),
  unpriced: z.number().int(),
  input_tokens: z.number().int(),
  cached_input_tokens: z.number().int(),
  cache_write_tokens: z.number().int(),
  output_tokens: z.number().int(),
  reasoning_tokens: z.number().int(),
});

export const SpendReportJson = z.object({
  period: z.object({ start: z.string(), end: z.string(), label: z.string() }),
  total: TotalsJson,
  previous: TotalsJson,
  groups: z.array(TotalsJson.extend({ key: z.string() })),
  unpriced_requests: z.number().int(),
});
export type SpendReportJson = z.infer<typeof SpendReportJson>;

export function toJson(report: SpendReport): SpendReportJson {
  return {
    period: { start: report.period.start.toISOString(), end: report.period.end.toISOString(), label: report.period.label },
    total: totalsJson(report.total),
    previous: totalsJson(report.previous),
    groups: report.groups.map(({ key, ...t }) => ({ key, ...totalsJson(t) })),
    unpriced_requests: report.unpriced_requests,
  };
}

function totalsJson({ cost, ...counts }: Totals): z.infer<typeof TotalsJson> {
  return { cost_usd: picoToDecimalString(cost), ...counts };
}
