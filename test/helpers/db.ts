import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { type Database, openDatabase } from "../../src/db/connection.ts";
import { migrate } from "../../src/db/migrate.ts";

/**
 * A migrated database of its own for one test file: in-memory PGlite by default, or, with
 * TEST_DATABASE_URL, a throwaway database on that server, dropped again on close.
 */
export async function openTestDatabase(): Promise<Database> {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) {
    const database = await openDatabase({ dataDir: "memory://" });
    await migrate(database);
    return database;
  }
  const name = `tollgate_t_${randomBytes(6).toString("hex")}`;
  await asAdmin(url, (admin) => admin.unsafe(`create database ${name}`));
  const target = new URL(url);
  target.pathname = `/${name}`;
  const database = await openDatabase({ url: target.toString(), dataDir: "" });
  await migrate(database);
  return {
    ...database,
    close: async () => {
      await database.close();
      await asAdmin(url, async (admin) => {
        // A connection a test forgot to close would otherwise make the drop fail.
        await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${name}`;
        await admin.unsafe(`drop database if exists ${name}`);
      });
    },
  };
}

async function asAdmin(url: string, work: (admin: postgres.Sql) => Promise<unknown>): Promise<void> {
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await work(admin);
  } finally {
    await admin.end({ timeout: 5 });
  }
}
