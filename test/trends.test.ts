import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { budgetPeriodChart, cumulative, digestTrend, moversOf, periodBuckets } from "../src/alerts/trends.ts";
import { Chart } from "../src/charts/chart.ts";
import type { Database } from "../src/db/connection.ts";
import { eventBuilder } from "../src/ledger/build-event.ts";
import { UsageEvent, type UsageEventInput } from "../src/ledger/event.ts";
import { type Period, resolvePeriod } from "../src/ledger/period.ts";
import { Recorder } from "../src/ledger/recorder.ts";
import { localDayRanges, spendInRanges, spendPerRange } from "../src/ledger/spend-series.ts";
import { querySpend } from "../src/ledger/spend.ts";
import { picoToDecimalString } from "../src/pricing/money.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { ledgerEvent } from "./helpers/ledger-event.ts";

/*
 * The sums behind the digests' trends and movers and the budget alerts' charts: exact to the
 * pico-dollar (prices far beyond 2^53, so a float anywhere would show), day by local day.
 */

const PRICES: Record<string, bigint> = { big: 987_654_321_987_654_321n, small: 25_000_000_001n };

let database: Database;
let recorder: Recorder;
const builder = eventBuilder((e) => ({ cost: PRICES[e.model] ?? 0n, priced: e.model in PRICES }));

before(async () => {
  database = await openTestDatabase();
  recorder = new Recorder(database, builder, { batchSize: 500, maxWaitMs: 1 });
  // Berlin is UTC+1 in November. Each day in 2026-11-02..15 (local) gets spend; team a is steady,
  // team b grows in the second week; 23:30 UTC is 00:30 the next day in Berlin.
  const events: UsageEvent[] = [];
  for (let d = 2; d <= 15; d++) {
    const day = `2026-11-${String(d).padStart(2, "0")}`;
    events.push(event(`${day}T10:15:00Z`, { team: "a", model: "big" }));
    if (d >= 9) events.push(event(`${day}T11:00:00Z`, { team: "b", model: "big" }), event(`${day}T12:00:00Z`, { team: "b", model: "big" }));
    events.push(event(`${day}T22:45:00Z`, { model: "small" }));
  }
  events.push(event("2026-11-08T23:30:00Z", { team: "c", model: "big" }));
  await record(...events);
});

after(async () => {
  await recorder.close();
  await database.close();
});

let nextId = 0;
function event(ts: string, fields: Partial<UsageEventInput> = {}): UsageEvent {
  return UsageEvent.parse({ source: "test", id: `t${nextId++}`, ts: new Date(ts), tokens: {}, model: "small", ...fields });
}

async function record(...events: UsageEvent[]): Promise<void> {
  const fresh = await recorder.record(events.map((e) => ledgerEvent(builder, e)));
  assert.ok(fresh.every(Boolean));
}

function period(text: string, now: string, timeZone = "Europe/Berlin"): Period {
  const r = resolvePeriod(text, { now: new Date(now), timeZone });
  assert.ok(r.ok);
  return r.period;
}

const BIG = PRICES.big!;
const SMALL = PRICES.small!;

test("spend per local day is exact, split at local midnight, and agrees with querySpend day by day", async () => {
  const days = localDayRanges({ year: 2026, month: 11, day: 8 }, 3, "Europe/Berlin");
  assert.deepEqual(
    days.map((r) => new Date(r.start).toISOString()),
    ["2026-11-07T23:00:00.000Z", "2026-11-08T23:00:00.000Z", "2026-11-09T23:00:00.000Z"],
  );
  const sums = await spendPerRange(database, days, {});
  // 8 Nov local: a's call, the small call at 22:45 UTC (23:45 local). 9 Nov local: team c's call at
  // 00:30 local, then a's and b's two. 10 Nov: a and b's two and the small one.
  assert.deepEqual(sums, [BIG + SMALL, BIG + 3n * BIG + SMALL, 3n * BIG + SMALL]);
  for (const [i, text] of ["2026-11-08", "2026-11-09", "2026-11-10"].entries()) {
    const report = await querySpend(database, { period: period(text, "2026-12-01T00:00Z"), filters: {}, now: new Date("2026-12-01T00:00Z") });
    assert.equal(sums[i], report.total.cost, text);
  }
  // Filtered and split by a dimension: the same exact sums, keyed ('' for spend with no team).
  const split = await spendInRanges(database, days.slice(1, 2), {}, "team");
  assert.deepEqual(
    split.sort((x, y) => x.key.localeCompare(y.key)),
    [
      { range: 0, key: "", cost: SMALL },
      { range: 0, key: "a", cost: BIG },
      { range: 0, key: "b", cost: 2n * BIG },
      { range: 0, key: "c", cost: BIG },
    ],
  );
  assert.deepEqual(await spendPerRange(database, days, { team: "b" }), [0n, 2n * BIG, 2n * BIG]);
  assert.deepEqual(await spendPerRange(database, [], {}), []);
});

test("movers: the largest increases, exact, ties by name; falls and spend with no value are not movers", () => {
  const cur = new Map([["a", 5n], ["b", BIG * 3n], ["c", 10n], ["d", 7n], ["", BIG * 9n]]);
  const prev = new Map([["a", 9n], ["b", BIG], ["c", 3n], ["d", 0n]]);
  assert.deepEqual(moversOf("team", cur, prev), [
    { dimension: "team", key: "b", spend_usd: picoToDecimalString(BIG * 3n), previous_spend_usd: picoToDecimalString(BIG), change_usd: picoToDecimalString(BIG * 2n) },
    { dimension: "team", key: "c", spend_usd: "0.00000000001", previous_spend_usd: "0.000000000003", change_usd: "0.000000000007" },
    { dimension: "team", key: "d", spend_usd: "0.000000000007", previous_spend_usd: "0", change_usd: "0.000000000007" },
  ]);
  assert.equal(picoToDecimalString(BIG * 2n), "1975308.643975308642");
});

test("a digest's trend: the 7 days up to its last day against the 7 before, by day index, and its movers against the period before", async () => {
  const weekly = period("last-week", "2026-11-16T08:00Z");
  const { chart, movers } = await digestTrend(database, {}, weekly, "team", "Daily spend, everything");
  assert.ok(chart);
  assert.doesNotThrow(() => Chart.parse(chart));
  assert.deepEqual(chart.categories, ["Mon 9 Nov", "Tue 10 Nov", "Wed 11 Nov", "Thu 12 Nov", "Fri 13 Nov", "Sat 14 Nov", "Sun 15 Nov"]);
  assert.deepEqual(chart.series.map((s) => s.name), ["Last 7 days", "7 days before"]);
  const usd = (pico: bigint) => picoToDecimalString(pico);
  // Local days: 9 Nov holds team c's call of 23:30 UTC on the 8th; each small call at 22:45 UTC is 23:45 the same local day.
  assert.deepEqual(chart.series[0]!.values, [usd(4n * BIG + SMALL), ...Array(6).fill(usd(3n * BIG + SMALL))]);
  assert.deepEqual(chart.series[1]!.values, Array(7).fill(usd(BIG + SMALL)));
  // Each series sums to the week's exact total.
  const total = (values: string[]) => values.reduce((s, v) => s + toPico(v), 0n);
  const report = await querySpend(database, { period: weekly, filters: {}, now: new Date("2026-11-16T08:00Z") });
  assert.equal(total(chart.series[0]!.values), report.total.cost);
  assert.equal(total(chart.series[1]!.values), report.previous.cost);
  assert.deepEqual(movers, [
    { dimension: "team", key: "b", spend_usd: usd(14n * BIG), previous_spend_usd: "0", change_usd: usd(14n * BIG) },
    { dimension: "team", key: "c", spend_usd: usd(BIG), previous_spend_usd: "0", change_usd: usd(BIG) },
  ]);

  // The daily digest: yesterday (15 Nov) ends the same 7 days; its movers compare with the 14th.
  const daily = await digestTrend(database, {}, period("yesterday", "2026-11-16T08:00Z"), "team", "x");
  assert.deepEqual(daily.chart?.series, chart.series);
  assert.deepEqual(daily.movers, []);
  // No spend in either week: no chart.
  assert.equal((await digestTrend(database, {}, period("last-week", "2027-03-16T08:00Z"), "team", "x")).chart, null);
});

const toPico = (v: string) => {
  const [whole = "0", fraction = ""] = v.split(".");
  return BigInt(whole) * 10n ** 12n + BigInt(fraction.padEnd(12, "0"));
};

test("a budget's period so far: at most 20 buckets of whole local days (hours for a day), contiguous, ending now", () => {
  const month = period("this-month", "2026-10-31T20:00Z");
  const now = new Date("2026-10-31T20:00Z");
  const { ranges, labels } = periodBuckets(month, now);
  assert.ok(ranges.length <= 20 && ranges.length >= 16, String(ranges.length));
  assert.equal(ranges[0]!.start, month.start.getTime());
  assert.equal(ranges.at(-1)!.end, now.getTime());
  ranges.slice(1).forEach((r, i) => assert.equal(r.start, ranges[i]!.end));
  assert.deepEqual(labels.slice(0, 2), ["2 Oct", "4 Oct"]);
  assert.equal(labels.at(-1), "31 Oct");
  // Berlin leaves summer time on 25 Oct: that bucket's days are 23 + 25 hours.
  assert.ok(ranges.every((r) => r.end - r.start <= 2 * 86_400_000 + 3_600_000));

  const day = period("today", "2026-11-02T22:30Z", "UTC");
  const hours = periodBuckets(day, new Date("2026-11-02T22:30Z"));
  assert.equal(hours.ranges.length, 12);
  assert.deepEqual(hours.labels.slice(0, 2), ["02:00", "04:00"]);
  assert.equal(hours.labels.at(-1), "22:30");
  // A period that has not begun has no chart.
  assert.deepEqual(periodBuckets(month, new Date("2026-09-01T00:00Z")), { ranges: [], labels: [] });
  assert.deepEqual(cumulative([1n, 0n, BIG]), [1n, 1n, BIG + 1n]);
});

test("a budget's chart: running spend against the amount, its last point the period's spend so far, exactly", async () => {
  const now = new Date("2026-11-20T12:00Z");
  const month = period("this-month", now.toISOString());
  const chart = await budgetPeriodChart(database, { name: "search <!here>", scope: { team: "b" }, amount: 30n * BIG }, month, now);
  assert.ok(chart);
  assert.doesNotThrow(() => Chart.parse(chart));
  assert.equal(chart.title, "search <!here>: this-month so far");
  assert.equal(chart.categories.length, 20);
  const [spent, amount] = chart.series;
  const report = await querySpend(database, { period: month, filters: { team: "b" }, now });
  assert.equal(toPico(spent!.values.at(-1)!), report.total.cost);
  assert.equal(report.total.cost, 14n * BIG);
  assert.ok(amount!.values.every((v) => v === picoToDecimalString(30n * BIG)));
  // Running totals never fall.
  spent!.values.slice(1).forEach((v, i) => assert.ok(toPico(v) >= toPico(spent!.values[i]!)));
});
