import assert from "node:assert/strict";
import { test } from "node:test";
import { type Period, previousPeriod, resolvePeriod, startOfLocalDay } from "../src/ledger/period.ts";

function resolve(text: string, now: string, timeZone = "UTC"): Period {
  const r = resolvePeriod(text, { now: new Date(now), timeZone });
  assert.ok(r.ok, `"${text}" should resolve: ${r.ok ? "" : r.error.message}`);
  return r.period;
}

function bounds(p: Period): [string, string] {
  return [p.start.toISOString(), p.end.toISOString()];
}

const HOUR = 3_600_000;

// Sunday 2026-03-29 12:00 UTC: the day Europe/Berlin springs forward.
const SUNDAY = "2026-03-29T12:00:00Z";

test("every named period resolves in UTC", () => {
  const cases: Record<string, [string, string]> = {
    today: ["2026-03-29T00:00:00.000Z", "2026-03-30T00:00:00.000Z"],
    yesterday: ["2026-03-28T00:00:00.000Z", "2026-03-29T00:00:00.000Z"],
    "this-week": ["2026-03-23T00:00:00.000Z", "2026-03-30T00:00:00.000Z"],
    "last-week": ["2026-03-16T00:00:00.000Z", "2026-03-23T00:00:00.000Z"],
    "this-month": ["2026-03-01T00:00:00.000Z", "2026-04-01T00:00:00.000Z"],
    "last-month": ["2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"],
    "this-quarter": ["2026-01-01T00:00:00.000Z", "2026-04-01T00:00:00.000Z"],
    "last-quarter": ["2025-10-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"],
    "this-year": ["2026-01-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z"],
    "last-7d": ["2026-03-23T00:00:00.000Z", "2026-03-30T00:00:00.000Z"],
    "last-30d": ["2026-02-28T00:00:00.000Z", "2026-03-30T00:00:00.000Z"],
    "2026-02": ["2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"],
    "2026-03-01..2026-03-31": ["2026-03-01T00:00:00.000Z", "2026-04-01T00:00:00.000Z"],
    "2026-03-10..2026-03-10": ["2026-03-10T00:00:00.000Z", "2026-03-11T00:00:00.000Z"],
  };
  for (const [text, expected] of Object.entries(cases)) assert.deepEqual(bounds(resolve(text, SUNDAY)), expected, text);
});

test("labels name the period as asked, or the concrete dates", () => {
  assert.equal(resolve("mtd", SUNDAY).label, "this-month");
  assert.equal(resolve("2026-3", SUNDAY).label, "2026-03");
  assert.equal(resolve("2026-3-1 .. 2026-3-9", SUNDAY).label, "2026-03-01..2026-03-09");
});

test("aliases and sloppy spelling are forgiven", () => {
  const same: [string, string][] = [
    ["week", "this-week"],
    ["WTD", "this-week"],
    ["This Week", "this-week"],
    ["this_week", "this-week"],
    ["thisweek", "this-week"],
    [" month ", "this-month"],
    ["mtd", "this-month"],
    ["MTD", "this-month"],
    ["qtd", "this-quarter"],
    ["ytd", "this-year"],
    ["7d", "last-7d"],
    ["last 7 days", "last-7d"],
    ["30d", "last-30d"],
    ["Last-Month", "last-month"],
  ];
  for (const [alias, canonical] of same) {
    const a = resolve(alias, SUNDAY);
    assert.deepEqual(bounds(a), bounds(resolve(canonical, SUNDAY)), alias);
    assert.equal(a.label, canonical, alias);
  }
});

test("a typo answers what was expected and the nearest valid form", () => {
  const r = resolvePeriod("lastmonht", { now: new Date(SUNDAY), timeZone: "UTC" });
  assert.ok(!r.ok);
  assert.equal(r.error.kind, "period");
  assert.equal(r.error.suggestion, "last-month");
  assert.match(r.error.message, /did you mean `last-month`\?/);
  assert.match(r.error.expected, /this-week/);
  assert.match(r.error.expected, /YYYY-MM-DD\.\.YYYY-MM-DD/);

  const wek = resolvePeriod("this-wek", { now: new Date(SUNDAY), timeZone: "UTC" });
  assert.equal(wek.ok ? undefined : wek.error.suggestion, "this-week");
  const banana = resolvePeriod("banana", { now: new Date(SUNDAY), timeZone: "UTC" });
  assert.ok(!banana.ok);
  assert.equal(banana.error.suggestion, undefined, "a guess must be close to be offered");
});

test("impossible dates and ranges are errors, not roll-overs", () => {
  const now = { now: new Date(SUNDAY), timeZone: "UTC" };
  for (const text of ["2026-13", "2026-02-30", "2026-02-29..2026-03-05", "2026-03-01..2026-04-31"]) {
    const r = resolvePeriod(text, now);
    assert.ok(!r.ok, text);
    assert.equal(r.error.kind, "period");
  }
  const reversed = resolvePeriod("2026-03-09..2026-03-01", now);
  assert.ok(!reversed.ok);
  assert.equal(reversed.error.suggestion, "2026-03-01..2026-03-09");
});

test("an unknown time zone is an error value with a suggestion", () => {
  const r = resolvePeriod("today", { now: new Date(SUNDAY), timeZone: "Europe/Berln" });
  assert.ok(!r.ok);
  assert.equal(r.error.kind, "period");
  assert.equal(r.error.suggestion, "Europe/Berlin");
});

test("ISO weeks start on Monday, also across a year boundary", () => {
  // Thursday 2026-01-01: its ISO week began on Monday 2025-12-29.
  assert.deepEqual(bounds(resolve("this-week", "2026-01-01T09:00:00Z")), ["2025-12-29T00:00:00.000Z", "2026-01-05T00:00:00.000Z"]);
  // A Monday is the first day of its own week, a Sunday the last.
  assert.equal(resolve("this-week", "2026-03-23T00:00:00Z").start.toISOString(), "2026-03-23T00:00:00.000Z");
  assert.equal(resolve("this-week", "2026-03-22T23:59:59Z").start.toISOString(), "2026-03-16T00:00:00.000Z");
});

test("the local day, not the UTC day, decides which period it is", () => {
  // 23:30 UTC on Sunday is already Monday in Berlin: a new week there.
  const p = resolve("this-week", "2026-03-22T23:30:00Z", "Europe/Berlin");
  assert.deepEqual(bounds(p), ["2026-03-22T23:00:00.000Z", "2026-03-29T22:00:00.000Z"]);
});

test("Europe/Berlin DST days are 23 and 25 hours long", () => {
  const spring = resolve("today", SUNDAY, "Europe/Berlin");
  assert.deepEqual(bounds(spring), ["2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z"]);
  assert.equal(spring.end.getTime() - spring.start.getTime(), 23 * HOUR);

  const autumn = resolve("today", "2026-10-25T12:00:00Z", "Europe/Berlin");
  assert.deepEqual(bounds(autumn), ["2026-10-24T22:00:00.000Z", "2026-10-25T23:00:00.000Z"]);
  assert.equal(autumn.end.getTime() - autumn.start.getTime(), 25 * HOUR);

  // A month spanning the switch starts at CET midnight and ends at CEST midnight.
  assert.deepEqual(bounds(resolve("this-month", SUNDAY, "Europe/Berlin")), ["2026-02-28T23:00:00.000Z", "2026-03-31T22:00:00.000Z"]);
});

test("America/New_York DST days are 23 and 25 hours long", () => {
  const spring = resolve("today", "2026-03-08T17:00:00Z", "America/New_York");
  assert.deepEqual(bounds(spring), ["2026-03-08T05:00:00.000Z", "2026-03-09T04:00:00.000Z"]);
  const autumn = resolve("yesterday", "2026-11-02T17:00:00Z", "America/New_York");
  assert.deepEqual(bounds(autumn), ["2026-11-01T04:00:00.000Z", "2026-11-02T05:00:00.000Z"]);
  // Just before local midnight it is still the previous day there, though UTC has moved on.
  assert.equal(resolve("today", "2026-03-09T03:59:59Z", "America/New_York").label, "today");
  assert.equal(resolve("today", "2026-03-09T03:59:59Z", "America/New_York").start.toISOString(), "2026-03-08T05:00:00.000Z");
});

test("a day in Asia/Kolkata starts at 18:30 UTC", () => {
  assert.deepEqual(bounds(resolve("today", "2026-07-10T06:00:00Z", "Asia/Kolkata")), ["2026-07-09T18:30:00.000Z", "2026-07-10T18:30:00.000Z"]);
  // 19:00 UTC is already the next day in India.
  assert.deepEqual(bounds(resolve("today", "2026-07-10T19:00:00Z", "Asia/Kolkata")), ["2026-07-10T18:30:00.000Z", "2026-07-11T18:30:00.000Z"]);
});

test("a day whose midnight is skipped begins at the switch", () => {
  // America/Santiago springs forward from 24:00 to 01:00 on 2026-09-06.
  assert.equal(startOfLocalDay({ year: 2026, month: 9, day: 6 }, "America/Santiago").toISOString(), "2026-09-06T04:00:00.000Z");
  assert.equal(startOfLocalDay({ year: 2026, month: 9, day: 7 }, "America/Santiago").toISOString(), "2026-09-07T03:00:00.000Z");
});

test("the previous period is the previous calendar unit", () => {
  const cases: [string, string, [string, string]][] = [
    ["last-month", "2026-03-29T12:00:00Z", ["2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z"]],
    ["this-month", "2026-03-29T12:00:00Z", ["2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"]],
    ["this-month", "2026-01-15T12:00:00Z", ["2025-12-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"]],
    ["this-week", SUNDAY, ["2026-03-16T00:00:00.000Z", "2026-03-23T00:00:00.000Z"]],
    ["this-quarter", SUNDAY, ["2025-10-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"]],
    ["this-year", SUNDAY, ["2025-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"]],
    ["today", SUNDAY, ["2026-03-28T00:00:00.000Z", "2026-03-29T00:00:00.000Z"]],
    // Rolling and custom ranges: as many days immediately before.
    ["last-7d", SUNDAY, ["2026-03-16T00:00:00.000Z", "2026-03-23T00:00:00.000Z"]],
    ["2026-03-01..2026-03-31", SUNDAY, ["2026-01-29T00:00:00.000Z", "2026-03-01T00:00:00.000Z"]],
  ];
  for (const [text, now, expected] of cases) assert.deepEqual(bounds(previousPeriod(resolve(text, now))), expected, `${text} at ${now}`);
  assert.equal(previousPeriod(resolve("this-month", SUNDAY)).label, "2026-02");
  assert.equal(previousPeriod(resolve("qtd", SUNDAY)).label, "2025-Q4");
  assert.equal(previousPeriod(resolve("week", SUNDAY)).label, "2026-03-16..2026-03-22");
});

test("the previous period counts local days across DST, not 24-hour blocks", () => {
  // The day after Berlin springs forward; its previous day is the 23-hour one.
  const prev = previousPeriod(resolve("today", "2026-03-30T12:00:00Z", "Europe/Berlin"));
  assert.deepEqual(bounds(prev), ["2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z"]);
  const week = previousPeriod(resolve("this-week", "2026-04-01T12:00:00Z", "Europe/Berlin"));
  assert.deepEqual(bounds(week), ["2026-03-22T23:00:00.000Z", "2026-03-29T22:00:00.000Z"]);
});
