import { type SQL, sql } from "drizzle-orm";
import { type Cell, arrayColumn } from "../db/arrays.ts";
import type { RollupGrain } from "../db/schema.ts";

/**
 * What a set of usage_events rows adds to (sign 1) or takes away from (sign -1) the rollups,
 * aggregated here in the process and written with one upsert per grain. The recorder adds what it
 * inserted, erasure takes away what it deleted, so both keep rollups equal to the events' sums.
 * Grains (schema.ts):
 * - `hour`, `day`: per UTC hour / day and attribution without the user;
 * - `user-day`: per UTC day and attribution with the user;
 * - `user-month`: per UTC month and user only, so a user's month is one row.
 */

/** The usage_events columns a delta is made from, as the recorder and erasure read them back. */
export interface RollupSource {
  ts: Date;
  provider: string;
  model: string;
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  cost: bigint;
  priced: boolean;
  status: string;
  team: string | null;
  project: string | null;
  feature: string | null;
  user: string | null;
  api_key_id: string | null;
}

/** One rollup row's change. Token sums of a batch stay far below 2^53 (MAX_TOKENS × batch size); cost is exact. */
export interface RollupRow {
  grain: RollupGrain;
  bucket: number;
  team: string;
  project: string;
  feature: string;
  user: string;
  provider: string;
  model: string;
  api_key_id: string;
  requests: number;
  errors: number;
  unpriced: number;
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  cost: bigint;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const floorTo = (ms: number, step: number) => Math.floor(ms / step) * step;
const monthOf = (ms: number) => {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
};

/** The rollup row keys one event falls in, one per grain; absent attribution is ''. */
function keysOf(e: RollupSource): Omit<RollupRow, "requests" | "errors" | "unpriced" | "input_tokens" | "cached_input_tokens" | "cache_write_tokens" | "output_tokens" | "reasoning_tokens" | "cost">[] {
  const ms = e.ts.getTime();
  const day = floorTo(ms, DAY_MS);
  const attribution = { team: e.team ?? "", project: e.project ?? "", feature: e.feature ?? "", provider: e.provider, model: e.model, api_key_id: e.api_key_id ?? "" };
  const user = e.user ?? "";
  return [
    { grain: "hour", bucket: floorTo(ms, HOUR_MS), ...attribution, user: "" },
    { grain: "day", bucket: day, ...attribution, user: "" },
    { grain: "user-day", bucket: day, ...attribution, user },
    { grain: "user-month", bucket: monthOf(ms), team: "", project: "", feature: "", provider: "", model: "", api_key_id: "", user },
  ];
}

/** Sums the rows' contributions per rollup row (negated for sign -1). */
export function rollupRows(rows: readonly RollupSource[], sign: 1 | -1): RollupRow[] {
  const byKey = new Map<string, RollupRow>();
  const s = BigInt(sign);
  for (const e of rows) {
    const failed = e.status !== "ok" ? sign : 0;
    const unpriced = e.priced ? 0 : sign;
    for (const k of keysOf(e)) {
      // NUL never occurs in stored text (build-event.ts refuses it), so it cannot blur two keys.
      const id = `${k.grain}\0${k.bucket}\0${k.team}\0${k.project}\0${k.feature}\0${k.user}\0${k.provider}\0${k.model}\0${k.api_key_id}`;
      const row = byKey.get(id);
      if (row) {
        row.requests += sign;
        row.errors += failed;
        row.unpriced += unpriced;
        row.input_tokens += sign * e.input_tokens;
        row.cached_input_tokens += sign * e.cached_input_tokens;
        row.cache_write_tokens += sign * e.cache_write_tokens;
        row.output_tokens += sign * e.output_tokens;
        row.reasoning_tokens += sign * e.reasoning_tokens;
        row.cost += s * e.cost;
      } else {
        byKey.set(id, {
          ...k,
          requests: sign,
          errors: failed,
          unpriced,
          input_tokens: sign * e.input_tokens,
          cached_input_tokens: sign * e.cached_input_tokens,
          cache_write_tokens: sign * e.cache_write_tokens,
          output_tokens: sign * e.output_tokens,
          reasoning_tokens: sign * e.reasoning_tokens,
          cost: s * e.cost,
        });
      }
    }
  }
  return [...byKey.values()];
}

const KEY = `grain, bucket, team, project, feature, "user", provider, model, api_key_id`;
const SUMS = ["requests", "errors", "unpriced", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens", "cost"] as const;

/**
 * One upsert for every grain's rows (each key once), or undefined when there are none. Rows are
 * touched in key order, grain first, the same order for every writer, so concurrent statements
 * wait for each other rather than deadlock.
 */
export function upsertRollups(rows: readonly RollupRow[]): SQL | undefined {
  if (rows.length === 0) return undefined;
  const col = <K extends keyof RollupRow>(k: K, type: string, map: (v: RollupRow[K]) => Cell = (v) => v) => arrayColumn(rows.map((r) => map(r[k])), type);
  return sql`
    insert into usage_rollups as r (${sql.raw(KEY)}, ${sql.raw(SUMS.join(", "))})
    select * from unnest(
      ${col("grain", "text")}, ${col("bucket", "timestamptz", (ms) => new Date(ms).toISOString())},
      ${col("team", "text")}, ${col("project", "text")}, ${col("feature", "text")}, ${col("user", "text")},
      ${col("provider", "text")}, ${col("model", "text")}, ${col("api_key_id", "text")},
      ${col("requests", "bigint")}, ${col("errors", "bigint")}, ${col("unpriced", "bigint")},
      ${col("input_tokens", "numeric")}, ${col("cached_input_tokens", "numeric")}, ${col("cache_write_tokens", "numeric")},
      ${col("output_tokens", "numeric")}, ${col("reasoning_tokens", "numeric")}, ${col("cost", "numeric")}
    ) as x(${sql.raw(KEY)}, ${sql.raw(SUMS.join(", "))})
    order by ${sql.raw(KEY)}
    on conflict (${sql.raw(KEY)}) do update set
      ${sql.raw(SUMS.map((f) => `${f} = r.${f} + excluded.${f}`).join(",\n      "))}`;
}

/**
 * The usage_events columns a RollupSource is read back from (the RETURNING of a delete), as text
 * so both drivers give the same values: the time as epoch milliseconds, the cost as digits.
 */
export const ROLLUP_SOURCE_COLUMNS = sql.raw(
  `floor(extract(epoch from ts) * 1000)::bigint::text as ts_ms, provider, model, input_tokens::text, cached_input_tokens::text,
  cache_write_tokens::text, output_tokens::text, reasoning_tokens::text, cost::text, priced, status, team, project, feature, "user", api_key_id`,
);

export type RollupSourceRow = Omit<RollupSource, "ts" | "cost" | `${string}_tokens`> & {
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
    input_tokens: Number(row.input_tokens),
    cached_input_tokens: Number(row.cached_input_tokens),
    cache_write_tokens: Number(row.cache_write_tokens),
    output_tokens: Number(row.output_tokens),
    reasoning_tokens: Number(row.reasoning_tokens),
  };
}
