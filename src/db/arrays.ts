import { type SQL, sql } from "drizzle-orm";

export type Cell = string | number | bigint | boolean | null;

/**
 * A Postgres array literal: strings quoted (escaped only where they need it), NULL bare. Made with
 * one join (a flat string, no piece per element to collect): the recorder makes about fifty of
 * these, of a thousand elements each, per batch.
 */
export function arrayLiteral(values: readonly Cell[]): string {
  if (values.length === 0) return "{}";
  if (values.every(isPlainText)) return `{"${values.join('","')}"}`;
  if (values.every(isBare)) return `{${values.join(",")}}`;
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) parts[i] = "NULL";
    else if (typeof v === "string") parts[i] = `"${NEEDS_ESCAPE.test(v) ? v.replace(ESCAPED, "\\$&") : v}"`;
    else parts[i] = String(v);
  }
  return `{${parts.join(",")}}`;
}
/** Text that goes in a literal quoted as it is. */
const isPlainText = (v: Cell) => typeof v === "string" && !NEEDS_ESCAPE.test(v);
/** A number, bigint or boolean: written as it is, unquoted. */
const isBare = (v: Cell) => v !== null && v !== undefined && typeof v !== "string";
const NEEDS_ESCAPE = /["\\]/;
const ESCAPED = /["\\]/g;

/** One array parameter (an arrayLiteral) per column, as `$n::text::type[]`: Postgres reads these far faster than JSON records. */
export function arrayColumn(literal: string, type: string): SQL {
  return sql`${literal}::text::${sql.raw(type)}[]`;
}
