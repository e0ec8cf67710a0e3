/**
 * Model families and their dated snapshots. Providers answer a call for a family (`gpt-4o`) with a
 * dated snapshot (`gpt-4o-2024-08-06`; Anthropic writes `claude-3-5-sonnet-20241022`), usage
 * webhooks and OTel spans report snapshots too, and the ledger keeps the model that answered. So a
 * scope or filter naming a family also takes its snapshots, and only them: `gpt-4o` takes
 * `gpt-4o-2024-08-06` but not `gpt-4o-mini` (another family) nor `gpt-4o-mini-2024-07-18`.
 */
import { type SQL, sql } from "drizzle-orm";

const YEAR = "(20\\d{2})";
const MONTH = "(0[1-9]|1[0-2])";
const DAY = "(0[1-9]|[12]\\d|3[01])";

/** A date written without separators, as in Anthropic ids (20241022); year, month and day are captured. */
export const COMPACT_DATE = `${YEAR}${MONTH}${DAY}`;

/**
 * A snapshot date ending a model id: `-2024-08-06` (OpenAI) or `-20241022` (Anthropic). Written in
 * the regular-expression syntax JavaScript and Postgres (ARE) read alike, so the SQL below strips
 * it with this very pattern.
 */
const SNAPSHOT_SUFFIX = `-(?:${YEAR}-${MONTH}-${DAY}|${COMPACT_DATE})$`;
const snapshotSuffix = new RegExp(SNAPSHOT_SUFFIX);

/** The family of a model id: `gpt-4o-2024-08-06` → `gpt-4o`; an id without a snapshot date is its own family. */
export function modelFamily(model: string): string {
  // Most ids end in a letter: no snapshot date, and no pattern to run (this is on the proxy's path).
  const last = model.charCodeAt(model.length - 1);
  return last >= 48 && last <= 57 ? model.replace(snapshotSuffix, "") : model;
}

/** modelFamily in SQL: it mirrors the function above, with the same pattern. */
export function modelFamilySql(model: SQL): SQL {
  return sql`regexp_replace(${model}, ${SNAPSHOT_SUFFIX}, '')`;
}

/**
 * Whether `model` is taken by a scope naming `wanted` (`model` is `wanted` or one of its dated snapshots), in SQL.
 * The LIKE on the family's prefix (its `%`, `_` and `\` escaped) keeps the pattern from running on
 * other models' rows; the family is compared as text, so `.` in an id needs no escaping.
 */
export function modelInScopeSql(model: SQL, wanted: string): SQL {
  const prefix = `${wanted.replace(/[\\%_]/g, "\\$&")}-%`;
  return sql`(${model} = ${wanted} or (${model} like ${prefix} and ${modelFamilySql(model)} = ${wanted}))`;
}
