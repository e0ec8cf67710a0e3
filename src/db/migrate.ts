import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { z } from "zod";
import { type Database, rowsOf } from "./connection.ts";

const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));
/** Arbitrary but fixed: every Tollgate process takes the same lock before migrating. */
const MIGRATION_LOCK = 7_243_001;

const Journal = z.object({ entries: z.array(z.object({ idx: z.number(), tag: z.string() })) });

/**
 * A line a migration file holds when gateways of the builds before it may keep serving on the
 * database it migrated (it adds a table, a nullable column or an index, and changes nothing those
 * builds write or read): they then neither refuse to start nor stop counting as ready, and several
 * gateways can be replaced one at a time. Part of the file, so of its hash: decided as it is written.
 */
export const OLDER_BUILDS_RUN = "-- tollgate: older builds keep running";

export interface Migration {
  tag: string;
  hash: string;
  statements: string[];
  /** The file holds OLDER_BUILDS_RUN; recorded with the migration, where the older builds read it. */
  olderBuildsRun?: boolean;
}

/** The migrations drizzle-kit generated, in order. */
export function pendingMigrationFiles(dir = MIGRATIONS_DIR): Migration[] {
  const journal = Journal.parse(JSON.parse(readFileSync(`${dir}meta/_journal.json`, "utf8")));
  return journal.entries
    .sort((a, b) => a.idx - b.idx)
    .map(({ tag }) => {
      const text = readFileSync(`${dir}${tag}.sql`, "utf8");
      return {
        tag,
        hash: createHash("sha256").update(text).digest("hex"),
        statements: text.split("--> statement-breakpoint").map((s) => s.trim()).filter(Boolean),
        olderBuildsRun: text.split("\n").some((line) => line.trim() === OLDER_BUILDS_RUN),
      };
    });
}

/** A migration file that differs from the one applied: the database and this build disagree on the schema. */
export class MigrationChangedError extends Error {
  readonly kind = "migration_changed";
}

/** The database holds migrations this build does not ship: a newer build migrated it. */
export class MigrationAheadError extends Error {
  readonly kind = "migration_ahead";
}

/**
 * Applies what has not been applied yet, all in one transaction under an advisory lock (the runner's
 * own table made ready before it, in a short one), so two processes starting together neither race
 * nor half-apply. A file changed after it was applied stops everything: its change would never
 * reach this database. So does a database a newer build migrated, unless each migration this build
 * does not know is marked OLDER_BUILDS_RUN: this one could write it in a way the newer schema no
 * longer reads (0017 moved the rollups to folds; an older gateway's writes would be lost to them),
 * so it does not start.
 */
export async function migrate(database: Database, migrations = shippedMigrations()): Promise<string[]> {
  await prepareRunsTable(database);
  return database.db.transaction(async (tx) => {
    await waitForTheLock(tx);
    const rows = rowsOf<AppliedRow & { hash: string }>(await tx.execute(sql`select tag, hash, older_builds_run from tollgate_migrations`));
    const ahead = newerThan(migrations, rows);
    if (ahead.length > 0) throw new MigrationAheadError(aheadMessage(ahead));
    const done = new Map(rows.map((r) => [r.tag, r.hash]));
    const applied: string[] = [];
    for (const m of migrations) {
      const hash = done.get(m.tag);
      if (hash !== undefined && hash !== m.hash)
        throw new MigrationChangedError(`migrations/${m.tag}.sql is not the file this database applied (sha256 ${hash.slice(0, 12)}…, the file has ${m.hash.slice(0, 12)}…): restore it and put the change in a new migration`);
      if (hash !== undefined) continue;
      for (const statement of m.statements) await tx.execute(sql.raw(statement));
      await tx.execute(sql`insert into tollgate_migrations (tag, hash, older_builds_run) values (${m.tag}, ${m.hash}, ${m.olderBuildsRun === true})`);
      applied.push(m.tag);
    }
    return applied;
  });
}

type Tx = Parameters<Parameters<Database["db"]["transaction"]>[0]>[0];

/** Serialises the processes that migrate one database, for the rest of the transaction. */
async function waitForTheLock(tx: Tx): Promise<void> {
  // A migration over a large ledger may run long, and waiting for another process's lock too: the
  // gateway's statement_timeout (TOLLGATE_DB_STATEMENT_TIMEOUT_MS) is for serving, not for this.
  await tx.execute(sql`set local statement_timeout = 0`);
  await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`);
}

/**
 * The runner's own table, made (or given the column that builds before OLDER_BUILDS_RUN lack) in a
 * transaction of its own: an ALTER keeps the table locked against every gateway's readiness probe
 * until its transaction ends, and the migrations' transaction may run long. The column is looked
 * up first, so a start that finds it takes no such lock at all.
 */
async function prepareRunsTable(database: Database): Promise<void> {
  await database.db.transaction(async (tx) => {
    await waitForTheLock(tx);
    await tx.execute(sql`create table if not exists tollgate_migrations (
      tag text primary key, hash text not null, applied_at timestamptz not null default now(),
      older_builds_run boolean not null default false)`);
    if (rowsOf(await tx.execute(sql`select 1 from information_schema.columns where table_schema = current_schema() and table_name = 'tollgate_migrations' and column_name = 'older_builds_run'`)).length === 0)
      await tx.execute(sql`alter table tollgate_migrations add column older_builds_run boolean not null default false`);
  });
}

/** A row of tollgate_migrations as this build reads it. */
type AppliedRow = { tag: string; older_builds_run: boolean };

/**
 * Applied migrations this build does not ship and may not run beside (not marked OLDER_BUILDS_RUN):
 * tags sort in order (a zero-padded number first), so one past this build's last is a newer build's.
 */
function newerThan(shipped: readonly Migration[], applied: readonly AppliedRow[]): string[] {
  const last = shipped.at(-1)?.tag ?? "";
  return applied.filter((row) => row.tag > last && !row.older_builds_run).map((row) => row.tag).sort();
}

const aheadMessage = (ahead: readonly string[]) =>
  `this database was migrated by a newer Tollgate (${ahead.join(", ")} is not in this build): run that version or a newer one`;

/**
 * Where the database stands against this build's migrations (for /readyz): all applied; some still
 * to apply (a start under way); or migrated by a newer build since this one started, which
 * migrate() would refuse at a start for the same reason, so a running gateway stops counting as
 * ready rather than keep serving against a schema it does not know. Newer migrations marked
 * OLDER_BUILDS_RUN leave it applied: it keeps serving while the gateways are replaced one by one.
 */
export type MigrationState = { state: "applied" } | { state: "pending" } | { state: "ahead"; detail: string };

export async function migrationState(database: Database, migrations = shippedMigrations()): Promise<MigrationState> {
  let applied: AppliedRow[];
  try {
    applied = await database.rows<AppliedRow>(sql`select tag, older_builds_run from tollgate_migrations`);
  } catch {
    return { state: "pending" };
  }
  const ahead = newerThan(migrations, applied);
  if (ahead.length > 0) return { state: "ahead", detail: aheadMessage(ahead) };
  const done = new Set(applied.map((row) => row.tag));
  return migrations.every((m) => done.has(m.tag)) ? { state: "applied" } : { state: "pending" };
}

let shipped: Migration[] | undefined;

/**
 * This build's migrations, read once: a start migrates and /readyz asks at every probe, and the
 * files (read and hashed synchronously) do not change under a running gateway.
 */
function shippedMigrations(): Migration[] {
  shipped ??= pendingMigrationFiles();
  return shipped;
}
