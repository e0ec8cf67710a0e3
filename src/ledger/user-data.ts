/**
 * Data rights for one end user: export of their usage events and erasure of them with the
 * rollups corrected. usage_events has no index on the user, so both walk the UTC days the
 * user-day rollups say the user was active, reading each day through the time index.
 */
import { sql } from "drizzle-orm";
import { audit } from "../audit/log.ts";
import { type Database, rowsOf } from "../db/connection.ts";
import { picoToDecimalString } from "../pricing/money.ts";
import { foldAll } from "./fold.ts";
import { ROLLUP_SOURCE_COLUMNS, type RollupSourceRow, rollupRows, rollupSourceOf, upsertRollups } from "./rollup-delta.ts";

/** One exported event: the usage webhook's field names, money as exact decimal USD. */
export interface ExportedEvent {
  source: string;
  id: string;
  timestamp: string;
  provider: string;
  model: string;
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  cache_write_1h_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  service_tier: string;
  cost_usd: string;
  priced: boolean;
  reported_cost_usd: string | null;
  latency_ms: number | null;
  status: string;
  team: string | null;
  project: string | null;
  feature: string | null;
  user: string;
  session: string | null;
  api_key_id: string | null;
  tags: Record<string, string>;
  request_id: string | null;
  received_at: string;
}

const DAY = sql.raw("interval '1 day'");
/** Microsecond ISO text: exact for the keyset (a JS Date stops at milliseconds) and readable in the export. */
const iso = (column: string) => sql.raw(`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`);

/**
 * UTC days (as ISO text) on which the user has usage, oldest first. What is queued for the user
 * grains is folded first, so a day only just written is among them.
 */
async function activeDays(database: Database, user: string): Promise<string[]> {
  await foldAll(database);
  const rows = await database.rows<{ day: string }>(sql`
    select distinct ${iso("bucket")} as day from usage_user_days where "user" = ${user} order by 1`);
  return rows.map((r) => r.day);
}

/** What the user-day rollups hold of one end user: enough to know it is the right one before exporting or erasing. */
export interface UserFootprint {
  /** Events as the rollups count them (retention may have deleted some of their events). */
  requests: number;
  /** pico-USD. */
  cost: bigint;
  first_day: string | null;
  last_day: string | null;
}

export async function userFootprint(database: Database, user: string): Promise<UserFootprint> {
  await foldAll(database);
  const [row] = await database.rows<{ requests: string | null; cost: string | null; first_day: string | null; last_day: string | null }>(sql`
    select sum(requests)::text as requests, sum(cost)::text as cost,
      to_char(min(bucket) at time zone 'UTC', 'YYYY-MM-DD') as first_day, to_char(max(bucket) at time zone 'UTC', 'YYYY-MM-DD') as last_day
    from usage_user_days where "user" = ${user}`);
  return { requests: Number(row?.requests ?? 0), cost: BigInt(row?.cost ?? 0), first_day: row?.first_day ?? null, last_day: row?.last_day ?? null };
}

type EventRow = Record<string, unknown> & { ts: string; source: string; id: string };

function exported(r: EventRow): ExportedEvent {
  const whole = (v: unknown) => Number(v);
  return {
    source: r.source,
    id: r.id,
    timestamp: r.ts,
    provider: r.provider as string,
    model: r.model as string,
    input_tokens: whole(r.input_tokens),
    cached_input_tokens: whole(r.cached_input_tokens),
    cache_write_tokens: whole(r.cache_write_tokens),
    cache_write_1h_tokens: whole(r.cache_write_1h_tokens),
    output_tokens: whole(r.output_tokens),
    reasoning_tokens: whole(r.reasoning_tokens),
    service_tier: r.service_tier as string,
    cost_usd: picoToDecimalString(BigInt(r.cost as string)),
    priced: r.priced as boolean,
    reported_cost_usd: r.reported_cost === null ? null : picoToDecimalString(BigInt(r.reported_cost as string)),
    latency_ms: r.latency_ms === null ? null : whole(r.latency_ms),
    status: r.status as string,
    team: r.team as string | null,
    project: r.project as string | null,
    feature: r.feature as string | null,
    user: r.user as string,
    session: r.session as string | null,
    api_key_id: r.api_key_id as string | null,
    tags: (typeof r.tags === "string" ? JSON.parse(r.tags) : r.tags) as Record<string, string>,
    request_id: r.request_id as string | null,
    received_at: r.received_at as string,
  };
}

/**
 * The user's events in time order, one page at a time: a keyset on (ts, source, id) within each
 * active day, so memory holds one page whatever the user's history.
 */
export async function* userEventPages(database: Database, user: string, pageSize = 1000): AsyncGenerator<ExportedEvent[]> {
  for (const day of await activeDays(database, user)) {
    let after: EventRow | undefined;
    for (;;) {
      const rows: EventRow[] = await database.rows<EventRow>(sql`
        select ${iso("ts")} as ts, source, id, provider, model, input_tokens::text, cached_input_tokens::text,
          cache_write_tokens::text, cache_write_1h_tokens::text, output_tokens::text, reasoning_tokens::text,
          service_tier, cost::text, priced, reported_cost::text, latency_ms, status, team, project, feature,
          "user", session, api_key_id, tags::text, request_id, ${iso("received_at")} as received_at
        from usage_events
        where "user" = ${user} and ts >= ${day}::timestamptz and ts < ${day}::timestamptz + ${DAY}
          ${after ? sql`and (ts, source, id) > (${after.ts}::timestamptz, ${after.source}, ${after.id})` : sql``}
        order by ts, source, id
        limit ${pageSize}`);
      if (rows.length > 0) yield rows.map(exported);
      if (rows.length < pageSize) break;
      after = rows[rows.length - 1];
    }
  }
}

export interface Erasure {
  user: string;
  events: number;
  batches: number;
  /** User-day rollup rows left by events that retention had already deleted; removed too. */
  rollup_rows_without_events: number;
}

/**
 * Erases one user's usage events. Each batch deletes up to `batchSize` events and takes exactly
 * what they contributed off the rollups at every grain in the same transaction, then drops rollup
 * rows left empty, in a transaction of its own: locks stay short for the recorder, and an
 * interrupted erasure leaves every rollup equal to the remaining events; running it again
 * finishes it. The last transaction removes the user's user-day and user-month rows that no event backs any
 * more (retention deleted their events; the hour and day grains keep those amounts without a
 * user) and writes the audit entry: counts only, never the events' content.
 */
export async function eraseUserUsage(database: Database, user: string, actor: string, batchSize = 5000): Promise<Erasure> {
  let events = 0;
  let batches = 0;
  for (const day of await activeDays(database, user)) {
    for (;;) {
      const deleted = await database.db.transaction(async (tx) => {
        const rows = rowsOf<RollupSourceRow & { fold_batch: string | null }>(
          await tx.execute(sql`
            delete from usage_events where (source, id) in (
              select source, id from usage_events
              where "user" = ${user} and ts >= ${day}::timestamptz and ts < ${day}::timestamptz + ${DAY}
              order by source, id
              limit ${batchSize}
            )
            returning ${ROLLUP_SOURCE_COLUMNS}, fold_batch::text as fold_batch`),
        );
        if (rows.length === 0) return 0;
        const gone = rows.map(rollupSourceOf);
        // Events a fold has not taken yet are in no rollup: nothing to take away for them. Their
        // queue rows are locked first, so a fold under way is waited for (and then they are
        // folded) and no fold takes them until this commits (and then they are gone).
        const batches = [...new Set(rows.flatMap((r) => (r.fold_batch === null ? [] : [r.fold_batch])))];
        const queued = new Set(
          batches.length === 0
            ? []
            : rowsOf<{ batch: string }>(
                await tx.execute(sql`select batch::text from usage_rollup_queue where batch in (${sql.join(batches.map((b) => sql`${b}::bigint`), sql`, `)}) order by batch for update`),
              ).map((r) => r.batch),
        );
        const upsert = upsertRollups(rollupRows(gone.filter((_, i) => rows[i]!.fold_batch === null || !queued.has(rows[i]!.fold_batch!)), -1));
        if (upsert) await tx.execute(upsert);
        const times = gone.map((e) => e.ts.getTime());
        const first = new Date(Math.min(...times));
        // Rows whose every event is gone. Rollups only ever count real events, so none is zero otherwise.
        const [from, to] = [first.toISOString(), new Date(Math.max(...times)).toISOString()];
        await tx.execute(sql`
          delete from usage_rollups where grain in ('hour', 'day') and requests = 0
            and bucket >= date_trunc('day', ${from}::timestamptz, 'UTC') and bucket <= ${to}::timestamptz`);
        await tx.execute(sql`
          delete from usage_user_days where "user" = ${user} and requests = 0
            and bucket >= date_trunc('day', ${from}::timestamptz, 'UTC') and bucket <= ${to}::timestamptz`);
        await tx.execute(sql`
          delete from usage_user_months where "user" = ${user} and requests = 0
            and bucket >= date_trunc('month', ${from}::timestamptz, 'UTC') and bucket <= ${to}::timestamptz`);
        return gone.length;
      });
      if (deleted === 0) break;
      events += deleted;
      batches += 1;
      if (deleted < batchSize) break;
    }
  }
  return database.db.transaction(async (tx) => {
    const orphans = rowsOf<{ n: number }>(
      await tx.execute(sql`
        with removed as (
          delete from usage_user_days r where "user" = ${user} and not exists (
            select 1 from usage_events e
            where e."user" = ${user} and e.ts >= r.bucket and e.ts < r.bucket + ${DAY}
              and coalesce(e.team, '') = r.team and coalesce(e.project, '') = r.project
              and coalesce(e.feature, '') = r.feature and e.provider = r.provider and e.model = r.model
              and coalesce(e.api_key_id, '') = r.api_key_id)
          returning 1
        ),
        removed_months as (
          delete from usage_user_months r where "user" = ${user} and not exists (
            select 1 from usage_events e
            where e."user" = ${user} and e.ts >= r.bucket and e.ts < (r.bucket at time zone 'UTC' + interval '1 month') at time zone 'UTC')
        )
        select count(*)::int as n from removed`),
    )[0]!.n;
    const erasure: Erasure = { user, events, batches, rollup_rows_without_events: orphans };
    await audit(tx, { actor, action: "erase", entity: "usage", entityId: user, after: { events, batches, rollup_rows_without_events: orphans } });
    return erasure;
  });
}
