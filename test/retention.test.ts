import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { sql } from "drizzle-orm";
import { ConfigError, loadConfig } from "../src/config.ts";
import { deleteExpiredEvents } from "../src/ledger/retention.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { ALL_ROLLUPS, assertRollupsMatchEvents } from "./helpers/rollups.ts";

let gw: TestGateway;
const NOW = new Date("2026-06-01T00:00:00Z");
const DAY = 86_400_000;
/** 30-day retention at NOW: events before this instant go. */
const CUTOFF = new Date(NOW.getTime() - 30 * DAY);

const event = (id: string, at: Date, user: string) => ({
  id,
  timestamp: at.toISOString(),
  model: "gpt-4o",
  provider: "openai",
  input_tokens: 2000,
  output_tokens: 300,
  user,
  team: "search",
});

// 12 old events in April and early May, the last one a millisecond before the cutoff; 5 kept,
// the first of them exactly at the cutoff.
const OLD = [
  ...Array.from({ length: 11 }, (_, i) => event(`old-${i}`, new Date(Date.UTC(2026, 3, 1 + i * 2, 10 + i)), `u${i % 3}`)),
  event("old-edge", new Date(CUTOFF.getTime() - 1), "u0"),
];
const RECENT = [event("new-edge", CUTOFF, "u1"), ...Array.from({ length: 4 }, (_, i) => event(`new-${i}`, new Date(Date.UTC(2026, 4, 20 + i, 9)), `u${i % 2}`))];

const rollups = () =>
  gw.gateway.database.rows(sql`
    select grain, bucket::text, team, "user", model, requests::text, input_tokens::text, output_tokens::text, cost::text
    from ${ALL_ROLLUPS} order by 1, 2, 3, 4, 5`);
const ids = async () => (await gw.gateway.database.rows<{ id: string }>(sql`select id from usage_events order by id`)).map((r) => r.id);

before(async () => {
  gw = await startTestGateway({ TOLLGATE_JOBS: "off" });
  const res = await gw.admin("/api/usage?source=test", {
    method: "POST",
    headers: { "content-type": "application/x-ndjson" },
    body: [...OLD, ...RECENT].map((e) => JSON.stringify(e)).join("\n"),
  });
  assert.equal(res.status, 200);
  await assertRollupsMatchEvents(gw.gateway.database);
});

after(() => gw.close());

test("without TOLLGATE_RETENTION_DAYS nothing is deleted", async () => {
  assert.equal(await deleteExpiredEvents(gw.gateway.database, undefined, NOW), undefined);
  assert.equal((await ids()).length, OLD.length + RECENT.length);
});

test("events older than the retention go in batches; recent ones stay; rollups and reports are unchanged", async () => {
  const rollupsBefore = await rollups();
  const april = async () => ((await (await gw.admin("/api/spend?period=2026-04&by=user&tz=UTC")).json()) as { total: unknown; groups: unknown });
  const aprilBefore = await april();

  const run = await deleteExpiredEvents(gw.gateway.database, 30, NOW, 5);
  assert.deepEqual(run, { cutoff: CUTOFF, deleted: 12, batches: 3 });
  assert.deepEqual(await ids(), RECENT.map((e) => e.id).sort(), "the event exactly at the cutoff is kept");
  assert.deepEqual(await rollups(), rollupsBefore);
  assert.deepEqual(await april(), aprilBefore, "April's spend, by user too, is still reported from the rollups");

  assert.deepEqual(await deleteExpiredEvents(gw.gateway.database, 30, NOW, 5), { cutoff: CUTOFF, deleted: 0, batches: 0 });
});

test("TOLLGATE_RETENTION_DAYS is a whole number of days; unset keeps events forever", () => {
  assert.equal(loadConfig({}).TOLLGATE_RETENTION_DAYS, undefined);
  assert.equal(loadConfig({ TOLLGATE_RETENTION_DAYS: "400" }).TOLLGATE_RETENTION_DAYS, 400);
  for (const bad of ["0", "1.5", "-3", "a year"])
    assert.throws(() => loadConfig({ TOLLGATE_RETENTION_DAYS: bad }), (err: Error) => err instanceof ConfigError && /TOLLGATE_RETENTION_DAYS: expected a whole number of days from 1 to 36500/.test(err.message));
});
