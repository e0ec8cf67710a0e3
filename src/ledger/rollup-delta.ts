import { type SQL, sql } from "drizzle-orm";

/**
 * Two CTEs, `grains` and `rolled`, that add (sign 1) or take away (sign -1) the usage_events rows
 * of the CTE named `source` to or from the rollups at every grain: the recorder adds what it
 * inserts, erasure takes away what it deletes, so both keep rollups equal to the events' sums.
 * `source` needs the columns ts, provider, model, the token counts, cost, priced, status, team,
 * project, feature, "user" and api_key_id. Rollup rows are touched in key order, the same order
 * for every writer, so concurrent statements wait for each other rather than deadlock.
 */
export function rollupDelta(source: string, sign: 1 | -1): SQL {
  const from = sql.raw(`"${source.replace(/"/g, '""')}"`);
  const s = sql.raw(sign < 0 ? "-" : "");
  return sql`
    grains as (
      select 'hour' as grain, date_trunc('hour', ts, 'UTC') as bucket, '' as who, * from ${from}
      union all
      select 'day', date_trunc('day', ts, 'UTC'), '', * from ${from}
      union all
      select 'user-day', date_trunc('day', ts, 'UTC'), coalesce("user", ''), * from ${from}
    ),
    rolled as (
      insert into usage_rollups as r (grain, bucket, team, project, feature, "user", provider, model,
        api_key_id, requests, errors, unpriced, input_tokens, cached_input_tokens, cache_write_tokens,
        output_tokens, reasoning_tokens, cost)
      select grain, bucket, coalesce(team, ''), coalesce(project, ''), coalesce(feature, ''), who,
        provider, model, coalesce(api_key_id, ''),
        ${s}count(*), ${s}count(*) filter (where status <> 'ok'), ${s}count(*) filter (where not priced),
        ${s}sum(input_tokens), ${s}sum(cached_input_tokens), ${s}sum(cache_write_tokens), ${s}sum(output_tokens),
        ${s}sum(reasoning_tokens), ${s}sum(cost)
      from grains
      group by 1, 2, 3, 4, 5, 6, 7, 8, 9
      order by 1, 2, 3, 4, 5, 6, 7, 8, 9
      on conflict (grain, bucket, team, project, feature, "user", provider, model, api_key_id) do update set
        requests = r.requests + excluded.requests,
        errors = r.errors + excluded.errors,
        unpriced = r.unpriced + excluded.unpriced,
        input_tokens = r.input_tokens + excluded.input_tokens,
        cached_input_tokens = r.cached_input_tokens + excluded.cached_input_tokens,
        cache_write_tokens = r.cache_write_tokens + excluded.cache_write_tokens,
        output_tokens = r.output_tokens + excluded.output_tokens,
        reasoning_tokens = r.reasoning_tokens + excluded.reasoning_tokens,
        cost = r.cost + excluded.cost
    )`;
}

/** The usage_events columns `rollupDelta` reads, for the RETURNING of the statement feeding it. */
export const ROLLUP_SOURCE_COLUMNS = sql.raw(
  `ts, provider, model, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost, priced, status, team, project, feature, "user", api_key_id`,
);
