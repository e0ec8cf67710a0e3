import { type SQL, sql } from "drizzle-orm";

export type Cell = string | number | bigint | boolean | null;

/** A Postgres array literal: strings quoted (escaped only where they need it), NULL bare. */
export function arrayLiteral(values: readonly Cell[]): string {
  let out = "{";
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) out += ",";
    if (v === null || v === undefined) out += "NULL";
    else if (typeof v === "string") out += `"${NEEDS_ESCAPE.test(v) ? v.replace(ESCAPED, "\\$&") : v}"`;
    else out += String(v);
  }
  return `${out}}`;
}
const NEEDS_ESCAPE = /["\\]/;
const ESCAPED = /["\\]/g;

/** One array parameter (an arrayLiteral) per column, as `$n::text::type[]`: Postgres reads these far faster than JSON records. */
export function arrayColumn(literal: string, type: string): SQL {
  return sql`${literal}::text::${sql.raw(type)}[]`;
}
