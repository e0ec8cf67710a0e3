import { sql } from "drizzle-orm";

/*
 * usage_events rows summed in SQL as the rollups hold them: folds add them to the grains
 * (fold.ts), and spend reads add the events not folded yet to what the grains hold (spend.ts).
 */

/** An event's key columns at a grain whose buckets are `unit`s, with (`"user"`) or without (`''`) the user; absent attribution ''. */
export const keyOfEvent = (unit: "hour" | "day", user: string) => `date_trunc('${unit}', ts, 'UTC') as bucket, coalesce(team, '') as team,
  coalesce(project, '') as project, coalesce(feature, '') as feature, ${user} as "user", provider, model, coalesce(api_key_id, '') as api_key_id`;

/** The sums of a group of usage_events rows (or rows with their columns), as rollups hold them, in the order of SUMS (rollup-delta.ts). */
export const EVENT_SUMS = sql.raw(`count(*) as requests, count(*) filter (where status <> 'ok') as errors,
  count(*) filter (where not priced) as unpriced, sum(input_tokens) as input_tokens,
  sum(cached_input_tokens) as cached_input_tokens, sum(cache_write_tokens) as cache_write_tokens,
  sum(output_tokens) as output_tokens, sum(reasoning_tokens) as reasoning_tokens, sum(cost) as cost`);
