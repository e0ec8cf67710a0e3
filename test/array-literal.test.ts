import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import type { Database } from "../src/db/connection.ts";
import { type Cell, arrayColumn, arrayLiteral } from "../src/db/arrays.ts";
import { openTestDatabase } from "./helpers/db.ts";

let database: Database;
before(async () => {
  database = await openTestDatabase();
});
after(() => database.close());

/** The column's values as the database reads them back, as text (NULL as null). */
async function readBack(values: readonly Cell[], type: string): Promise<(string | null)[]> {
  const rows = await database.rows<{ v: string | null }>(sql`select v::text as v from unnest(${arrayColumn(arrayLiteral(values), type)}) with ordinality as x(v, n) order by n`);
  return rows.map((r) => r.v);
}

describe("array literals (the recorder's column parameters)", () => {
  test("text arrives as it was: quotes, backslashes, braces, commas, blanks, the word NULL, unicode; NULL as NULL", async () => {
    const plain = ["a", "", "b c", "{x}", "1,2", "NULL", "naïve ☃"];
    assert.deepEqual(await readBack(plain, "text"), plain);
    const escaped = ['say "hi"', "back\\slash", "\\", '"', "plain"];
    assert.deepEqual(await readBack(escaped, "text"), escaped);
    assert.deepEqual(await readBack(["a", null, "", null], "text"), ["a", null, "", null]);
    assert.deepEqual(await readBack([], "text"), []);
  });

  test("numbers, bigints and booleans arrive as they were, with NULLs among them", async () => {
    assert.deepEqual(await readBack([1, 0, -5, 2_147_483_647], "integer"), ["1", "0", "-5", "2147483647"]);
    assert.deepEqual(await readBack([9_223_372_036_854_775_807n, 0n, null], "bigint"), ["9223372036854775807", "0", null]);
    assert.deepEqual(await readBack([true, false, null], "boolean"), ["true", "false", null]);
    assert.deepEqual(await readBack([123456789012345678901234567890n], "numeric"), ["123456789012345678901234567890"]);
  });
});
