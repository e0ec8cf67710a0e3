/**
 * The query postgres.js (3.4.x) sends on every connection it opens, for the array types
 * (connection.js, fetchArrayTypes). Nothing handles its promise: when the connection drops while
 * it is under way, its rejection is unhandled, and Node ends the process on one.
 */
const ARRAY_TYPES_QUERY = /^\s*select b\.oid, b\.typarray\s+from pg_catalog\.pg_type a\s+left join pg_catalog\.pg_type b on b\.oid = a\.typelem/;

/** That query's failure because its connection dropped (not an answer from Postgres, which has a SQLSTATE). */
export function isDroppedTypeFetch(reason: unknown): boolean {
  if (!(reason instanceof Error)) return false;
  const { query, severity } = reason as { query?: unknown; severity?: unknown };
  return typeof query === "string" && ARRAY_TYPES_QUERY.test(query) && severity === undefined;
}

let installed = false;

/**
 * Lets that one rejection pass, with a warning, and leaves every other unhandled rejection to end
 * the process as Node's default does (rethrown, it is an uncaught exception). Nothing is lost by
 * letting it pass: the connection reconnects for its next query and fetches the types again, and
 * the pool's other connections have them already. Not `fetch_types: false`, which would spare the
 * query: raw queries would then read array columns as text.
 */
export function letTypeFetchDropsPass(): void {
  if (installed) return;
  installed = true;
  process.on("unhandledRejection", passTypeFetchDrops);
}

/** The process's listener for unhandled rejections (exported for tests, which run under a runner that has its own). */
export function passTypeFetchDrops(reason: unknown): void {
  if (!isDroppedTypeFetch(reason)) throw reason;
  process.emitWarning("a connection to Postgres dropped while postgres.js fetched the array types; it reconnects for its next query", { code: "TOLLGATE_PG_TYPE_FETCH_DROPPED" });
}
