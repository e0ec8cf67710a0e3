import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { after, before, test } from "node:test";
import type { Database } from "../src/db/connection.ts";
import { eventBuilder } from "../src/ledger/build-event.ts";
import { type Dimension, UsageEvent, type UsageEventInput } from "../src/ledger/event.ts";
import { daysOf, resolvePeriod } from "../src/ledger/period.ts";
import { Recorder } from "../src/ledger/recorder.ts";
import { OTHER_KEY, type SpendQuery, type Totals, querySpend, querySpendByDay } from "../src/ledger/spend.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { ledgerEvent } from "./helpers/ledger-event.ts";

// Prices beyond 2^53 pico-USD: a float anywhere on the way would lose the last digits.
const PRICES: Record<string, bigint> = { big: 987_654_321_987_654_321n, mid: 123_456_789_123_456_789n, small: 25_000_000_007n };
const builder = eventBuilder((e) => (e.model in PRICES ? { cost: PRICES[e.model]!, priced: true } : { cost: 0n, priced: false }));

let database: Database;
let recorder: Recorder;

before(async () => {
  database = await openTestDatabase();
  recorder = new Recorder(database, builder, { batchSize: 500, maxWaitMs: 1 });
  // March 2026 and the days around it: whole UTC days, partial hours (minutes past the hour and a
  // Kolkata half hour), the Berlin DST change on 29 March, spend with no team or user, an unpriced model,
  // errors, and the last day cut by "now" mid-hour.
  const teams = ["alpha", "beta", "gamma", "delta", undefined];
  const users = ["u1", "u2", "u3", undefined];
  const models = ["big", "mid", "small", "unpriced"];
  const events: UsageEvent[] = [];
  let n = 0;
  for (let t = Date.parse("2026-02-27T00:00:00Z"); t < Date.parse("2026-04-02T00:00:00Z"); t += 3_600_000 * 7 + 60_000 * 17) {
    for (const minute of [0, 29, 31, 59]) {
      const i = n++;
      events.push(
        UsageEvent.parse({
          source: "test",
          id: `e${i}`,
          ts: new Date(t + minute * 60_000 + (i % 7) * 1000),
          tokens: { input: 10 + i },
          model: models[i % models.length],
          team: teams[(i * 3) % teams.length],
          user: users[(i * 5) % users.length],
          feature: i % 2 ? "chat" : "search",
          status: i % 11 === 0 ? "error" : "ok",
        } satisfies UsageEventInput),
      );
    }
  }
  const fresh = await recorder.record(events.map((e) => ledgerEvent(builder, e)));
  assert.ok(fresh.every(Boolean));
});

after(async () => {
  await recorder.close();
  await database.close();
});

const sumOf = (groups: ({ key: string } & Totals)[]): Totals =>
  groups.reduce<Totals>(
    (a, g) => ({
      cost: a.cost + g.cost,
      requests: a.requests + g.requests,
      errors: a.errors + g.errors,
      unpriced: a.unpriced + g.unpriced,
      input_tokens: a.input_tokens + g.input_tokens,
      cached_input_tokens: a.cached_input_tokens + g.cached_input_tokens,
      cache_write_tokens: a.cache_write_tokens + g.cache_write_tokens,
      output_tokens: a.output_tokens + g.output_tokens,
      reasoning_tokens: a.reasoning_tokens + g.reasoning_tokens,
    }),
    { cost: 0n, requests: 0, errors: 0, unpriced: 0, input_tokens: 0, cached_input_tokens: 0, cache_write_tokens: 0, output_tokens: 0, reasoning_tokens: 0 },
  );

/** Each day of `text` asked alone, as /api/spend?period=DAY would, folded to `keys` plus other, against the by-day read. */
async function assertSameAsEachDay(text: string, timeZone: string, now: string, by: Dimension, keys: string[], filters: SpendQuery["filters"] = {}) {
  const at = new Date(now);
  const resolved = resolvePeriod(text, { now: at, timeZone });
  assert.ok(resolved.ok);
  const series = await querySpendByDay(database, { period: resolved.period, by, filters, keys, now: at });
  const days = daysOf(resolved.period, at);
  assert.deepEqual(
    series.map((d) => d.day.label),
    days.map((d) => d.label),
  );
  let spent = 0n;
  for (const [i, day] of days.entries()) {
    const alone = await querySpend(database, { period: day, by, filters, top: 1000, now: at });
    const named = alone.groups.filter((g) => keys.includes(g.key));
    const rest = alone.groups.filter((g) => !keys.includes(g.key));
    const expected = [...named, ...(rest.length > 0 ? [{ key: OTHER_KEY, ...sumOf(rest) }] : [])];
    assert.deepEqual(series[i]!.total, alone.total, `${text} ${timeZone} by ${by}: total of ${day.label}`);
    assert.deepEqual(series[i]!.groups, expected, `${text} ${timeZone} by ${by}: groups of ${day.label}`);
    spent += alone.total.cost;
    if (Object.keys(filters).length === 0) {
      // And both are what the events themselves add up to: rollups less events past now, or part hours, lose nothing.
      const end = new Date(Math.min(day.end.getTime(), at.getTime())).toISOString();
      const [direct] = await database.rows<{ cost: string; requests: string }>(
        sql`select coalesce(sum(cost), 0)::text as cost, count(*)::text as requests from usage_events where ts >= ${day.start.toISOString()}::timestamptz and ts < ${end}::timestamptz`,
      );
      assert.deepEqual([series[i]!.total.cost, series[i]!.total.requests], [BigInt(direct!.cost), Number(direct!.requests)], `${day.label} from the events`);
    }
  }
  assert.ok(spent > 0n, "the period holds spend");
}

test("by day equals each day's own spend query, in UTC and in zones with whole, half and changing offsets", async () => {
  for (const zone of ["UTC", "Europe/Berlin", "Asia/Kolkata", "America/New_York"]) {
    await assertSameAsEachDay("2026-03", zone, "2026-05-01T00:00:00Z", "team", ["alpha", "(none)", "gamma"]);
  }
});

test("a running period ends at now, mid-hour: the running day is its rollups less what is dated past now", async () => {
  await assertSameAsEachDay("this-month", "UTC", "2026-03-19T13:40:00Z", "team", ["beta", "delta"]);
  await assertSameAsEachDay("this-week", "Asia/Kolkata", "2026-03-19T13:40:00Z", "model", ["big"]);
});

test("by user and with a user filter: user-day rollups and events, folded like the per-day queries", async () => {
  await assertSameAsEachDay("2026-03", "UTC", "2026-05-01T00:00:00Z", "user", ["u1", "(none)"]);
  await assertSameAsEachDay("2026-03", "Europe/Berlin", "2026-05-01T00:00:00Z", "user", ["u2"]);
  await assertSameAsEachDay("2026-03", "UTC", "2026-05-01T00:00:00Z", "team", ["alpha"], { user: "u3" });
});

test("filters and no named keys: all spend is other", async () => {
  await assertSameAsEachDay("last-7d", "UTC", "2026-03-30T08:05:00Z", "feature", [], { team: "beta" });
  await assertSameAsEachDay("2026-03-01..2026-03-31", "Europe/Berlin", "2026-05-01T00:00:00Z", "team", ["alpha", "beta", "gamma", "delta", "(none)"], { model: "big" });
});

test("a period that has not begun: one day, nothing spent", async () => {
  const now = new Date("2026-01-01T00:00:00Z");
  const resolved = resolvePeriod("2030-01", { now, timeZone: "UTC" });
  assert.ok(resolved.ok);
  const series = await querySpendByDay(database, { period: resolved.period, by: "team", filters: {}, keys: ["alpha"], now });
  assert.deepEqual(
    series.map((d) => [d.day.label, d.total.cost, d.groups]),
    [["2030-01-01", 0n, []]],
  );
});
