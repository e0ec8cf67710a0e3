import { sql } from "drizzle-orm";
import { type Database, openDatabase } from "../src/db/connection.ts";
import { migrate } from "../src/db/migrate.ts";
import type { Dimension } from "../src/ledger/event.ts";
import { resolvePeriod } from "../src/ledger/period.ts";
import { SUM_COLUMNS, querySpend } from "../src/ledger/spend.ts";
import { freshDatabase, percentile } from "./postgres.ts";

/**
 * Spend queries over a ledger of EVENTS events in the current month (UTC), so `this-month`
 * covers every one of them, and as many again in the previous month's first part, as long as the
 * current month has run: the previous period `this-month` compares with is as full as the
 * current one. The ledger is filled in SQL, rows and rollups alike, with the same sums the
 * recorder keeps: this measures the query, not the writes (the ingest bench measures those).
 * Attribution is nested as in a company: 96 features in 48 projects in 12 teams, each feature on
 * 2 of 6 models and one of 24 keys, 5,000 end users.
 */
export interface SpendResult {
  events: number;
  rollupRows: Record<string, number>;
  fillSeconds: number;
  queries: Record<string, { runs: number; p50: number; p95: number; p99: number }>;
}

const MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "claude-haiku-4-5", "gemini-2.5-flash", "gemini-2.5-pro"];
const PROVIDERS = ["openai", "openai", "anthropic", "anthropic", "google", "google"];

/** A literal array of our own constant names (never user input). */
const textArray = (items: string[]) => sql.raw(`(array[${items.map((i) => `'${i}'`).join(", ")}])`);

/**
 * Fills (and migrates) the database at `url` with `events` events spread evenly over each [start, end), rollups included.
 * Built for 10 M events and more on a busy machine: ids zero-padded so the primary key is appended
 * to in order, the hour and user-day grains summed one UTC day at a time (each day's groups fit in
 * memory), the day grain summed from the hour grain and the user-month grain from the user-day
 * grain, on one connection without waiting for each commit's flush.
 */
export async function fill(url: string, events: number, ranges: [start: Date, end: Date][]): Promise<void> {
  const database = await openDatabase({ url, dataDir: "", maxConnections: 1 });
  try {
    await migrate(database);
    await database.db.execute(sql`set synchronous_commit = off`);
    await database.db.execute(sql`set work_mem = '256MB'`);
    for (const [r, [start, end]] of ranges.entries()) await fillRange(database, events, start, end, `r${r}-`);
    await database.db.execute(sql`vacuum analyze usage_events`);
    for (const [start, end] of ranges)
      for (let day = Math.floor(start.getTime() / DAY_MS) * DAY_MS; day < end.getTime(); day += DAY_MS) {
        const [from, to] = [new Date(day).toISOString(), new Date(day + DAY_MS).toISOString()];
        await rollup(database, "hour", from, to);
        await rollup(database, "user-day", from, to);
      }
    await database.db.execute(sql`
      insert into usage_rollups (grain, bucket, team, project, feature, "user", provider, model, api_key_id, ${SUM_COLUMNS})
      select 'day', date_trunc('day', bucket, 'UTC'), team, project, feature, '', provider, model, api_key_id, ${ROLLUP_SUMS}
      from usage_rollups where grain = 'hour' group by 2, 3, 4, 5, 7, 8, 9`);
    await database.db.execute(sql`
      insert into usage_user_months (bucket, "user", ${SUM_COLUMNS})
      select date_trunc('month', bucket, 'UTC'), "user", ${ROLLUP_SUMS}
      from usage_user_days group by 1, 2`);
    await database.db.execute(sql`vacuum analyze usage_rollups`);
    await database.db.execute(sql`vacuum analyze usage_user_days`);
    await database.db.execute(sql`vacuum analyze usage_user_months`);
  } finally {
    await database.close();
  }
}

const DAY_MS = 86_400_000;

/** Where each grain the fill sums from events goes: the table and its leading key columns, and their values from an event. */
const GRAINS = {
  hour: { into: sql`usage_rollups (grain, bucket, "user"`, keys: sql`'hour', date_trunc('hour', ts, 'UTC'), ''`, width: 3 },
  "user-day": { into: sql`usage_user_days (bucket, "user"`, keys: sql`date_trunc('day', ts, 'UTC'), coalesce("user", '')`, width: 2 },
};

/** The sums of one grain's rows from the events of [from, to), keyed by its leading keys and the rest of the attribution ('' for none). */
async function rollup(database: Database, grain: keyof typeof GRAINS, from: string, to: string): Promise<void> {
  const { into, keys, width } = GRAINS[grain];
  await database.db.execute(sql`
    insert into ${into}, team, project, feature, provider, model, api_key_id, ${SUM_COLUMNS})
    select ${keys}, coalesce(team, ''), coalesce(project, ''), coalesce(feature, ''), provider, model, coalesce(api_key_id, ''),
      count(*), count(*) filter (where status <> 'ok'), count(*) filter (where not priced), sum(input_tokens),
      sum(cached_input_tokens), sum(cache_write_tokens), sum(output_tokens), sum(reasoning_tokens), sum(cost)
    from usage_events where ts >= ${from}::timestamptz and ts < ${to}::timestamptz
    group by ${sql.raw(Array.from({ length: width + 6 }, (_, i) => i + 1).join(", "))}`);
}

/** SUM_COLUMNS summed, in its order. */
const ROLLUP_SUMS = sql.raw("sum(requests), sum(errors), sum(unpriced), sum(input_tokens), sum(cached_input_tokens), sum(cache_write_tokens), sum(output_tokens), sum(reasoning_tokens), sum(cost)");

async function fillRange(database: Database, events: number, start: Date, end: Date, prefix: string): Promise<void> {
  const chunk = 1_000_000;
  for (let from = 0; from < events; from += chunk) {
    const to = Math.min(events, from + chunk) - 1;
    await database.db.execute(sql`
      insert into usage_events (source, id, ts, provider, model, input_tokens, cached_input_tokens,
        output_tokens, cost, priced, status, team, project, feature, "user", api_key_id)
      select 'bench', ${prefix}::text || lpad(g::text, 10, '0'),
        ${start.toISOString()}::timestamptz + (g::float8 / ${events}) * (${end.toISOString()}::timestamptz - ${start.toISOString()}::timestamptz),
        ${textArray(PROVIDERS)}[1 + m], ${textArray(MODELS)}[1 + m],
        1000 + g % 5000, case when g % 3 = 0 then 500 else 0 end, 100 + g % 700,
        (1000 + g % 5000) * 2500000 + (100 + g % 700) * 10000000, true,
        case when g % 100 = 0 then 'error' else 'ok' end,
        'team-' || (g % 96) % 12, 'project-' || (g % 96) % 48, 'feature-' || g % 96,
        'user-' || (g * 7919) % 5000, 'key-' || (g % 96) % 24
      from generate_series(${from}::bigint, ${to}::bigint) g,
        lateral (select ((g % 96) + ((g / 96) % 2) * 3) % 6 as m) pick`);
  }
}

/** This month so far, and the same span of the previous month: what `this-month` compares. */
export function ledgerRanges(now: Date): [Date, Date][] {
  const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const previousStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return [
    [monthStart, now],
    [previousStart, new Date(previousStart.getTime() + (now.getTime() - monthStart.getTime()))],
  ];
}

export async function benchSpend(opts: { events: number; runs: number; reuse: boolean }): Promise<SpendResult> {
  const name = `tollgate_bench_spend_${opts.events}`;
  const url = opts.reuse ? (await import("./postgres.ts")).SERVER_URL.replace(/\/[^/]*$/, `/${name}`) : await freshDatabase(name);
  const started = performance.now();
  if (!opts.reuse) await fill(url, opts.events, ledgerRanges(new Date()));
  const fillSeconds = (performance.now() - started) / 1000;

  const database = await openDatabase({ url, dataDir: "" });
  try {
    const rollups = await database.rows<{ grain: string; n: string }>(sql`select grain, count(*)::text as n from usage_rollups group by grain union all select 'user-day', count(*)::text from usage_user_days union all select 'user-month', count(*)::text from usage_user_months`);
    const cases: [string, string, Dimension | undefined, Partial<Record<Dimension, string>>, string][] = [
      ["this-month by team", "this-month", "team", {}, "UTC"],
      ["this-month by model team:team-3", "this-month", "model", { team: "team-3" }, "UTC"],
      ["this-month by team (Europe/Berlin)", "this-month", "team", {}, "Europe/Berlin"],
      ["last-7d by feature", "last-7d", "feature", {}, "UTC"],
      ["this-month by user", "this-month", "user", {}, "UTC"],
    ];
    const queries: SpendResult["queries"] = {};
    for (const [label, periodText, by, filters, timeZone] of cases) {
      const resolved = resolvePeriod(periodText, { now: new Date(), timeZone });
      if (!resolved.ok) throw new Error(resolved.error.message);
      const times: number[] = [];
      const runs = label.includes("by user") ? Math.min(20, opts.runs) : opts.runs;
      for (let i = 0; i < runs + 3; i++) {
        const t0 = performance.now();
        await querySpend(database, { period: resolved.period, by, filters });
        if (i >= 3) times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      const round = (n: number) => Math.round(n * 10) / 10;
      queries[label] = { runs, p50: round(percentile(times, 50)), p95: round(percentile(times, 95)), p99: round(percentile(times, 99)) };
    }
    return { events: opts.events, rollupRows: Object.fromEntries(rollups.map((r) => [r.grain, Number(r.n)])), fillSeconds: Math.round(fillSeconds), queries };
  } finally {
    await database.close();
  }
}
