import { sql } from "drizzle-orm";
import type { Database } from "../db/connection.ts";

const DAY_MS = 86_400_000;

export interface RetentionRun {
  /** Events older than this were deleted. */
  cutoff: Date;
  deleted: number;
  batches: number;
}

/**
 * The retention job: deletes raw usage events older than `retentionDays` (TOLLGATE_RETENTION_DAYS;
 * undefined keeps them forever) in statements of `batchSize`, oldest first, each committing on
 * its own so no long lock holds back the recorder. Rollups stay as they are: spend reports keep
 * every period; only the parts of an hour that rollups cannot answer (a half-hour time zone's edge)
 * lose what was deleted. Events not yet folded into the rollups (fold.ts) wait for their fold.
 */
export async function deleteExpiredEvents(database: Database, retentionDays: number | undefined, now: Date, batchSize = 5000): Promise<RetentionRun | undefined> {
  if (retentionDays === undefined) return undefined;
  const cutoff = new Date(now.getTime() - retentionDays * DAY_MS);
  let deleted = 0;
  let batches = 0;
  for (;;) {
    const [row] = await database.rows<{ n: number }>(sql`
      with gone as (
        delete from usage_events where (source, id) in (
          select source, id from usage_events where ts < ${cutoff.toISOString()}::timestamptz
            and (fold_batch is null or fold_batch <> all(array(select batch from usage_rollup_queue)))
          order by ts limit ${batchSize}
        )
        returning 1
      )
      select count(*)::int as n from gone`);
    const n = row?.n ?? 0;
    if (n === 0) break;
    deleted += n;
    batches += 1;
    if (n < batchSize) break;
  }
  return { cutoff, deleted, batches };
}
