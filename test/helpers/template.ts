import { createHash, randomBytes } from "node:crypto";
import { accessSync, constants, cpSync, existsSync, readFileSync, readdirSync, renameSync, rmSync, statSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { openDatabase } from "../../src/db/connection.ts";
import { migrate } from "../../src/db/migrate.ts";

/*
 * Migrating a database costs little; creating one does not: a new PGlite data folder runs initdb in
 * WebAssembly, 10–50 s on a loaded 2-core machine. So the suite migrates one template and copies it:
 * a PGlite data folder kept between runs (named by what shaped it), and on Postgres a template
 * database made by the suite runner for its run.
 */

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/**
 * Where test databases live: the RAM-backed /dev/shm where there is one (they were in memory before
 * templates; on disk, copying and removing them contends with every other process's I/O), else the temp folder.
 */
export const SCRATCH = canWrite("/dev/shm") ? "/dev/shm" : tmpdir();
const TEMPLATES = join(SCRATCH, "tollgate-test-templates");
/** Templates untouched this long belong to migrations nobody runs any more. */
const STALE_MS = 7 * 24 * 3600_000;

/** What a template holds: the schema the migrations make, or nothing yet (as initdb leaves a database). */
export type TemplateSchema = "migrated" | "empty";

/** Names a template by what shaped it: the PGlite that stores it, and the migrations and the code that applied them. */
function templateKey(schema: TemplateSchema): string {
  const hash = createHash("sha256");
  const shapedBy = [join(ROOT, "node_modules/@electric-sql/pglite/package.json")];
  if (schema === "migrated") shapedBy.push(...listFiles(join(ROOT, "migrations")), join(ROOT, "src/db/migrate.ts"));
  for (const file of shapedBy) hash.update(`${relative(ROOT, file)}\0`).update(readFileSync(file)).update("\0");
  return `${schema}-${hash.digest("hex").slice(0, 16)}`;
}

function canWrite(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/**
 * The path of a PGlite data folder to copy from, built on first use (the migrated one from a copy
 * of the empty one: one initdb in all). Builders race safely: each builds under a name of its own
 * and renames it into place; the rename of a later one fails and it removes its copy.
 */
export async function pgliteTemplate(schema: TemplateSchema = "migrated"): Promise<string> {
  const key = templateKey(schema);
  const done = join(TEMPLATES, key);
  if (existsSync(done)) {
    const now = new Date();
    utimesSync(done, now, now); // in use: not stale
  } else {
    const building = join(TEMPLATES, `${key}.building-${process.pid}-${randomBytes(4).toString("hex")}`);
    try {
      if (schema === "migrated") await seedDataDir(building, "empty");
      const database = await openDatabase({ dataDir: building });
      if (schema === "migrated") await migrate(database);
      await database.close();
      renameSync(building, done);
    } catch (err) {
      if (!existsSync(done)) throw err;
    } finally {
      rmSync(building, { recursive: true, force: true });
    }
    removeStaleTemplates();
  }
  return join(done, "pgdata");
}

function removeStaleTemplates(): void {
  for (const name of readdirSync(TEMPLATES)) {
    const path = join(TEMPLATES, name);
    if (Date.now() - statSync(path).mtimeMs > STALE_MS) rmSync(path, { recursive: true, force: true });
  }
}

/**
 * Gives `dataDir` a PGlite database (in `dataDir/pgdata`, where openDatabase and the CLI look),
 * migrated unless asked for an empty one, copied from a template: opening it runs no initdb.
 */
export async function seedDataDir(dataDir: string, schema: TemplateSchema = "migrated"): Promise<void> {
  // A copy-on-write clone where the file system offers one, a plain copy elsewhere.
  cpSync(await pgliteTemplate(schema), join(dataDir, "pgdata"), { recursive: true, mode: constants.COPYFILE_FICLONE });
}

/** Set by the suite runner to the Postgres template database of its run. */
export const TEMPLATE_DB_ENV = "TOLLGATE_TEST_TEMPLATE_DB";

/**
 * A migrated database on the TEST_DATABASE_URL server for the test databases of one run to be
 * created from (`create database … template …`). Unique to the run: the server may be shared, and
 * Postgres refuses to copy a template while anyone is connected to it, so nobody else may use it.
 */
export async function createTemplateDatabase(url: string): Promise<string> {
  const name = `tollgate_tmpl_${randomBytes(6).toString("hex")}`;
  await asAdmin(url, (admin) => admin.unsafe(`create database ${name}`));
  const database = await openDatabase({ url: databaseUrl(url, name), dataDir: "" });
  try {
    await migrate(database);
  } finally {
    await database.close();
  }
  return name;
}

/** Drops a database on the TEST_DATABASE_URL server, first ending any session a test left open in it. */
export async function dropDatabase(url: string, name: string): Promise<void> {
  await asAdmin(url, async (admin) => {
    await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${name}`;
    await admin.unsafe(`drop database if exists ${name}`);
  });
}

/** The server's URL with `name` as its database. */
export function databaseUrl(url: string, name: string): string {
  const target = new URL(url);
  target.pathname = `/${name}`;
  return target.toString();
}

export async function asAdmin(url: string, work: (admin: postgres.Sql) => Promise<unknown>): Promise<void> {
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await work(admin);
  } finally {
    await admin.end({ timeout: 5 });
  }
}
