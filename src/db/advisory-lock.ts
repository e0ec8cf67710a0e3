import { createHash } from "node:crypto";
import type postgres from "postgres";
import type { Database } from "./connection.ts";

/** A lock name as the 64-bit key Postgres advisory locks take. */
export const lockKey = (name: string) => createHash("sha256").update(name).digest().readBigInt64BE(0).toString();

/** Names held through each embedded database by this process. */
const heldInProcess = new WeakMap<object, Set<string>>();

export type Locked<T> = { ran: true; value: T } | { ran: false };

/**
 * Runs `work` while holding the advisory lock `name`, or answers `{ ran: false }` at once when
 * someone else holds it. On Postgres the lock is a session lock on a connection reserved for the
 * run, so `work` may use the pool and open its own transactions meanwhile. The embedded PGlite has
 * one session, in which advisory locks are re-entrant, and only this process can open it: there
 * the lock is a name held in memory.
 */
export async function withAdvisoryLock<T>(database: Database, name: string, work: () => Promise<T>): Promise<Locked<T>> {
  const client = (database.db as unknown as { $client: object }).$client;
  if (database.driver === "pglite") {
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
  const connection = await (client as postgres.Sql).reserve();
  try {
    const key = lockKey(name);
    const [row] = await connection<{ locked: boolean }[]>`select pg_try_advisory_lock(${key}::bigint) as locked`;
    if (!row?.locked) return { ran: false };
    try {
      return { ran: true, value: await work() };
    } finally {
      await connection`select pg_advisory_unlock(${key}::bigint)`;
    }
  } finally {
    connection.release();
  }
}
