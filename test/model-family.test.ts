import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { sql } from "drizzle-orm";
import { subscribes } from "../src/alerts/routing.ts";
import { type Scope, scopeMatches, scopesOverlap } from "../src/budgets/budget.ts";
import { groupByScope, matching } from "../src/budgets/spend-batch.ts";
import type { Database } from "../src/db/connection.ts";
import { modelFamily, modelFamilySql, modelInScopeSql } from "../src/ledger/model-family.ts";
import { thresholdAlert } from "./helpers/alerts.ts";
import { openTestDatabase } from "./helpers/db.ts";

/*
 * A model scope takes its family's dated snapshots and nothing else: one table, checked against the
 * JavaScript matching (budgets, the proxy's hard budgets, routing) and against the SQL one (spend
 * queries and budget reads), so the two cannot drift apart.
 */

/** [scope's model, recorded model, taken?] */
const CASES: [string, string, boolean][] = [
  ["gpt-4o", "gpt-4o", true],
  ["gpt-4o", "gpt-4o-2024-08-06", true],
  ["gpt-4o-mini", "gpt-4o-mini-2024-07-18", true],
  ["claude-3-5-sonnet", "claude-3-5-sonnet-20241022", true],
  ["claude-sonnet-4-5", "claude-sonnet-4-5-20250929", true],
  // Another family sharing the prefix.
  ["gpt-4o", "gpt-4o-mini", false],
  ["gpt-4o", "gpt-4o-mini-2024-07-18", false],
  ["claude-3-5-sonnet", "claude-3-5-sonnet-v2", false],
  // A scope naming a snapshot takes that snapshot only.
  ["gpt-4o-2024-08-06", "gpt-4o-2024-08-06", true],
  ["gpt-4o-2024-08-06", "gpt-4o", false],
  ["gpt-4o-2024-08-06", "gpt-4o-2024-11-20", false],
  // Only a date, and only at the end.
  ["gpt-4", "gpt-4-0613", false],
  ["gpt-4o", "gpt-4o-2024-13-01", false],
  ["gpt-4o", "gpt-4o-20240832", false],
  ["gpt-4o", "gpt-4o-2024-08-06-batch", false],
  ["claude-3-5-sonnet", "claude-3-5-sonnet-20241022-v2:0", false],
  ["gpt-4o", "gpt-4o-2024-08-06-2024-08-06", false],
  // Characters LIKE and regular expressions treat specially stay themselves.
  ["gemini-1.5-pro", "gemini-1.5-pro-2024-09-24", true],
  ["gemini-1.5-pro", "gemini-1x5-pro-2024-09-24", false],
  ["org\\gpt_4o%", "org\\gpt_4o%-2024-08-06", true],
  ["gpt_4o", "gpt-4o-2024-08-06", false],
  ["gpt-4o", "", false],
];

let database: Database;
before(async () => {
  database = await openTestDatabase();
});
after(() => database.close());

test("modelFamily drops a trailing snapshot date, in either spelling, and nothing else", () => {
  assert.equal(modelFamily("gpt-4o-2024-08-06"), "gpt-4o");
  assert.equal(modelFamily("claude-3-5-sonnet-20241022"), "claude-3-5-sonnet");
  assert.equal(modelFamily("gpt-4o"), "gpt-4o");
  assert.equal(modelFamily("claude-3-5-sonnet-v2"), "claude-3-5-sonnet-v2");
  assert.equal(modelFamily("gpt-4o-2024-08-06-2024-08-06"), "gpt-4o-2024-08-06");
});

test("a model scope takes its family's snapshots: budgets, hard budgets' lookup, chat and routing", () => {
  for (const [wanted, recorded, taken] of CASES) {
    const what = `model:${wanted} takes ${JSON.stringify(recorded)}`;
    assert.equal(scopeMatches({ model: wanted }, { model: recorded }), taken, what);
    assert.equal(scopeMatches({ team: "search", model: wanted }, { team: "search", model: recorded }), taken, what);
    // How the proxy finds the hard budgets a call falls in, and how the evaluator finds those an event touches.
    const budgets = [{ id: "b", scope: { model: wanted } as Scope }];
    assert.deepEqual(matching(groupByScope(budgets), { model: recorded }), taken ? budgets : [], what);
  }
  assert.equal(scopeMatches({ team: "search", model: "gpt-4o" }, { team: "ads", model: "gpt-4o-2024-08-06" }), false);
  assert.equal(scopeMatches({ model: "gpt-4o" }, { team: "search" }), false, "a call naming no model");

  // `spend model:gpt-4o` lists the budgets its spend counts against, and those counting part of it.
  assert.equal(scopesOverlap({ model: "gpt-4o" }, { team: "search", model: "gpt-4o-2024-08-06" }), true);
  assert.equal(scopesOverlap({ model: "gpt-4o-2024-08-06" }, { model: "gpt-4o" }), true);
  assert.equal(scopesOverlap({ model: "gpt-4o-2024-08-06" }, { model: "gpt-4o-2024-11-20" }), false);
  assert.equal(scopesOverlap({ model: "gpt-4o" }, { model: "gpt-4o-mini" }), false);

  // A budget on a snapshot is within a channel's subscription to its family, not the other way round.
  const alert = (model: string) => thresholdAlert({ id: "b", name: "b", scope: { model } }, 80);
  const channel = (model: string) => ({ id: "c", scopes: [{ model }], kinds: ["alerts" as const] });
  assert.equal(subscribes(channel("gpt-4o"), alert("gpt-4o-2024-08-06")), true);
  assert.equal(subscribes(channel("gpt-4o-2024-08-06"), alert("gpt-4o")), false);
  assert.equal(subscribes(channel("gpt-4o"), alert("gpt-4o-mini")), false);
});

test("the SQL matching agrees with the JavaScript on every case", async () => {
  for (const [wanted, recorded, taken] of CASES) {
    const model = sql`${recorded}::text`;
    const [row] = await database.rows<{ taken: boolean; family: string }>(
      sql`select ${modelInScopeSql(model, wanted)} as taken, ${modelFamilySql(model)} as family`,
    );
    assert.equal(row?.taken, taken, `model:${wanted} takes ${JSON.stringify(recorded)} in SQL`);
    assert.equal(row?.family, modelFamily(recorded), `family of ${JSON.stringify(recorded)} in SQL`);
  }
});
