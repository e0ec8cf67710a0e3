import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Database } from "../src/db/connection.ts";
import { UsageEvent, type UsageEventInput } from "../src/ledger/event.ts";
import { type Period, resolvePeriod } from "../src/ledger/period.ts";
import { eventBuilder } from "../src/ledger/build-event.ts";
import { Recorder } from "../src/ledger/recorder.ts";
import { coverRange, querySpend, SpendReportJson, toJson } from "../src/ledger/spend.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { ledgerEvent } from "./helpers/ledger-event.ts";

// Prices far beyond 2^53 pico-USD: any float on the way would lose the last digits.
const PRICES: Record<string, bigint> = {
  big: 987_654_321_987_654_321n,
  mid: 123_456_789_123_456_789n,
  small: 25_000_000_000n,
  // A family, one of its snapshots, and a snapshot of another family sharing its prefix.
  "gpt-4o": 100_000_000_000_000_001n,
  "gpt-4o-2024-08-06": 200_000_000_000_000_020n,
  "gpt-4o-mini-2024-07-18": 300_000_000_000_000_300n,
};

let database: Database;
let recorder: Recorder;
const builder = eventBuilder((e) => (e.model in PRICES ? { cost: PRICES[e.model]!, priced: true } : { cost: 0n, priced: false }));

before(async () => {
  database = await openTestDatabase();
  recorder = new Recorder(database, builder, { batchSize: 500, maxWaitMs: 1 });
});

after(async () => {
  await recorder.close();
  await database.close();
});

let nextId = 0;
function event(ts: string, fields: Partial<UsageEventInput> = {}): UsageEvent {
  return UsageEvent.parse({ source: "test", id: `e${nextId++}`, ts: new Date(ts), tokens: {}, model: "small", ...fields });
}

async function record(...events: UsageEvent[]): Promise<void> {
  const fresh = await recorder.record(events.map((e) => ledgerEvent(builder, e)));
  assert.ok(fresh.every(Boolean), "every test event is new");
}

function period(text: string, now: string, timeZone = "UTC"): Period {
  const r = resolvePeriod(text, { now: new Date(now), timeZone });
  assert.ok(r.ok);
  return r.period;
}

test("coverRange reads whole days and hours from rollups, partial hours from events", () => {
  const t = (iso: string) => Date.parse(iso);
  const piece = (source: string, start: string, end: string) => ({ source, start: t(start), end: t(end) });
  // A UTC month is whole days.
  assert.deepEqual(coverRange({ start: t("2026-03-01T00:00Z"), end: t("2026-04-01T00:00Z") }, false), [
    piece("day", "2026-03-01T00:00Z", "2026-04-01T00:00Z"),
  ]);
  // A Berlin month: an hour before the first UTC day, two hours after the last.
  assert.deepEqual(coverRange({ start: t("2026-02-28T23:00Z"), end: t("2026-03-31T22:00Z") }, false), [
    piece("hour", "2026-02-28T23:00Z", "2026-03-01T00:00Z"),
    piece("day", "2026-03-01T00:00Z", "2026-03-31T00:00Z"),
    piece("hour", "2026-03-31T00:00Z", "2026-03-31T22:00Z"),
  ]);
  // A Kolkata day spans no whole UTC day; its half hours come from events.
  assert.deepEqual(coverRange({ start: t("2026-09-09T18:30Z"), end: t("2026-09-10T18:30Z") }, false), [
    piece("events", "2026-09-09T18:30Z", "2026-09-09T19:00Z"),
    piece("hour", "2026-09-09T19:00Z", "2026-09-10T18:00Z"),
    piece("events", "2026-09-10T18:00Z", "2026-09-10T18:30Z"),
  ]);
  // Users have no hour grain: partial days come from events.
  assert.deepEqual(coverRange({ start: t("2026-02-28T23:00Z"), end: t("2026-03-31T22:00Z") }, true), [
    piece("events", "2026-02-28T23:00Z", "2026-03-01T00:00Z"),
    piece("user-day", "2026-03-01T00:00Z", "2026-03-31T00:00Z"),
    // 22 hours of a day: the day's row less the events of the 2 hours after is the smaller read.
    piece("user-day", "2026-03-31T00:00Z", "2026-04-01T00:00Z"),
    { ...piece("events", "2026-03-31T22:00Z", "2026-04-01T00:00Z"), sign: -1 },
  ]);
  // 40 minutes of an hour: the hour's rows less the 10 minutes either side.
  assert.deepEqual(coverRange({ start: t("2026-01-01T18:10Z"), end: t("2026-01-01T18:50Z") }, false), [
    piece("hour", "2026-01-01T18:00Z", "2026-01-01T19:00Z"),
    { ...piece("events", "2026-01-01T18:00Z", "2026-01-01T18:10Z"), sign: -1 },
    { ...piece("events", "2026-01-01T18:50Z", "2026-01-01T19:00Z"), sign: -1 },
  ]);
  assert.deepEqual(coverRange({ start: t("2026-01-01T18:10Z"), end: t("2026-01-01T18:25Z") }, false), [piece("events", "2026-01-01T18:10Z", "2026-01-01T18:25Z")]);
  // A range ending now reads its last day whole, less the events dated past now (normally none).
  assert.deepEqual(coverRange({ start: t("2026-12-01T00:00Z"), end: t("2026-12-05T18:25Z") }, false, true), [
    piece("day", "2026-12-01T00:00Z", "2026-12-06T00:00Z"),
    { ...piece("events", "2026-12-05T18:25Z", "2026-12-06T00:00Z"), sign: -1 },
  ]);
  // The previous period cut at the same point is not open: whole hours, then the cheaper side of the part hour.
  assert.deepEqual(coverRange({ start: t("2026-11-01T00:00Z"), end: t("2026-11-05T18:25Z") }, false), [
    piece("day", "2026-11-01T00:00Z", "2026-11-05T00:00Z"),
    piece("hour", "2026-11-05T00:00Z", "2026-11-05T18:00Z"),
    piece("events", "2026-11-05T18:00Z", "2026-11-05T18:25Z"),
  ]);
  assert.deepEqual(coverRange({ start: t("2026-11-01T00:00Z"), end: t("2026-11-05T18:40Z") }, false).slice(2), [
    piece("hour", "2026-11-05T18:00Z", "2026-11-05T19:00Z"),
    { ...piece("events", "2026-11-05T18:40Z", "2026-11-05T19:00Z"), sign: -1 },
  ]);
  assert.deepEqual(coverRange({ start: t("2026-01-01T18:10Z"), end: t("2026-01-01T18:10Z") }, false), []);
});

test("spend by team, key and model with filters: exact sums, (none), unpriced, previous", async () => {
  await record(
    event("2026-01-05T10:00:00Z", {
      model: "big",
      team: "search",
      api_key_id: "k1",
      tokens: { input: 1000, cached_input: 200, cache_write: 100, output: 50, reasoning: 10 },
    }),
    event("2026-01-31T23:59:59.999Z", { model: "mid", team: "search", api_key_id: "k2", tokens: { input: 500, output: 5 }, status: "error" }),
    event("2026-01-15T08:20:00Z", { model: "small", team: "ads", api_key_id: "k1", tokens: { input: 7 } }),
    event("2026-01-20T12:00:00Z", { model: "mystery", tokens: { input: 3 } }),
    // Just outside: the next month, and the previous one.
    event("2026-02-01T00:00:00Z", { model: "big", team: "search" }),
    event("2025-12-31T23:59:59.999Z", { model: "big", team: "search" }),
  );
  const jan = period("2026-01", "2026-03-01T00:00:00Z");

  const byTeam = await querySpend(database, { period: jan, by: "team", filters: {} });
  assert.deepEqual(byTeam.period, { start: new Date("2026-01-01T00:00:00Z"), end: new Date("2026-02-01T00:00:00Z"), label: "2026-01" });
  assert.deepEqual(byTeam.total, {
    cost: 1_111_111_136_111_111_110n,
    requests: 4,
    errors: 1,
    unpriced: 1,
    input_tokens: 1510,
    cached_input_tokens: 200,
    cache_write_tokens: 100,
    output_tokens: 55,
    reasoning_tokens: 10,
  });
  assert.equal(byTeam.unpriced_requests, 1);
  assert.deepEqual(
    byTeam.groups.map((g) => [g.key, g.cost, g.requests, g.unpriced]),
    [
      ["search", 1_111_111_111_111_111_110n, 2, 0],
      ["ads", 25_000_000_000n, 1, 0],
      ["(none)", 0n, 1, 1],
    ],
  );
  assert.equal(byTeam.previous.cost, 987_654_321_987_654_321n);
  assert.equal(byTeam.previous.requests, 1);

  const searchByKey = await querySpend(database, { period: jan, by: "key", filters: { team: "search" } });
  assert.deepEqual(
    searchByKey.groups.map((g) => [g.key, g.cost, g.errors]),
    [
      ["k1", 987_654_321_987_654_321n, 0],
      ["k2", 123_456_789_123_456_789n, 1],
    ],
  );
  assert.equal(searchByKey.total.requests, 2);
  assert.equal(searchByKey.previous.requests, 1, "filters apply to the previous period too");

  const k1ByModel = await querySpend(database, { period: jan, by: "model", filters: { key: "k1" } });
  assert.deepEqual(k1ByModel.groups.map((g) => g.key), ["big", "small"]);

  const unattributed = await querySpend(database, { period: jan, filters: { team: "(none)" } });
  assert.deepEqual([unattributed.total.requests, unattributed.total.cost, unattributed.groups], [1, 0n, []]);

  const nobody = await querySpend(database, { period: jan, by: "team", filters: { team: "search", model: "small" } });
  assert.deepEqual([nobody.total.requests, nobody.groups], [0, []]);
});

test("a model filter takes the family's dated snapshots, from rollups and events alike, and no other family", async () => {
  // The Kolkata day 2026-10-10 is 2026-10-09T18:30Z..2026-10-10T18:30Z: its edges are read from events.
  const [family, snapshot, other] = ["gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18"];
  await record(
    event("2026-10-09T18:40:00Z", { model: snapshot }),
    event("2026-10-10T05:00:00Z", { model: family }),
    event("2026-10-10T06:00:00Z", { model: snapshot }),
    event("2026-10-10T07:00:00Z", { model: other }),
    event("2026-10-10T18:20:00Z", { model: other }),
    event("2026-10-09T10:00:00Z", { model: snapshot }), // the day before
    event("2026-10-09T11:00:00Z", { model: other }), // the day before
  );
  const day = period("2026-10-10", "2026-11-01T00:00:00Z", "Asia/Kolkata");
  const spend = (model: string) => querySpend(database, { period: day, by: "model", filters: { model } });

  const ofFamily = await spend(family);
  assert.deepEqual([ofFamily.total.requests, ofFamily.total.cost], [3, PRICES[family]! + 2n * PRICES[snapshot]!]);
  assert.deepEqual(
    ofFamily.groups.map((g) => [g.key, g.requests]),
    [
      [snapshot, 2],
      [family, 1],
    ],
    "groups keep the model that answered",
  );
  assert.deepEqual([ofFamily.previous.requests, ofFamily.previous.cost], [1, PRICES[snapshot]!]);

  const ofSnapshot = await spend(snapshot);
  assert.deepEqual([ofSnapshot.total.requests, ofSnapshot.total.cost], [2, 2n * PRICES[snapshot]!]);
  const ofMini = await spend("gpt-4o-mini");
  assert.deepEqual([ofMini.total.requests, ofMini.total.cost, ofMini.previous.requests], [2, 2n * PRICES[other]!, 1]);
  assert.equal((await spend("gpt-4")).total.requests, 0);
});

test("top N groups by cost, the rest summed as other", async () => {
  // Team tN spends N small calls in November.
  const events = [1, 2, 3, 4, 5].flatMap((n) =>
    Array.from({ length: n }, (_, i) => event(`2026-11-${String(10 + i).padStart(2, "0")}T09:00:00Z`, { team: `t${n}` })),
  );
  await record(...events);
  const nov = period("2026-11", "2026-12-01T00:00:00Z");
  const small = PRICES.small!;

  const top2 = await querySpend(database, { period: nov, by: "team", filters: {}, top: 2 });
  assert.deepEqual(
    top2.groups.map((g) => [g.key, g.cost, g.requests]),
    [
      ["t5", 5n * small, 5],
      ["t4", 4n * small, 4],
      ["other", 6n * small, 6],
    ],
  );
  assert.equal(top2.total.cost, 15n * small);

  const all = await querySpend(database, { period: nov, by: "team", filters: {}, top: 5 });
  assert.deepEqual(all.groups.map((g) => g.key), ["t5", "t4", "t3", "t2", "t1"]);
  const defaultTop = await querySpend(database, { period: nov, by: "team", filters: {} });
  assert.equal(defaultTop.groups.length, 5);
});

test("a running period compares with the previous one cut to the same elapsed time", async () => {
  await record(
    event("2026-04-02T10:00:00Z", { model: "big" }),
    event("2026-04-10T11:30:00Z", { model: "mid" }), // this hour, before now
    event("2026-04-10T12:30:00Z", { model: "big" }), // stamped after now
    event("2026-03-05T10:00:00Z", { model: "small" }),
    event("2026-03-10T11:59:59.999Z", { model: "mid" }), // same elapsed point last month: in
    event("2026-03-10T12:00:00Z", { model: "big" }), // just past it: out
    event("2026-03-20T10:00:00Z", { model: "big" }),
  );
  const now = "2026-04-10T12:00:00Z";
  const april = await querySpend(database, { period: period("this-month", now), filters: {}, now: new Date(now) });
  assert.equal(april.period.end.toISOString(), "2026-05-01T00:00:00.000Z", "the period keeps its calendar end");
  assert.equal(april.total.requests, 2);
  assert.equal(april.total.cost, PRICES.big! + PRICES.mid!);
  assert.equal(april.previous.requests, 2);
  assert.equal(april.previous.cost, PRICES.small! + PRICES.mid!);

  // Once the period is over, both are whole.
  const after = await querySpend(database, { period: period("last-month", "2026-05-02T00:00:00Z"), filters: {}, now: new Date("2026-05-02T00:00:00Z") });
  assert.equal(after.total.requests, 3);
  assert.equal(after.previous.requests, 4);
});

test("a longer month is compared with all of a shorter previous one, never beyond it", async () => {
  await record(event("2026-06-15T10:00:00Z", { model: "mid" }), event("2026-07-01T06:00:00Z", { model: "big" }));
  const now = "2026-07-31T12:00:00Z";
  const july = await querySpend(database, { period: period("this-month", now), filters: {}, now: new Date(now) });
  assert.equal(july.total.cost, PRICES.big);
  assert.equal(july.previous.cost, PRICES.mid);
});

test("half-hour zones stay exact at the edges (Asia/Kolkata)", async () => {
  // The Kolkata day 2026-09-10 is 2026-09-09T18:30Z..2026-09-10T18:30Z: both edges split a UTC hour.
  await record(
    event("2026-09-08T18:20:00Z", { model: "small", team: "x" }), // before the previous day
    event("2026-09-09T18:10:00Z", { model: "small", team: "x" }), // previous day
    event("2026-09-09T18:29:59.999Z", { model: "small" }), // previous day
    event("2026-09-09T18:30:00Z", { model: "big", team: "x" }),
    event("2026-09-09T18:50:00Z", { model: "mid" }),
    event("2026-09-10T05:00:00Z", { model: "big", team: "x", tokens: { input: 11 } }),
    event("2026-09-10T18:29:59.999Z", { model: "mid", team: "x", tokens: { input: 5 } }),
    event("2026-09-10T18:30:00Z", { model: "big", team: "x" }), // next day
    event("2026-09-10T18:45:00Z", { model: "big" }), // next day
  );
  const day = period("2026-09-10", "2026-10-01T00:00:00Z", "Asia/Kolkata");
  assert.equal(day.start.toISOString(), "2026-09-09T18:30:00.000Z");
  const r = await querySpend(database, { period: day, by: "team", filters: {} });
  assert.equal(r.total.requests, 4);
  assert.equal(r.total.cost, 2n * PRICES.big! + 2n * PRICES.mid!);
  assert.equal(r.total.input_tokens, 16);
  // Team x has spend both in whole hours (rollups) and at the edges (events): one group.
  assert.deepEqual(
    r.groups.map((g) => [g.key, g.cost, g.requests]),
    [
      ["x", 2n * PRICES.big! + PRICES.mid!, 3],
      ["(none)", PRICES.mid!, 1],
    ],
  );
  assert.equal(r.previous.requests, 2);
  assert.equal(r.previous.cost, 2n * PRICES.small!);

  const onlyX = await querySpend(database, { period: day, filters: { team: "x" } });
  assert.equal(onlyX.total.requests, 3);
  assert.equal(onlyX.previous.requests, 1, "filters apply at the edges too");
});

test("by user: user-day rollups for whole UTC days, events for the rest (Europe/Berlin)", async () => {
  // August in Berlin is 2026-07-31T22:00Z..2026-08-31T22:00Z.
  await record(
    event("2026-07-31T22:30:00Z", { model: "big", user: "u1" }),
    event("2026-08-15T10:00:00Z", { model: "mid", user: "u2", team: "t" }),
    event("2026-08-15T11:00:00Z", { model: "small", user: "u1", team: "t" }),
    event("2026-08-31T21:59:59.999Z", { model: "small", user: "u2" }),
    event("2026-08-31T22:00:00Z", { model: "big", user: "u1" }), // September in Berlin
    event("2026-07-31T21:00:00Z", { model: "mid", user: "u1" }), // July in Berlin
  );
  const august = period("2026-08", "2026-10-01T00:00:00Z", "Europe/Berlin");
  const byUser = await querySpend(database, { period: august, by: "user", filters: {} });
  assert.deepEqual(
    byUser.groups.map((g) => [g.key, g.cost, g.requests]),
    [
      ["u1", PRICES.big! + PRICES.small!, 2],
      ["u2", PRICES.mid! + PRICES.small!, 2],
    ],
  );
  // July in Berlin also holds the unattributed 2026-07-01 call of an earlier test.
  assert.deepEqual([byUser.previous.requests, byUser.previous.cost], [2, PRICES.big! + PRICES.mid!]);

  const u1 = await querySpend(database, { period: august, by: "team", filters: { user: "u1" } });
  assert.deepEqual(
    u1.groups.map((g) => [g.key, g.cost]),
    [
      ["(none)", PRICES.big!],
      ["t", PRICES.small!],
    ],
  );
  assert.deepEqual([u1.previous.requests, u1.previous.cost], [1, PRICES.mid!]);

  // Without users the hour and day grains answer, with the same totals.
  const byTeam = await querySpend(database, { period: august, by: "team", filters: {} });
  assert.deepEqual(byTeam.total, byUser.total);
  assert.deepEqual(byTeam.previous, byUser.previous);
});

test("a period that has not begun is all zeros", async () => {
  const future = period("2030-01", "2026-01-01T00:00:00Z");
  const r = await querySpend(database, { period: future, by: "team", filters: {}, now: new Date("2026-01-01T00:00:00Z") });
  assert.equal(r.total.cost, 0n);
  assert.equal(r.total.requests, 0);
  assert.equal(r.previous.requests, 0);
  assert.deepEqual(r.groups, []);
});

test("toJson: money as exact decimal USD strings, the API's field names", async () => {
  const jan = period("2026-01", "2026-03-01T00:00:00Z");
  const json = toJson(await querySpend(database, { period: jan, by: "team", filters: {}, top: 1 }));
  const text = JSON.stringify(json);
  assert.deepEqual(SpendReportJson.parse(JSON.parse(text)), json);
  assert.deepEqual(json.period, { start: "2026-01-01T00:00:00.000Z", end: "2026-02-01T00:00:00.000Z", label: "2026-01" });
  assert.deepEqual(json.total, {
    cost_usd: "1111111.13611111111",
    requests: 4,
    errors: 1,
    unpriced: 1,
    input_tokens: 1510,
    cached_input_tokens: 200,
    cache_write_tokens: 100,
    output_tokens: 55,
    reasoning_tokens: 10,
  });
  assert.equal(json.previous.cost_usd, "987654.321987654321");
  assert.deepEqual(
    json.groups.map((g) => [g.key, g.cost_usd]),
    [
      ["search", "1111111.11111111111"],
      ["other", "0.025"],
    ],
  );
  assert.equal(json.unpriced_requests, 1);
});
