import { after, before } from "node:test";
import { sql } from "drizzle-orm";
import { type Database, openDatabase } from "../../src/db/connection.ts";
import { TcpCutter } from "../fakes/tcp-cutter.ts";
import { openTestDatabase } from "./db.ts";

export interface CuttableDatabase {
  /** The same database as the one given, reached through `cutter`: hand this to the code under test. */
  database: Database;
  /** Takes the network to Postgres away (cut) and gives it back (restore). */
  cutter: TcpCutter;
  close(): Promise<void>;
}

/**
 * A second connection pool to a test database on a real Postgres (TEST_DATABASE_URL), routed
 * through a TcpCutter so a test can stage an outage while it checks the results over the direct
 * connection it already has.
 */
export async function throughCutter(direct: Database, maxConnections = 4): Promise<CuttableDatabase> {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error("throughCutter needs TEST_DATABASE_URL: PGlite has no network to cut");
  const [row] = await direct.rows<{ name: string }>(sql`select current_database() as name`);
  const target = new URL(url);
  target.pathname = `/${row!.name}`;
  const cutter = await TcpCutter.start({ host: target.hostname, port: Number(target.port || 5432) });
  const database = await openDatabase({ url: cutter.url(target.toString()), dataDir: "", maxConnections });
  return {
    database,
    cutter,
    async close() {
      // postgres.js (3.4) waits out its whole end() timeout (5 s here) for a connection whose
      // reconnect failed during the outage and was not used since; one query on every connection
      // first (failing fast if the network is still cut) lets it end at once.
      await Promise.all(Array.from({ length: maxConnections }, () => database.rows(sql`select pg_sleep(0.02)`).catch(() => undefined)));
      await database.close();
      await cutter.close();
    },
  };
}

/** A test's skip reason where there is no real Postgres to cut the network to (false where there is). */
export const NEEDS_POSTGRES_TO_CUT = process.env.TEST_DATABASE_URL ? false : "needs TEST_DATABASE_URL: PGlite has no network to cut";

/**
 * For a test file about outages: its test database (`direct`) and the same one through a cutter
 * (`cuttable`, with `maxConnections`), opened before the file's tests and closed after them; on
 * PGlite, neither (the tests skip with NEEDS_POSTGRES_TO_CUT).
 */
export function databasesToCut(maxConnections: number): { direct: Database; cuttable: CuttableDatabase } {
  const held = {} as { direct: Database; cuttable: CuttableDatabase };
  before(async () => {
    if (NEEDS_POSTGRES_TO_CUT) return;
    held.direct = await openTestDatabase();
    held.cuttable = await throughCutter(held.direct, maxConnections);
  });
  after(async () => {
    await held.cuttable?.close();
    await held.direct?.close();
  });
  return held;
}
