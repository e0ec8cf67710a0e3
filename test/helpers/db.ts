import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type Database, openDatabase } from "../../src/db/connection.ts";
import { migrate } from "../../src/db/migrate.ts";
import { SCRATCH, TEMPLATE_DB_ENV, asAdmin, databaseUrl, dropDatabase, seedDataDir } from "./template.ts";

/**
 * A migrated database of its own for one test file: PGlite in a temporary data folder copied from
 * the migrated template by default, or, with TEST_DATABASE_URL, a throwaway database on that server
 * (copied from the suite runner's template database when there is one), dropped again on close.
 * migrate() still runs on it: on a copy of the template it finds everything applied, as it should.
 */
export async function openTestDatabase(): Promise<Database> {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) {
    const dataDir = mkdtempSync(join(SCRATCH, "tollgate-db-"));
    // The copy lives in memory (/dev/shm): a file that fails before closing its database must not leave it there.
    const discard = () => rmSync(dataDir, { recursive: true, force: true });
    process.once("exit", discard);
    await seedDataDir(dataDir);
    const database = await openDatabase({ dataDir });
    await migrate(database);
    return {
      ...database,
      close: async () => {
        await database.close();
        process.off("exit", discard);
        discard();
      },
    };
  }
  const name = `tollgate_t_${randomBytes(6).toString("hex")}`;
  const template = process.env[TEMPLATE_DB_ENV];
  await asAdmin(url, (admin) => admin.unsafe(`create database ${name}${template ? ` template ${template}` : ""}`));
  const database = await openDatabase({ url: databaseUrl(url, name), dataDir: "" });
  await migrate(database);
  return {
    ...database,
    close: async () => {
      await database.close();
      // A connection a test forgot to close would otherwise make the drop fail.
      await dropDatabase(url, name);
    },
  };
}
