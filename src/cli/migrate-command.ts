import { openDatabase } from "../db/connection.ts";
import { migrate } from "../db/migrate.ts";
import type { Command } from "./commands.ts";

/** `tollgate migrate`: applies what the database lacks, on PostgreSQL or the data folder's PGlite. */
export const migrateCommand: Command = async (ctx) => {
  const database = await openDatabase({ url: ctx.config.DATABASE_URL, dataDir: ctx.config.TOLLGATE_DATA_DIR });
  try {
    const applied = await migrate(database);
    process.stdout.write(`${applied.length > 0 ? `applied ${applied.join(", ")}` : "the database is up to date"}\n`);
  } finally {
    await database.close();
  }
  return 0;
};
