import { createHash } from "node:crypto";
import { sql } from "drizzle-orm";
import { type Database, rowsOf } from "./connection.ts";

/** A lock name as the 64-bit key Postgres advisory locks take. */
export const lockKey = (name: string) => createHash("sha256").update(name).digest().readBigInt64BE(0).toString();

/** Names held through each embedded database by this process. */
const heldInProcess = new WeakMap<object, Set<string>>();

export type Locked<T> = { ran: true; value: T } | { ran: false };

/**
 * Runs `work` while holding the advisory lock `name`, or answers `{ ran: false }` at once when
 * someone else holds it. On Postgres the lock is a transaction lock, held by a transaction left
 * open on a connection of its own for the run, so `work` may use the pool and open its own
 * transactions meanwhile; it ends with that transaction, or with its connection. The embedded
 * PGlite has one session, in which advisory locks are re-entrant, and only this process can open
 * it: there the lock is a name held in memory.
 *
 * Not postgres.js's reserve(): its pool loses a waiting reserve when the connection it waits on
 * fails to reconnect and a later attempt succeeds (porsager/postgres#1195, 3.4.9), so a run asked
 * for during a database outage never ended, and node-cron, skipping the ticks of a run under way,
 * never ran that job again; nor did a shutdown end. A transaction's `begin` is an ordinary query:
 * it fails with the connection or runs once the database is back.
 */
export async function withAdvisoryLock<T>(database: Database, name: string, work: () => Promise<T>): Promise<Locked<T>> {
  if (database.driver === "pglite") {
    const client = (database.db as unknown as { $client: object }).$client;
    const held = heldInProcess.get(client) ?? new Set<string>();
    heldInProcess.set(client, held);
    if (held.has(name)) return { ran: false };
    held.add(name);
    try {
      return { ran: true, value: await work() };
    } finally {
      held.delete(name);
    }
  }
  let running: Promise<T> | undefined;
  try {
    return await database.db.transaction(async (tx): Promise<Locked<T>> => {
      const [row] = rowsOf<{ locked: boolean }>(await tx.execute(sql`select pg_try_advisory_xact_lock(${lockKey(name)}::bigint) as locked`));
      if (!row?.locked) return { ran: false };
      running = work();
      return { ran: true, value: await running };
    });
  } catch (err) {
    // The lock's connection can break while work goes on over the pool: the run ends with the work.
    await running?.catch(() => {});
    throw err;
  }
}
