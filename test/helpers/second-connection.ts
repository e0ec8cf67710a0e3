import { sql } from "drizzle-orm";
import { type Database, openDatabase } from "../../src/db/connection.ts";

/**
 * Another way into the same database, as a second gateway process would have: on Postgres a pool
 * of its own (separate sessions, so advisory locks and row locks really contend); the embedded
 * PGlite has one session per process, so there it is the same handle, left open on close.
 */
export async function secondConnection(database: Database): Promise<Database> {
  if (database.driver === "pglite") return { ...database, close: async () => {} };
  const [row] = await database.rows<{ name: string }>(sql`select current_database() as name`);
  const url = new URL(process.env.TEST_DATABASE_URL!);
  url.pathname = `/${row!.name}`;
  return openDatabase({ url: url.toString(), dataDir: "" });
}
