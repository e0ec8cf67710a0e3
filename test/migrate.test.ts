import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { getTableName, is, sql } from "drizzle-orm";
import { PgTable } from "drizzle-orm/pg-core";
import postgres from "postgres";
import { type Database, openDatabase, rowsOf } from "../src/db/connection.ts";
import { OLDER_BUILDS_RUN, migrate, migrationState, pendingMigrationFiles } from "../src/db/migrate.ts";
import * as telegramSchema from "../integrations/telegram/schema.ts";
import * as schema from "../src/db/schema.ts";
import { assertRollupsMatchEvents } from "./helpers/rollups.ts";
import { SCRATCH, seedDataDir } from "./helpers/template.ts";
import { waitFor } from "./helpers/wait.ts";

/** Every table the schemas declare (the gateway's and its integrations'), and the runner's own: what the migrations must create. */
const TABLES = [...[schema, telegramSchema].flatMap((s) => Object.values(s)).flatMap((t) => (is(t, PgTable) ? [getTableName(t)] : [])), "tollgate_migrations"].sort();

/**
 * A database nothing has migrated: PGlite copied from the empty template (one handle, as PGlite allows one process), or
 * with TEST_DATABASE_URL a new database on that server, which any number of pools can open.
 */
async function freshDatabase(): Promise<{ open(): Promise<Database>; drop(): Promise<void> }> {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) {
    const dataDir = mkdtempSync(join(SCRATCH, "tollgate-m-"));
    await seedDataDir(dataDir, "empty");
    const database = await openDatabase({ dataDir });
    return {
      open: async () => database,
      drop: async () => {
        await database.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const name = `tollgate_m_${randomBytes(6).toString("hex")}`;
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const target = new URL(url);
  target.pathname = `/${name}`;
  const opened: Database[] = [];
  return {
    async open() {
      const database = await openDatabase({ url: target.toString(), dataDir: "" });
      opened.push(database);
      return database;
    },
    async drop() {
      for (const d of opened) await d.close();
      await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${name}`;
      await admin.unsafe(`drop database if exists ${name}`);
      await admin.end({ timeout: 5 });
    },
  };
}

async function tables(database: Database): Promise<string[]> {
  const rows = await database.rows<{ name: string }>(
    sql`select tablename as name from pg_tables where schemaname = current_schema() order by tablename`,
  );
  return rows.map((r) => r.name);
}

async function appliedTags(database: Database): Promise<string[]> {
  const rows = await database.rows<{ tag: string }>(sql`select tag from tollgate_migrations order by tag`);
  return rows.map((r) => r.tag);
}

const ALL_TAGS = pendingMigrationFiles().map((m) => m.tag);

/** The runs table as builds before OLDER_BUILDS_RUN made it (no older_builds_run column), holding these tags. */
async function oldRunsTable(database: Database, tags: readonly string[]): Promise<void> {
  await database.rows(sql`create table tollgate_migrations (tag text primary key, hash text not null, applied_at timestamptz not null default now())`);
  for (const tag of tags) await database.rows(sql`insert into tollgate_migrations (tag, hash) values (${tag}, ${tag === "9000_first" ? "a".repeat(64) : "c".repeat(64)})`);
}


describe("migrate()", () => {
  test("applies every migration once; a second run is a no-op", async () => {
    const fresh = await freshDatabase();
    try {
      const database = await fresh.open();
      assert.deepEqual(await migrationState(database), { state: "pending" });
      assert.ok(ALL_TAGS.length > 0);
      assert.deepEqual(await migrate(database), ALL_TAGS);
      assert.deepEqual(await tables(database), TABLES);
      assert.deepEqual(await migrationState(database), { state: "applied" });
      const [before] = await database.rows<{ applied_at: string }>(sql`select max(applied_at)::text as applied_at from tollgate_migrations`);
      assert.deepEqual(await migrate(database), []);
      assert.deepEqual(await appliedTags(database), [...ALL_TAGS].sort());
      const [afterwards] = await database.rows<{ applied_at: string }>(sql`select max(applied_at)::text as applied_at from tollgate_migrations`);
      assert.equal(afterwards!.applied_at, before!.applied_at);
      assert.deepEqual(await migrationState(database), { state: "applied" });
    } finally {
      await fresh.drop();
    }
  });

  test("concurrent runs (separate connections on Postgres) both succeed and apply everything once", async () => {
    const fresh = await freshDatabase();
    try {
      const handles = await Promise.all([fresh.open(), fresh.open(), fresh.open()]);
      const results = await Promise.all(handles.map((h) => migrate(h)));
      // Exactly one run applied the migrations; the others found them applied.
      assert.deepEqual(
        results.map((r) => r.length).sort((a, b) => b - a),
        [ALL_TAGS.length, 0, 0],
      );
      assert.deepEqual(results.find((r) => r.length > 0), ALL_TAGS);
      for (const h of handles) {
        assert.deepEqual(await tables(h), TABLES);
        assert.deepEqual(await appliedTags(h), [...ALL_TAGS].sort());
        assert.deepEqual(await migrationState(h), { state: "applied" });
      }
      // The schema is usable, not merely present.
      await handles[0]!.rows(sql`insert into ingest_sources (id, name) values ('s1', 'after-migrate')`);
      const [row] = await handles[handles.length - 1]!.rows<{ n: number }>(sql`select count(*)::int as n from ingest_sources`);
      assert.equal(row!.n, 1);
    } finally {
      await fresh.drop();
    }
  });

  test("concurrent runs succeed on a database whose transactions default to repeatable read: the gateway's connections read committed", { skip: process.env.TEST_DATABASE_URL ? false : "PostgreSQL only: PGlite has one connection" }, async () => {
    const fresh = await freshDatabase();
    try {
      const first = await fresh.open();
      // An operator's default: each transaction would see the database as it was at its first statement.
      const [named] = await first.rows<{ name: string }>(sql`select current_database() as name`);
      await first.rows(sql.raw(`alter database ${named!.name} set default_transaction_isolation = 'repeatable read'`));
      const handles = await Promise.all([fresh.open(), fresh.open(), fresh.open()]);
      const [setting] = await handles[0]!.rows<{ isolation: string }>(sql`select current_setting('default_transaction_isolation') as isolation`);
      assert.equal(setting!.isolation, "read committed", "the gateway's connections set their own");
      const migrations = [
        { tag: "9000_first", hash: "a".repeat(64), statements: ["create table probe_first (id int)"] },
        { tag: "9001_second", hash: "b".repeat(64), statements: ["create table probe_second (id int)", "select pg_sleep(0.2)"] },
      ];
      const results = await Promise.all(handles.map((h) => migrate(h, migrations)));
      assert.deepEqual(results.map((r) => r.length).sort((a, b) => b - a), [2, 0, 0]);
    } finally {
      await fresh.drop();
    }
  });

  test("a migration file changed after it was applied stops the run, naming it; the untouched ones still pass", async () => {
    const fresh = await freshDatabase();
    try {
      const database = await fresh.open();
      const first = { tag: "9000_first", hash: "a".repeat(64), statements: ["create table probe_first (id int)"] };
      assert.deepEqual(await migrate(database, [first]), ["9000_first"]);
      const edited = { ...first, hash: "b".repeat(64), statements: ["create table probe_first (id bigint)"] };
      const next = { tag: "9001_next", hash: "c".repeat(64), statements: ["create table probe_next (id int)"] };
      await assert.rejects(migrate(database, [edited, next]), /migrations\/9000_first\.sql is not the file this database applied \(sha256 aaaaaaaaaaaa…, the file has bbbbbbbbbbbb…\)/);
      assert.deepEqual(await tables(database), ["probe_first", "tollgate_migrations"], "nothing after it applied");
      assert.deepEqual(await migrate(database, [first, next]), ["9001_next"]);
    } finally {
      await fresh.drop();
    }
  });

  test("a database a newer build migrated stops an older build's start, naming what it does not know", async () => {
    const fresh = await freshDatabase();
    try {
      const database = await fresh.open();
      const first = { tag: "9000_first", hash: "a".repeat(64), statements: ["create table probe_first (id int)"] };
      const newer = { tag: "9001_newer", hash: "c".repeat(64), statements: ["create table probe_newer (id int)"] };
      assert.deepEqual(await migrate(database, [first, newer]), ["9000_first", "9001_newer"]);
      await assert.rejects(migrate(database, [first]), (err: Error & { kind?: string }) => {
        assert.equal(err.kind, "migration_ahead");
        assert.match(err.message, /migrated by a newer Tollgate \(9001_newer is not in this build\): run that version or a newer one/);
        return true;
      });
      // A build already running when the newer one migrated is told too: its /readyz reads this.
      assert.deepEqual(await migrationState(database, [first]), {
        state: "ahead",
        detail: "this database was migrated by a newer Tollgate (9001_newer is not in this build): run that version or a newer one",
      });
      assert.deepEqual(await migrationState(database, [first, newer]), { state: "applied" });
      assert.deepEqual(await migrate(database, [first, newer]), [], "the newer build itself still starts");
    } finally {
      await fresh.drop();
    }
  });

  test("a newer build's migrations marked for older builds leave those starting and ready; one unmarked after them does not", async () => {
    const fresh = await freshDatabase();
    try {
      const database = await fresh.open();
      const first = { tag: "9000_first", hash: "a".repeat(64), statements: ["create table probe_first (id int)"] };
      const marked = { tag: "9001_marked", hash: "c".repeat(64), statements: ["create table probe_marked (id int)"], olderBuildsRun: true };
      assert.deepEqual(await migrate(database, [first, marked]), ["9000_first", "9001_marked"]);
      assert.deepEqual(await migrate(database, [first]), [], "the older build starts beside it");
      assert.deepEqual(await migrationState(database, [first]), { state: "applied" }, "and stays ready");
      const unmarked = { tag: "9002_unmarked", hash: "d".repeat(64), statements: ["create table probe_unmarked (id int)"] };
      assert.deepEqual(await migrate(database, [first, marked, unmarked]), ["9002_unmarked"]);
      const named = "this database was migrated by a newer Tollgate (9002_unmarked is not in this build): run that version or a newer one";
      await assert.rejects(migrate(database, [first]), { message: named });
      assert.deepEqual(await migrationState(database, [first]), { state: "ahead", detail: named });
      assert.deepEqual(await migrationState(database, [first, marked]), { state: "ahead", detail: named });
    } finally {
      await fresh.drop();
    }
  });

  test("a runs table from a build before the mark gains the column; its rows count as unmarked", async () => {
    const fresh = await freshDatabase();
    try {
      const database = await fresh.open();
      await oldRunsTable(database, ["9000_first", "9001_newer"]);
      const first = { tag: "9000_first", hash: "a".repeat(64), statements: ["create table probe_first (id int)"] };
      await assert.rejects(migrate(database, [first]), { message: "this database was migrated by a newer Tollgate (9001_newer is not in this build): run that version or a newer one" });
      const rows = await database.rows<{ tag: string; older_builds_run: boolean }>(sql`select tag, older_builds_run from tollgate_migrations order by tag`);
      assert.deepEqual(rows.map((r) => ({ ...r })), [{ tag: "9000_first", older_builds_run: false }, { tag: "9001_newer", older_builds_run: false }], "the column stays although the run stopped");
    } finally {
      await fresh.drop();
    }
  });

  test("the column is added in a transaction of its own: readiness probes read the runs table while a long migration runs", { skip: process.env.TEST_DATABASE_URL ? false : "PostgreSQL only: PGlite has one connection" }, async () => {
    const fresh = await freshDatabase();
    try {
      const [migrating, holder, probe] = await Promise.all([fresh.open(), fresh.open(), fresh.open()]);
      await oldRunsTable(migrating, ["9000_first"]);
      await holder.rows(sql`create table probe_held (id int)`);
      // The next migration waits for a lock another connection holds: it runs as long as the test wants.
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let holding!: () => void;
      const held = new Promise<void>((resolve) => (holding = resolve));
      const holderDone = holder.db.transaction(async (tx) => {
        await tx.execute(sql`lock table probe_held in access exclusive mode`);
        holding();
        await released;
      });
      await held;
      const first = { tag: "9000_first", hash: "a".repeat(64), statements: ["create table probe_first (id int)"] };
      const long = { tag: "9001_long", hash: "b".repeat(64), statements: ["lock table probe_held in access exclusive mode", "create table probe_long (id int)"] };
      const running = migrate(migrating, [first, long]);
      try {
        await waitFor("the migration to wait for the held lock", async () => (await probe.rows<{ n: number }>(sql`select count(*)::int as n from pg_locks where not granted and relation = 'probe_held'::regclass`))[0]!.n > 0);
        // Without its own transaction the ALTER's lock would hold this probe until the migration ended.
        const state = await probe.db.transaction(async (tx) => {
          await tx.execute(sql`set local lock_timeout = '2s'`);
          return rowsOf<{ tag: string; older_builds_run: boolean }>(await tx.execute(sql`select tag, older_builds_run from tollgate_migrations order by tag`));
        });
        assert.deepEqual(state.map((r) => ({ ...r })), [{ tag: "9000_first", older_builds_run: false }]);
      } finally {
        release();
        await holderDone;
      }
      assert.deepEqual(await running, ["9001_long"]);
      assert.deepEqual(await migrationState(probe, [first, long]), { state: "applied" });
    } finally {
      await fresh.drop();
    }
  });

  test("a migration file marks itself for older builds by a line of its own", () => {
    const dir = mkdtempSync(join(SCRATCH, "tollgate-mfiles-"));
    try {
      mkdirSync(join(dir, "meta"));
      writeFileSync(join(dir, "meta", "_journal.json"), JSON.stringify({ entries: [{ idx: 0, tag: "0000_plain" }, { idx: 1, tag: "0001_marked" }, { idx: 2, tag: "0002_quoted" }] }));
      writeFileSync(join(dir, "0000_plain.sql"), "create table a (id int);");
      writeFileSync(join(dir, "0001_marked.sql"), `-- Adds a table no older build reads.\n  ${OLDER_BUILDS_RUN}\ncreate table b (id int);`);
      writeFileSync(join(dir, "0002_quoted.sql"), `create table c (note text default '${OLDER_BUILDS_RUN}');`);
      assert.deepEqual(
        pendingMigrationFiles(`${dir}/`).map((m) => [m.tag, m.olderBuildsRun]),
        [["0000_plain", false], ["0001_marked", true], ["0002_quoted", false]],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a migration that fails applies nothing of its run", async () => {
    const fresh = await freshDatabase();
    try {
      const database = await fresh.open();
      const good = { tag: "9000_good", hash: "x", statements: ["create table probe_good (id int)"] };
      const bad = { tag: "9001_bad", hash: "y", statements: ["create table probe_bad (id int)", "select no_such_function()"] };
      await assert.rejects(migrate(database, [good, bad]));
      assert.deepEqual(await tables(database), ["tollgate_migrations"], "the runner's own table, made before the run");
      assert.deepEqual(await appliedTags(database), []);
      assert.deepEqual(await migrationState(database), { state: "pending" });
      assert.deepEqual(await migrate(database, [good]), ["9000_good"]);
      assert.deepEqual(await tables(database), ["probe_good", "tollgate_migrations"]);
    } finally {
      await fresh.drop();
    }
  });
});

describe("migration 0013_user_months_table", () => {
  test("moves the user-month rows out of usage_rollups into usage_user_months with their sums exact", async () => {
    const fresh = await freshDatabase();
    try {
      const database = await fresh.open();
      const [earlier, later] = [ALL_TAGS.filter((t) => t < "0013"), ALL_TAGS.filter((t) => t >= "0013")];
      assert.ok(later.includes("0013_user_months_table"));
      await migrate(database, pendingMigrationFiles().filter((m) => earlier.includes(m.tag)));
      // Sums past 2^64 and with many digits, so a float or a bigint cast on the way would show.
      const huge = "123456789012345678901234567890";
      await database.rows(sql`
        insert into usage_rollups (grain, bucket, "user", requests, errors, unpriced, input_tokens, cached_input_tokens,
          cache_write_tokens, output_tokens, reasoning_tokens, cost)
        values ('user-month', '2026-03-01T00:00:00Z', 'alice', 3, 1, 1, ${huge}, 7, 8, 9, 10, ${huge}),
          ('user-month', '2026-04-01T00:00:00Z', '', 2, 0, 0, 1, 2, 3, 4, 5, 999999999999999999999),
          ('user-day', '2026-03-02T00:00:00Z', 'alice', 3, 1, 1, ${huge}, 7, 8, 9, 10, ${huge}),
          ('day', '2026-03-02T00:00:00Z', '', 3, 1, 1, ${huge}, 7, 8, 9, 10, ${huge})`);
      assert.deepEqual(await migrate(database, pendingMigrationFiles().filter((m) => m.tag === "0013_user_months_table")), ["0013_user_months_table"]);
      const months = await database.rows(sql`
        select to_char(bucket at time zone 'UTC', 'YYYY-MM-DD') as month, "user", requests::text, errors::text, unpriced::text,
          input_tokens::text, cached_input_tokens::text, cache_write_tokens::text, output_tokens::text, reasoning_tokens::text, cost::text
        from usage_user_months order by 1`);
      assert.deepEqual(months.map((r) => ({ ...r })), [
        { month: "2026-03-01", user: "alice", requests: "3", errors: "1", unpriced: "1", input_tokens: huge, cached_input_tokens: "7",
          cache_write_tokens: "8", output_tokens: "9", reasoning_tokens: "10", cost: huge },
        { month: "2026-04-01", user: "", requests: "2", errors: "0", unpriced: "0", input_tokens: "1", cached_input_tokens: "2",
          cache_write_tokens: "3", output_tokens: "4", reasoning_tokens: "5", cost: "999999999999999999999" },
      ]);
      const left = await database.rows<{ grain: string }>(sql`select grain from usage_rollups order by grain`);
      assert.deepEqual(left.map((r) => r.grain), ["day", "user-day"], "the other grains stay where they were");
      const [table] = await database.rows<{ options: string[] | null }>(sql`select reloptions as options from pg_class where relname = 'usage_user_months'`);
      assert.deepEqual(table!.options, ["fillfactor=75"], "room in each page for HOT updates");
      const indexes = await database.rows<{ name: string }>(
        sql`select indexname as name from pg_indexes where tablename in ('usage_user_months', 'usage_rollups') order by 1`,
      );
      assert.deepEqual(indexes.map((r) => r.name), ["usage_rollups_cover", "usage_rollups_key", "usage_rollups_user_day", "usage_user_months_bucket_user_pk"]);
    } finally {
      await fresh.drop();
    }
  });
});

describe("migration 0014_user_days_table", () => {
  test("moves the user-day rows out of usage_rollups into usage_user_days with their keys and sums exact", async () => {
    const fresh = await freshDatabase();
    try {
      const database = await fresh.open();
      await migrate(database, pendingMigrationFiles().filter((m) => m.tag < "0014"));
      // Sums past 2^64 and with many digits, so a float or a bigint cast on the way would show.
      const huge = "123456789012345678901234567890";
      await database.rows(sql`
        insert into usage_rollups (grain, bucket, team, project, feature, "user", provider, model, api_key_id, requests, errors,
          unpriced, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost)
        values ('user-day', '2026-03-02T00:00:00Z', 'search', 'p1', 'f1', 'alice', 'openai', 'gpt-4o', 'k1', 3, 1, 1, ${huge}, 7, 8, 9, 10, ${huge}),
          ('user-day', '2026-03-02T00:00:00Z', 'search', 'p1', 'f1', 'alice', 'openai', 'gpt-4o', '', 1, 0, 0, 1, 0, 0, 2, 0, 5),
          ('user-day', '2026-03-03T00:00:00Z', '', '', '', '', 'anthropic', 'claude-haiku-4-5', '', 2, 0, 2, 1, 2, 3, 4, 5, 999999999999999999999),
          ('day', '2026-03-02T00:00:00Z', 'search', '', '', '', 'openai', 'gpt-4o', '', 3, 1, 1, ${huge}, 7, 8, 9, 10, ${huge}),
          ('hour', '2026-03-02T05:00:00Z', 'search', '', '', '', 'openai', 'gpt-4o', '', 3, 1, 1, ${huge}, 7, 8, 9, 10, ${huge})`);
      const userDays = sql`select to_char(bucket at time zone 'UTC', 'YYYY-MM-DD') as day, team, project, feature, "user", provider, model,
          api_key_id, requests::text, errors::text, unpriced::text, input_tokens::text, cached_input_tokens::text,
          cache_write_tokens::text, output_tokens::text, reasoning_tokens::text, cost::text`;
      const before = (await database.rows(sql`${userDays} from usage_rollups where grain = 'user-day' order by 1, 5, 9`)).map((r) => ({ ...r }));
      assert.equal(before.length, 3);
      assert.deepEqual(await migrate(database, pendingMigrationFiles().filter((m) => m.tag < "0015")), ["0014_user_days_table"]);
      const after = (await database.rows(sql`${userDays} from usage_user_days order by 1, 5, 9`)).map((r) => ({ ...r }));
      assert.deepEqual(after, before);
      const left = await database.rows<{ grain: string }>(sql`select grain from usage_rollups order by grain`);
      assert.deepEqual(left.map((r) => r.grain), ["day", "hour"], "the other grains stay where they were");
      const options = await database.rows<{ name: string; options: string[] | null }>(
        sql`select relname as name, reloptions as options from pg_class where relname in ('usage_user_days', 'usage_user_months') order by 1`,
      );
      assert.deepEqual(
        options.map((r) => ({ ...r })),
        [{ name: "usage_user_days", options: ["fillfactor=50"] }, { name: "usage_user_months", options: ["fillfactor=50"] }],
        "room in each page for a second version of every row, so updates are HOT",
      );
      const indexes = await database.rows<{ name: string }>(
        sql`select indexname as name from pg_indexes where tablename in ('usage_user_days', 'usage_rollups') order by 1`,
      );
      assert.deepEqual(indexes.map((r) => r.name), ["usage_rollups_cover", "usage_rollups_key", "usage_user_days_pk", "usage_user_days_user"]);
    } finally {
      await fresh.drop();
    }
  });
});

describe("migration 0016_rollups_hot_updates", () => {
  test("leaves usage_rollups its key as its one index, with room in each page, so adding to a row's sums is a HOT update", async () => {
    const fresh = await freshDatabase();
    try {
      const database = await fresh.open();
      await migrate(database, pendingMigrationFiles().filter((m) => m.tag < "0016"));
      const huge = "123456789012345678901234567890";
      await database.rows(sql`
        insert into usage_rollups (grain, bucket, team, provider, model, requests, errors, unpriced, input_tokens, cached_input_tokens,
          cache_write_tokens, output_tokens, reasoning_tokens, cost)
        values ('hour', '2026-03-02T05:00:00Z', 'search', 'openai', 'gpt-4o', 3, 1, 1, ${huge}, 7, 8, 9, 10, ${huge}),
          ('day', '2026-03-02T00:00:00Z', 'search', 'openai', 'gpt-4o', 3, 1, 1, ${huge}, 7, 8, 9, 10, ${huge})`);
      const rollups = sql`select grain, to_char(bucket at time zone 'UTC', 'YYYY-MM-DD HH24') as bucket, team, provider, model, requests::text,
        errors::text, unpriced::text, input_tokens::text, cached_input_tokens::text, cache_write_tokens::text, output_tokens::text,
        reasoning_tokens::text, cost::text from usage_rollups order by 1`;
      // Adds to the hour row's sums, as the recorder's upsert does: its updates of usage_rollups, and how many were HOT (the
      // transaction's counts before and after it; they may include earlier transactions' counts not yet flushed to the statistics).
      const addToHour = () =>
        database.db.transaction(async (tx) => {
          const counts = async () =>
            rowsOf<{ updates: number; hot: number }>(
              await tx.execute(sql`select n_tup_upd::int as updates, n_tup_hot_upd::int as hot from pg_stat_xact_user_tables where relname = 'usage_rollups'`),
            )[0]!;
          const before = await counts();
          await tx.execute(sql`update usage_rollups set requests = requests + 1, cost = cost + 5 where grain = 'hour'`);
          const after = await counts();
          return { updates: after.updates - before.updates, hot: after.hot - before.hot };
        });
      assert.deepEqual(await addToHour(), { updates: 1, hot: 0 }, "the covering index takes a new entry for the new sums");
      const before = (await database.rows(rollups)).map((r) => ({ ...r }));
      assert.deepEqual(await migrate(database, pendingMigrationFiles().filter((m) => m.tag === "0016_rollups_hot_updates")), ["0016_rollups_hot_updates"]);
      assert.deepEqual((await database.rows(rollups)).map((r) => ({ ...r })), before, "the rows stay as they were");
      const indexes = await database.rows<{ name: string }>(sql`select indexname as name from pg_indexes where tablename = 'usage_rollups' order by 1`);
      assert.deepEqual(indexes.map((r) => r.name), ["usage_rollups_key"], "no index holds a sum");
      const [table] = await database.rows<{ options: string[] | null }>(sql`select reloptions as options from pg_class where relname = 'usage_rollups'`);
      assert.deepEqual(table!.options, ["fillfactor=50"], "room in each page for a second version of every row");
      assert.deepEqual(await addToHour(), { updates: 1, hot: 1 });
      const [hour] = await database.rows<{ requests: string; cost: string }>(sql`select requests::text, cost::text from usage_rollups where grain = 'hour'`);
      assert.deepEqual({ ...hour }, { requests: "5", cost: "123456789012345678901234567900" });
    } finally {
      await fresh.drop();
    }
  });
  test("folds the batches queued before it into the user grains only (the write had added them to the hour and day grains), then renames the queue", async () => {
    const fresh = await freshDatabase();
    try {
      const database = await fresh.open();
      await migrate(database, pendingMigrationFiles().filter((m) => m.tag < "0017"));
      // As the build before wrote them: e1 folded everywhere (fold batch NULL: from before folds), e2 and e3 in the
      // hour and day grains by their write and queued for the user grains, e4 of another user in a batch a fold took.
      const huge = "1234567890123456789";
      await database.rows(sql`
        insert into usage_events (source, id, ts, provider, model, input_tokens, output_tokens, cost, priced, status, team, "user", fold_batch)
        values ('m', 'e1', '2026-03-02T05:10:00Z', 'openai', 'gpt-4o', 10, 1, ${huge}, true, 'ok', 'search', 'ann', null),
          ('m', 'e2', '2026-03-02T05:20:00Z', 'openai', 'gpt-4o', 20, 2, 7, true, 'error', 'search', 'ann', 1),
          ('m', 'e3', '2026-03-31T23:59:00Z', 'openai', 'gpt-4o', 30, 3, 9, false, 'ok', null, 'bob', 2),
          ('m', 'e4', '2026-03-03T01:00:00Z', 'openai', 'gpt-4o', 40, 4, 11, true, 'ok', 'search', 'cy', 3)`);
      await database.rows(sql`insert into usage_fold_pending (batch) values (1), (2)`);
      const sums = sql.raw(`count(*), count(*) filter (where status <> 'ok'), count(*) filter (where not priced), sum(input_tokens),
        sum(cached_input_tokens), sum(cache_write_tokens), sum(output_tokens), sum(reasoning_tokens), sum(cost)`);
      const columns = sql.raw(`requests, errors, unpriced, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost`);
      for (const grain of ["hour", "day"])
        await database.rows(sql`
          insert into usage_rollups (grain, bucket, team, provider, model, ${columns})
          select ${grain}, date_trunc(${grain}, ts, 'UTC'), coalesce(team, ''), provider, model, ${sums} from usage_events group by 2, 3, 4, 5`);
      await database.rows(sql`
        insert into usage_user_days (bucket, "user", team, provider, model, ${columns})
        select date_trunc('day', ts, 'UTC'), "user", coalesce(team, ''), provider, model, ${sums} from usage_events where id in ('e1', 'e4') group by 1, 2, 3, 4, 5`);
      await database.rows(sql`
        insert into usage_user_months (bucket, "user", ${columns})
        select date_trunc('month', ts, 'UTC'), "user", ${sums} from usage_events where id in ('e1', 'e4') group by 1, 2`);
      assert.deepEqual(await migrate(database, pendingMigrationFiles().filter((m) => m.tag === "0017_rollups_folded")), ["0017_rollups_folded"]);
      // Nothing is queued, and every grain equals the events' sums: the queued ones counted once in each.
      const [queued] = await database.rows<{ n: number }>(sql`select count(*)::int as n from usage_rollup_queue`);
      assert.equal(queued!.n, 0);
      await assertRollupsMatchEvents(database);
      // A write of the build before, which adds to the hour and day grains itself, fails rather than queue its batch to be added again.
      await assert.rejects(database.rows(sql`insert into usage_fold_pending (batch) values (4)`));
    } finally {
      await fresh.drop();
    }
  });
});
