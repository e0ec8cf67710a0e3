import { type SQL, sql } from "drizzle-orm";
import { type Cell, arrayColumn, arrayLiteral } from "../db/arrays.ts";
import type { RollupGrain } from "../db/schema.ts";
import type { Tokens } from "./event.ts";
import { type Totals, ZERO } from "./spend.ts";
import { under } from "../nested-map.ts";

/**
 * What a set of usage_events rows adds to (sign 1) or takes away from (sign -1) the rollups,
 * aggregated here in the process and written in one statement (usage_rollups for the hour and day
 * grains, usage_user_days for user-day, usage_user_months for user-month). The recorder adds what it
 * inserted to the hour and day grains (folds add it to the user grains later: fold.ts), erasure
 * takes away what it deleted, so both keep rollups equal to the events' sums.
 * Grains (schema.ts):
 * - `hour`, `day`: per UTC hour / day and attribution without the user;
 * - `user-day`: per UTC day and attribution with the user;
 * - `user-month`: per UTC month and user only, so a user's month is one row.
 */

/**
 * What a delta is made from: a priced event as the recorder holds it (so it passes its events as
 * they are), or usage_events' columns as erasure reads them back (rollupSourceOf).
 */
export type RollupSource = {
  tokens: Pick<Tokens, "input" | "cached_input" | "cache_write" | "output" | "reasoning">;
  cost: bigint;
  ts: Date;
  provider: string;
  model: string;
  priced: boolean;
  status: string;
  team: string | null;
  project: string | null;
  feature: string | null;
  user: string | null;
  api_key_id: string | null;
};

/** One rollup row's change: its key and its sums. Token sums of a batch stay far below 2^53 (MAX_TOKENS × batch size); cost is exact. */
export type RollupRow = Totals & {
  grain: RollupGrain;
  bucket: number;
  team: string;
  project: string;
  feature: string;
  user: string;
  provider: string;
  model: string;
  api_key_id: string;
};

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const floorTo = (ms: number, step: number) => Math.floor(ms / step) * step;
/** The first instant of ms's UTC month. Not Date.UTC(year, month, 1): it reads years 0 to 99 as 1900 to 1999. */
const monthOf = (ms: number) => {
  const d = new Date(ms);
  d.setUTCDate(1);
  return d.setUTCHours(0, 0, 0, 0);
};

/** A row of zero sums for one key; one constructor, so every row has the same shape. */
function zeroRow(grain: RollupGrain, bucket: number, e: RollupSource | undefined, user: string): RollupRow {
  return {
    grain,
    bucket,
    team: e?.team ?? "",
    project: e?.project ?? "",
    feature: e?.feature ?? "",
    user,
    provider: e?.provider ?? "",
    model: e?.model ?? "",
    api_key_id: e?.api_key_id ?? "",
    ...ZERO,
  };
}

/** Sums the rows' contributions per rollup row (negated for sign -1), at the user grains too unless `userGrains` is false. */
export function rollupRows(rows: readonly RollupSource[], sign: 1 | -1, userGrains = true): RollupRow[] {
  return rollupPlan(rows, sign, userGrains).rows;
}

/** A level of the lookup rollupPlan keys rows by: one map per key part, a row's 1-based index at the end. */
type Level = Map<string | number, Level | number>;

/**
 * The rollup rows of `rows`, and for each grain (hour, day, and unless `userGrains` is false
 * user-day, user-month) the 1-based index of the row each source row falls in, so a statement can sum a subset of them (the events
 * an insert actually took) into the same rows. The keys an event falls in, one per grain (absent
 * attribution is ''): `hour` and `day` carry its attribution without the user, `user-day` with
 * it, `user-month` the user alone. This runs for every batch the recorder writes: a row is found
 * by walking maps, one per part of its key, with the event's own strings (their hashes cached in
 * them after the first look), so no key string is built per event and grain, and rows are made
 * only for keys not seen before.
 */
export function rollupPlan(rows: readonly RollupSource[], sign: 1 | -1, userGrains = true): { rows: RollupRow[]; rowOf: number[][] } {
  const out: RollupRow[] = [];
  const rowOf: number[][] = userGrains ? [[], [], [], []] : [[], []];
  const attributions: Level = new Map();
  const months: Level = new Map();
  /** The index of the row at `key` of `level`, made (zero) when new. */
  const place = (level: Level, key: string | number, grain: RollupGrain, bucket: number, e: RollupSource | undefined, user: string) => {
    let at = level.get(key) as number | undefined;
    if (at === undefined) {
      at = out.push(zeroRow(grain, bucket, e, user));
      level.set(key, at);
    }
    return at;
  };
  const s = BigInt(sign);
  let lastDay = Number.NaN;
  let month = 0;
  for (const e of rows) {
    const ms = e.ts.getTime();
    const hour = floorTo(ms, HOUR_MS);
    const day = floorTo(ms, DAY_MS);
    if (day !== lastDay) [lastDay, month] = [day, monthOf(ms)];
    const user = e.user ?? "";
    // Under the attribution: hours (h), days (d) and each user's days (u), each keyed by its bucket.
    const attribution = under(under(under(under(under(under(attributions, e.team ?? ""), e.project ?? ""), e.feature ?? ""), e.provider), e.model), e.api_key_id ?? "");
    const hourAt = place(under(attribution, "h"), hour, "hour", hour, e, "");
    const dayAt = place(under(attribution, "d"), day, "day", day, e, "");
    rowOf[0]!.push(hourAt);
    rowOf[1]!.push(dayAt);
    const cost = s * e.cost;
    addTo(out[hourAt - 1]!, e, sign, cost);
    addTo(out[dayAt - 1]!, e, sign, cost);
    if (!userGrains) continue;
    const userDayAt = place(under(under(attribution, "u"), user), day, "user-day", day, e, user);
    const monthAt = place(under(months, month), user, "user-month", month, undefined, user);
    rowOf[2]!.push(userDayAt);
    rowOf[3]!.push(monthAt);
    addTo(out[userDayAt - 1]!, e, sign, cost);
    addTo(out[monthAt - 1]!, e, sign, cost);
  }
  return { rows: out, rowOf };
}

/** Adds one source row (signed) to a rollup row's sums; `cost` is its cost with the sign applied. */
function addTo(row: RollupRow, e: RollupSource, sign: 1 | -1, cost: bigint): void {
  row.requests += sign;
  if (e.status !== "ok") row.errors += sign;
  if (!e.priced) row.unpriced += sign;
  row.input_tokens += sign * e.tokens.input;
  row.cached_input_tokens += sign * e.tokens.cached_input;
  row.cache_write_tokens += sign * e.tokens.cache_write;
  row.output_tokens += sign * e.tokens.output;
  row.reasoning_tokens += sign * e.tokens.reasoning;
  row.cost += cost;
}

const KEY = `grain, bucket, team, project, feature, "user", provider, model, api_key_id`;

/** SUMS of a group of usage_events rows (or rows with their columns), as rollups hold them. */
export const EVENT_SUMS = sql.raw(`count(*) as requests, count(*) filter (where status <> 'ok') as errors,
  count(*) filter (where not priced) as unpriced, sum(input_tokens) as input_tokens,
  sum(cached_input_tokens) as cached_input_tokens, sum(cache_write_tokens) as cache_write_tokens,
  sum(output_tokens) as output_tokens, sum(reasoning_tokens) as reasoning_tokens, sum(cost) as cost`);
const SUMS = ["requests", "errors", "unpriced", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens", "cost"] as const;

/** The relation's columns: each travels as one array of this type, its values read off the rows. */
const RELATION_COLUMNS: readonly [keyof RollupRow, string, (row: RollupRow) => Cell][] = [
  ["grain", "text", (r) => r.grain],
  ["bucket", "timestamptz", (r) => new Date(r.bucket).toISOString()],
  ...(["team", "project", "feature", "user", "provider", "model", "api_key_id"] as const).map((k): [keyof RollupRow, string, (row: RollupRow) => Cell] => [k, "text", (r) => r[k]]),
  ...(["requests", "errors", "unpriced"] as const).map((k): [keyof RollupRow, string, (row: RollupRow) => Cell] => [k, "bigint", (r) => r[k]]),
  ...(["input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens", "cost"] as const).map(
    (k): [keyof RollupRow, string, (row: RollupRow) => Cell] => [k, "numeric", (r) => r[k]],
  ),
];

/** The relation's parameters: one array literal per column, in RELATION_COLUMNS' order. */
export const relationParams = (rows: readonly RollupRow[]): string[] => RELATION_COLUMNS.map(([, , read]) => arrayLiteral(rows.map(read)));

/** Rows given as relationParams as a relation of KEY and SUMS columns (and `idx`, 1-based, in their order). */
function relation(params: readonly string[]): SQL {
  const arrays = params.map((literal, i) => arrayColumn(literal, RELATION_COLUMNS[i]![1]));
  return sql`unnest(${sql.join(arrays, sql`, `)}) with ordinality as x(${sql.raw(KEY)}, ${sql.raw(SUMS.join(", "))}, idx)`;
}

/**
 * CTE `rolled` adding the `hour` and `day` rows of the CTE `deltas` (KEY and SUMS columns, each
 * key once) to usage_rollups, in key order (the same order for every writer, so concurrent
 * statements wait for each other rather than deadlock).
 */
const upsertHoursAndDays = () => sql`rolled as (
      insert into usage_rollups as r (${sql.raw(KEY)}, ${sql.raw(SUMS.join(", "))})
      select ${sql.raw(KEY)}, ${sql.raw(SUMS.join(", "))} from deltas where grain in ('hour', 'day')
      order by ${sql.raw(KEY)}
      on conflict (${sql.raw(KEY)}) do update set ${sql.raw(ADD_SUMS)})`;

/**
 * CTEs `rolled_days` and `rolled_months` adding the `user-day` rows of the CTE `deltas` to
 * usage_user_days and the `user-month` rows to usage_user_months, each in key order and in the
 * same order in every statement (folds and erasure), so they wait for each other rather than deadlock.
 */
export function upsertUserGrains(): SQL {
  return sql`rolled_days as (
      insert into usage_user_days as r (${sql.raw(USER_DAY_KEY)}, ${sql.raw(SUMS.join(", "))})
      select ${sql.raw(USER_DAY_KEY)}, ${sql.raw(SUMS.join(", "))} from deltas where grain = 'user-day'
      order by ${sql.raw(USER_DAY_KEY)}
      on conflict (${sql.raw(USER_DAY_KEY)}) do update set ${sql.raw(ADD_SUMS)}),
    rolled_months as (
      insert into usage_user_months as r (bucket, "user", ${sql.raw(SUMS.join(", "))})
      select bucket, "user", ${sql.raw(SUMS.join(", "))} from deltas where grain = 'user-month'
      order by bucket, "user"
      on conflict (bucket, "user") do update set ${sql.raw(ADD_SUMS)})`;
}
/** usage_user_days' primary key, in its order. */
const USER_DAY_KEY = `bucket, "user", team, project, feature, provider, model, api_key_id`;
const ADD_SUMS = SUMS.map((f) => `${f} = r.${f} + excluded.${f}`).join(", ");

/** One statement adding every grain's rows (each key once), or undefined when there are none. */
export function upsertRollups(rows: readonly RollupRow[]): SQL | undefined {
  if (rows.length === 0) return undefined;
  return sql`with deltas as (select * from ${relation(relationParams(rows))}), ${upsertHoursAndDays()}, ${upsertUserGrains()} select 1`;
}

/**
 * CTEs adding to the hour and day grains what the CTE `ins` (RETURNING source, id) took of the
 * CTE `input` (`planned`: relationParams of the plan's rows, made without the user grains), whose
 * rows carry their rollup rows' indices (r_hour, r_day, from rollupPlan). When the insert took all `total` events (the usual
 * case) the sums made in the process are written as they are; when some were already known, the
 * sums of the ones taken are made again in the statement, over those rows only.
 */
export function rollupsOfInserted(planned: readonly string[], total: number): SQL {
  // Its one parameter once, so a statement made of it has the same parameters as its text's placeholders.
  const all = sql`(select took_all from took)`;
  return sql`took as (select (select count(*) from ins) = ${total}::int as took_all),
    planned as (select * from ${relation(planned)}),
    retaken as (
      select r as idx, ${EVENT_SUMS}
      from input i join ins using (source, id)
        cross join lateral unnest(array[i.r_hour, i.r_day]) as r
      where not ${all}
      group by r
    ),
    deltas as (
      select ${sql.raw(KEY)}, ${sql.raw(SUMS.join(", "))} from planned where ${all}
      union all
      select ${sql.raw(KEY.split(", ").map((c) => `p.${c}`).join(", "))}, ${sql.raw(SUMS.map((c) => `t.${c}`).join(", "))}
      from retaken t join planned p on p.idx = t.idx),
    ${upsertHoursAndDays()}`;
}

/** The per-event rollup row indices as int[] array literals, one per grain planned, in rollupPlan's grain order. */
export function rowIndexParams(plan: { rowOf: number[][] }): string[] {
  return plan.rowOf.map((indices) => arrayLiteral(indices));
}
export const ROW_INDEX_NAMES = sql.raw("r_hour, r_day");

/**
 * The usage_events columns a RollupSource is read back from (the RETURNING of a delete), as text
 * so both drivers give the same values: the time as epoch milliseconds, the cost as digits.
 */
export const ROLLUP_SOURCE_COLUMNS = sql.raw(
  `floor(extract(epoch from ts) * 1000)::bigint::text as ts_ms, provider, model, input_tokens::text, cached_input_tokens::text,
  cache_write_tokens::text, output_tokens::text, reasoning_tokens::text, cost::text, priced, status, team, project, feature, "user", api_key_id`,
);

export type RollupSourceRow = Omit<RollupSource, "ts" | "cost" | "tokens"> & {
  ts_ms: string;
  cost: string;
  input_tokens: string;
  cached_input_tokens: string;
  cache_write_tokens: string;
  output_tokens: string;
  reasoning_tokens: string;
};

/** A row read with ROLLUP_SOURCE_COLUMNS. */
export function rollupSourceOf(row: RollupSourceRow): RollupSource {
  return {
    ...row,
    ts: new Date(Number(row.ts_ms)),
    cost: BigInt(row.cost),
    tokens: {
      input: Number(row.input_tokens),
      cached_input: Number(row.cached_input_tokens),
      cache_write: Number(row.cache_write_tokens),
      output: Number(row.output_tokens),
      reasoning: Number(row.reasoning_tokens),
    },
  };
}
