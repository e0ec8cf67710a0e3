import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import type { Database } from "../../src/db/connection.ts";
import { foldAll } from "../../src/ledger/fold.ts";

/**
 * Every rollup row, usage_user_days' and usage_user_months' shaped like usage_rollups' (grain
 * `user-day`; grain `user-month` with no other attribution).
 */
export const ALL_ROLLUPS = sql`(select * from usage_rollups
  union all
  select 'user-day', bucket, team, project, feature, "user", provider, model, api_key_id, requests, errors, unpriced,
    input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost
  from usage_user_days
  union all
  select 'user-month', bucket, '', '', '', "user", '', '', '', requests, errors, unpriced, input_tokens,
    cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost
  from usage_user_months) as rollups`;

/**
 * Every rollup row at every grain (usage_rollups, usage_user_days and usage_user_months) equals the sums over usage_events computed independently here
 * (buckets from to_char in UTC rather than date_trunc), and no rollup row lacks its events. The
 * user grains are compared once what is queued for them is folded (and nothing is left queued).
 */
export async function assertRollupsMatchEvents(db: Database): Promise<void> {
  await foldAll(db);
  const [queued] = await db.rows<{ n: number }>(sql`select count(*)::int as n from usage_rollup_queue`);
  assert.equal(queued!.n, 0, "every queued fold batch is folded");
  const sums = `count(*)::text as requests, (count(*) filter (where status <> 'ok'))::text as errors,
    (count(*) filter (where not priced))::text as unpriced, sum(input_tokens)::text as input_tokens,
    sum(cached_input_tokens)::text as cached_input_tokens, sum(cache_write_tokens)::text as cache_write_tokens,
    sum(output_tokens)::text as output_tokens, sum(reasoning_tokens)::text as reasoning_tokens, sum(cost)::text as cost`;
  const dims = `coalesce(team, '') as team, coalesce(project, '') as project, coalesce(feature, '') as feature`;
  const tail = `provider, model, coalesce(api_key_id, '') as api_key_id`;
  const expected = await db.rows<Record<string, string>>(
    sql.raw(`
    select 'hour' as grain, to_char(ts at time zone 'UTC', 'YYYY-MM-DD HH24') || ':00:00' as bucket, ${dims}, '' as "user", ${tail}, ${sums}
      from usage_events group by 1, 2, 3, 4, 5, 6, 7, 8, 9
    union all
    select 'day', to_char(ts at time zone 'UTC', 'YYYY-MM-DD') || ' 00:00:00', ${dims}, '', ${tail}, ${sums}
      from usage_events group by 1, 2, 3, 4, 5, 6, 7, 8, 9
    union all
    select 'user-day', to_char(ts at time zone 'UTC', 'YYYY-MM-DD') || ' 00:00:00', ${dims}, coalesce("user", ''), ${tail}, ${sums}
      from usage_events group by 1, 2, 3, 4, 5, 6, 7, 8, 9
    union all
    select 'user-month', to_char(ts at time zone 'UTC', 'YYYY-MM') || '-01 00:00:00', '', '', '', coalesce("user", ''), '', '', '', ${sums}
      from usage_events group by 1, 2, 3, 4, 5, 6, 7, 8, 9`),
  );
  const actual = await db.rows<Record<string, string>>(sql`
    select grain, to_char(bucket at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') as bucket, team, project, feature, "user",
      provider, model, api_key_id, requests::text, errors::text, unpriced::text,
      (input_tokens::numeric)::text as input_tokens, (cached_input_tokens::numeric)::text as cached_input_tokens,
      (cache_write_tokens::numeric)::text as cache_write_tokens, (output_tokens::numeric)::text as output_tokens,
      (reasoning_tokens::numeric)::text as reasoning_tokens, (cost::numeric)::text as cost
    from ${ALL_ROLLUPS}`);
  const norm = (rows: Record<string, string>[]) =>
    rows.map((r) => JSON.stringify(Object.keys(r).sort().map((k) => [k, String(r[k])]))).sort();
  assert.ok(actual.length > 0, "there are rollups to compare");
  assert.deepEqual(norm(actual), norm(expected));
}
