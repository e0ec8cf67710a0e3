import { spawn } from "node:child_process";
import { once } from "node:events";
import { TEMPLATE_DB_ENV, createTemplateDatabase, dropDatabase, pgliteTemplate } from "./template.ts";

/*
 * `npm test`: builds the migrated templates once, before any file needs them, then runs the test
 * files in parallel (each in a process of its own, over copies of the templates) with node:test,
 * and drops the run's template database at the end, however the run ends. Arguments go to
 * `node --test` as they are: files, --test-name-pattern, or a --test-concurrency of your own.
 */

/** Files at once: most of a file's time is PGlite and child processes working, so a third keeps two cores busy. */
const CONCURRENCY = 3;
/** A test that hangs fails after this long (a whole file counts as one test) instead of holding the run until CI's limit. */
const TEST_TIMEOUT_MS = 600_000;

const args = process.argv.slice(2);
const url = process.env.TEST_DATABASE_URL;

// Both PGlite templates even on Postgres: the CLI's data folders are PGlite whatever the tests' databases are.
await pgliteTemplate("migrated");
await pgliteTemplate("empty");
const templateDb = url ? await createTemplateDatabase(url) : undefined;
try {
  const given = (option: string) => args.some((a) => a.startsWith(option));
  const defaults = [
    ...(given("--test-concurrency") ? [] : [`--test-concurrency=${CONCURRENCY}`]),
    ...(given("--test-timeout") ? [] : [`--test-timeout=${TEST_TIMEOUT_MS}`]),
  ];
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--test", ...defaults, ...args],
    { stdio: "inherit", env: templateDb ? { ...process.env, [TEMPLATE_DB_ENV]: templateDb } : process.env },
  );
  // Stopped, the runner passes the signal on and outlives node --test to clean up.
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
  const [code] = (await once(child, "exit")) as [number | null];
  process.exitCode = code ?? 1;
} finally {
  if (url && templateDb) await dropDatabase(url, templateDb);
}
