import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { SQL } from "drizzle-orm";
import { type PgDatabase, type PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import * as schema from "./schema.ts";
import { STARTUP_PADDING, reconnectDelaySeconds } from "./reconnect.ts";
import { guardTransactions } from "./transaction-close-guard.ts";
import { letTypeFetchDropsPass } from "./type-fetch-drops.ts";

/** The drizzle handle every part uses; which driver is behind it is this folder's business. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  readonly db: Db;
  readonly driver: "pglite" | "postgres";
  /** Runs raw SQL and returns its rows, whichever driver answers. */
  rows<T extends Record<string, unknown>>(query: SQL): Promise<T[]>;
  /**
   * Runs one statement whose text never changes, with its parameters: no query builder on the way
   * (drizzle's walk of a large statement cost more per batch than making its parameters). On
   * PostgreSQL each connection prepares it once and runs it again by name, with a generic plan:
   * drizzle's execute() sends statements unnamed, and Postgres spent about 4 ms planning the
   * recorder's write for every batch of 1,000 events, a tenth of its CPU for them. Only for hot
   * statements: each stays prepared on every connection that ran it.
   */
  prepared<T extends Record<string, unknown>>(text: string, params: readonly (string | number | null)[]): Promise<T[]>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres:// URL; without one the embedded PGlite is used. */
  url?: string;
  /** PGlite data folder; "memory://" keeps it in memory. */
  dataDir: string;
  maxConnections?: number;
  /** Opening a connection gives up after this long (postgres.js takes whole seconds, rounded up). */
  connectTimeoutMs?: number;
  /** Postgres's own statement_timeout for every connection; 0 or unset leaves the server's. */
  statementTimeoutMs?: number;
}

export function rowsOf<T>(result: unknown): T[] {
  // postgres.js answers an array of rows, PGlite an object with `rows`.
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

function wrap(db: Db, driver: Database["driver"], prepared: Database["prepared"], close: () => Promise<void>): Database {
  return {
    db,
    driver,
    rows: async <T extends Record<string, unknown>>(query: SQL) => rowsOf<T>(await db.execute(query)),
    prepared,
    close,
  };
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.url) {
    const client = postgres(opts.url, {
      max: opts.maxConnections ?? 10,
      onnotice: () => {},
      connect_timeout: Math.ceil((opts.connectTimeoutMs ?? 10_000) / 1000),
      backoff: reconnectDelaySeconds,
      // Slow statements are cancelled by the server; a server that does not answer at all is caught
      // by the callers' own deadlines (recorder writes, /readyz, shutdown). Read committed whatever
      // the database's own default: the code waits for a lock (a budget's row, the migrations'
      // advisory lock) and then reads what the process that held it committed, which a snapshot
      // taken before the wait (repeatable read) would not show: two gateways would each be granted
      // a budget's whole remainder, or apply the same migrations.
      connection: {
        ...STARTUP_PADDING,
        default_transaction_isolation: "read committed",
        ...(opts.statementTimeoutMs ? { statement_timeout: opts.statementTimeoutMs } : {}),
      },
    });
    guardTransactions(client);
    letTypeFetchDropsPass();
    const db = drizzlePostgres({ client, schema }) as unknown as Db;
    const prepared = async <T>(text: string, params: readonly (string | number | null)[]) =>
      (await client.unsafe(text, params as (string | number | null)[], { prepare: true })) as unknown as T[];
    return wrap(db, "postgres", prepared, () => client.end({ timeout: 5 }));
  }
  let dataDir = opts.dataDir;
  if (!dataDir.startsWith("memory://")) {
    dataDir = join(opts.dataDir, "pgdata");
    mkdirSync(dataDir, { recursive: true });
  }
  // Loaded only when used: the WebAssembly Postgres costs ~50 MB of memory a gateway on Postgres never needs.
  const [{ PGlite }, { drizzle: drizzlePglite }] = await Promise.all([import("@electric-sql/pglite"), import("drizzle-orm/pglite")]);
  const client = await PGlite.create(dataDir);
  const db = drizzlePglite({ client, schema }) as unknown as Db;
  const prepared = async <T>(text: string, params: readonly (string | number | null)[]) => (await client.query<T>(text, [...params])).rows;
  return wrap(db, "pglite", prepared, () => client.close());
}
