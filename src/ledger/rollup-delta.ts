import { type SQL, sql } from "drizzle-orm";
import { type Cell, arrayColumn, arrayLiteral } from "../db/arrays.ts";
import type { RollupGrain } from "../db/schema.ts";
import type { Tokens } from "./event.ts";
import { type Totals, ZERO } from "./spend.ts";
import { under } from "../nested-map.ts";

/**
 * The rollups' grains and how rows are added to them (usage_rollups for the hour and day grains,
 * usage_user_days for user-day, usage_user_months for user-month). Folds (fold.ts) add what the
 * recorder wrote, summed in Postgres; erasure takes away what it deleted (sign -1), summed here in
 * the process; both with the one upsert below, so both keep rollups equal to the events' sums.
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

/** A level of the lookup rollupRows keys rows by: one map per key part, a row's 1-based index at the end. */
type Level = Map<string | number, Level | number>;

/**
 * Sums the rows' contributions (negated for sign -1) per rollup row, at every grain. The keys an
 * event falls in, one per grain (absent attribution is ''): `hour` and `day` carry its attribution
 * without the user, `user-day` with it, `user-month` the user alone. A row is found by walking
 * maps, one per part of its key, with the event's own strings, so no key string is built per
 * event and grain, and rows are made only for keys not seen before.
 */
export function rollupRows(rows: readonly RollupSource[], sign: 1 | -1): RollupRow[] {
  const out: RollupRow[] = [];
  const attributions: Level = new Map();
  const months: Level = new Map();
  /** The row at `key` of `level`, made (zero) when new. */
  const place = (level: Level, key: string | number, grain: RollupGrain, bucket: number, e: RollupSource | undefined, user: string) => {
    let at = level.get(key) as number | undefined;
    if (at === undefined) {
      at = out.push(zeroRow(grain, bucket, e, user));
      level.set(key, at);
    }
    return out[at - 1]!;
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
    const cost = s * e.cost;
    addTo(place(under(attribution, "h"), hour, "hour", hour, e, ""), e, sign, cost);
    addTo(place(under(attribution, "d"), day, "day", day, e, ""), e, sign, cost);
    addTo(place(under(under(attribution, "u"), user), day, "user-day", day, e, user), e, sign, cost);
    addTo(place(under(months, month), user, "user-month", month, undefined, user), e, sign, cost);
  }
  return out;
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

export const SUMS = ["requests", "errors", "unpriced", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens", "cost"] as const;

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
const relationParams = (rows: readonly RollupRow[]): string[] => RELATION_COLUMNS.map(([, , read]) => arrayLiteral(rows.map(read)));

/** Rows given as relationParams as a relation of KEY and SUMS columns. */
function relation(params: readonly string[]): SQL {
  const arrays = params.map((literal, i) => arrayColumn(literal, RELATION_COLUMNS[i]![1]));
  return sql`unnest(${sql.join(arrays, sql`, `)}) as x(${sql.raw(KEY)}, ${sql.raw(SUMS.join(", "))})`;
}

/**
 * CTEs `rolled`, `rolled_days` and `rolled_months` adding the rows of the CTE `deltas` (KEY and
 * SUMS columns, each key once) to their grain's table: `hour` and `day` to usage_rollups,
 * `user-day` to usage_user_days, `user-month` to usage_user_months. Each table's rows in key order,
 * the tables in the same order in every statement (folds and erasure), so statements adding to the
 * same rows wait for each other rather than deadlock.
 */
export function upsertGrains(): SQL {
  return sql`rolled as (
      insert into usage_rollups as r (${sql.raw(KEY)}, ${sql.raw(SUMS.join(", "))})
      select ${sql.raw(KEY)}, ${sql.raw(SUMS.join(", "))} from deltas where grain in ('hour', 'day')
      order by ${sql.raw(KEY)}
      on conflict (${sql.raw(KEY)}) do update set ${sql.raw(ADD_SUMS)}),
    rolled_days as (
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
  return sql`with deltas as (select * from ${relation(relationParams(rows))}), ${upsertGrains()} select 1`;
}

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
