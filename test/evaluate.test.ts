import assert from "node:assert/strict";
import { test } from "node:test";
import { Alert } from "../src/alerts/alert.ts";
import { budgetAlert } from "../src/alerts/budget-alerts.ts";
import { digestAlert, digestDue, localClock } from "../src/alerts/digest.ts";
import { type HourlyFacts, BASELINE_HOURS, detectAnomaly, isqrt } from "../src/budgets/anomaly.ts";
import { type Budget, budgetPeriod } from "../src/budgets/budget.ts";
import { type BudgetFacts, type Decision, type Firing, evaluateBudget, nextLine } from "../src/budgets/evaluate.ts";
import { FORECAST_METHOD, forecastReady, forecastSpend, recentWindowStart } from "../src/budgets/forecast.ts";
import { budgetState } from "../src/budgets/status.ts";
import { previousPeriod } from "../src/ledger/period.ts";
import { PICO_PER_USD } from "../src/pricing/money.ts";
import { sampleBudget } from "./helpers/sample-budget.ts";

const usd = (n: number | string) => BigInt(n) * PICO_PER_USD;
const at = (iso: string) => new Date(iso);
const HOUR = 3_600_000;

const budget = sampleBudget;

const NOW = at("2026-03-10T12:00Z");

function facts(b: Budget, spend: bigint, more: Partial<BudgetFacts> = {}, now = NOW): BudgetFacts {
  const period = budgetPeriod(b, now);
  return { budget: b, period, previousStart: previousPeriod(period).start, spend, forecast: null, anomaly: null, firings: [], ...more };
}

function firing(kind: string, threshold: number, amount: bigint, periodStart: Date, firedAt = periodStart): Firing {
  return { kind, threshold, amount, periodStart, firedAt };
}

/** Decisions as `kind threshold notify` lines, easy to compare. */
const summary = (decisions: Decision[]) => decisions.map((d) => `${d.kind} ${d.threshold}${d.notify ? " notify" : ""}${d.reason ? ` ${d.reason}` : ""}`);

/** The firings a set of decisions records, as the evaluator writes them. */
const recorded = (b: Budget, decisions: Decision[], firedAt = NOW) => decisions.map((d) => firing(d.kind, d.threshold, b.amount, d.periodStart, firedAt));

test("thresholds crossed together record every one and send only the highest", () => {
  const b = budget();
  const first = evaluateBudget(facts(b, usd(410)));
  assert.deepEqual(summary(first), ["threshold 80 notify", "threshold 50"]);
  // The lower ones are recorded too, so they never fire later.
  assert.deepEqual(summary(evaluateBudget(facts(b, usd(450), { firings: recorded(b, first) }))), []);
  assert.deepEqual(summary(evaluateBudget(facts(b, usd(500), { firings: recorded(b, first) }))), ["threshold 100 notify"]);
});

test("a threshold is crossed at exactly its percent and not one pico-dollar before", () => {
  const b = budget({ amount: usd(500) });
  assert.deepEqual(summary(evaluateBudget(facts(b, usd(250) - 1n))), []);
  assert.deepEqual(summary(evaluateBudget(facts(b, usd(250)))), ["threshold 50 notify"]);
});

test("the next line is the lowest threshold not yet reached, or the amount of a hard budget, to the pico-dollar", () => {
  const b = budget({ amount: 3n, thresholds: [50, 80] });
  // 50 % of 3 pico-dollars is reached at 2 (2 × 100 ≥ 50 × 3), 80 % at 3.
  assert.equal(nextLine(b, 0n), 2n);
  assert.equal(nextLine(b, 1n), 2n);
  assert.equal(nextLine(b, 2n), 3n);
  assert.equal(nextLine(b, 3n), null);
  assert.equal(nextLine({ ...b, mode: "hard" }, 3n), null);
  assert.equal(nextLine(budget({ mode: "hard", thresholds: [50] }), usd(300)), usd(500));
  assert.equal(nextLine(budget({ thresholds: [50, 120] }), usd(500)), usd(600));
});

test("a paused budget records and sends nothing", () => {
  assert.deepEqual(evaluateBudget(facts(budget({ paused: true, mode: "hard" }), usd(900))), []);
});

test("a hard budget reaching its amount sends blocked; the thresholds crossed with it are recorded unsent", () => {
  const b = budget({ mode: "hard" });
  assert.deepEqual(summary(evaluateBudget(facts(b, usd(500)))), ["blocked 0 notify", "threshold 100", "threshold 80", "threshold 50"]);
  const soft = budget({ mode: "soft" });
  assert.deepEqual(summary(evaluateBudget(facts(soft, usd(500)))), ["threshold 100 notify", "threshold 80", "threshold 50"]);
});

test("a raise mid-period counts the spend already made: back under at once, and the new amount's lines are new", () => {
  const before = budget({ mode: "hard", amount: usd(500) });
  const start = budgetPeriod(before, NOW).start;
  const over = evaluateBudget(facts(before, usd(700)));
  const history = recorded(before, over, at("2026-03-08T00:00Z"));
  // Raised to $800 with $700 spent: 87 % of the new amount.
  const raised = budget({ mode: "hard", amount: usd(800) });
  const after = evaluateBudget(facts(raised, usd(700), { firings: history }));
  assert.deepEqual(summary(after), ["recovered 0 notify raise", "threshold 80", "threshold 50"]);
  assert.ok(after.every((d) => d.periodStart.getTime() === start.getTime()));
  // Later the new amount is reached: its 100 % and block are news, the old amount's never again.
  const later = [...history, ...recorded(raised, after, at("2026-03-09T00:00Z"))];
  assert.deepEqual(summary(evaluateBudget(facts(raised, usd(810), { firings: later }))), ["blocked 0 notify", "threshold 100"]);
  assert.deepEqual(summary(evaluateBudget(facts(before, usd(810), { firings: later }))), []);
});

test("a new period after one that ended over is back under once; one that ended under is not", () => {
  const b = budget();
  const march = budgetPeriod(b, NOW);
  const april = at("2026-04-01T00:05Z");
  const aprilStart = budgetPeriod(b, april).start;
  assert.equal(previousPeriod(budgetPeriod(b, april)).start.getTime(), march.start.getTime());
  const endedOver = [firing("threshold", 100, b.amount, march.start, at("2026-03-20T00:00Z"))];
  const first = evaluateBudget(facts(b, 0n, { firings: endedOver }, april));
  assert.deepEqual(summary(first), ["recovered 0 notify new_period"]);
  assert.equal(first[0]!.periodStart.getTime(), aprilStart.getTime());
  const again = [...endedOver, ...recorded(b, first, april)];
  assert.deepEqual(summary(evaluateBudget(facts(b, usd(1), { firings: again }, april))), []);
  // Over, then raised and back under before March ended: April starts with nothing to say.
  const recoveredInMarch = [...endedOver, firing("recovered", 0, usd(900), march.start, at("2026-03-21T00:00Z"))];
  assert.deepEqual(summary(evaluateBudget(facts(b, 0n, { firings: recoveredInMarch }, april))), []);
});

test("budget periods follow the budget's zone across month ends and DST changes", () => {
  // Berlin is UTC+2 from 29 March: its April begins at 22:00 UTC on 31 March.
  const berlin = budget({ timezone: "Europe/Berlin" });
  const lateMarch = at("2026-03-31T22:30Z");
  assert.equal(budgetPeriod(berlin, lateMarch).start.toISOString(), "2026-03-31T22:00:00.000Z");
  assert.equal(budgetPeriod(budget(), lateMarch).start.toISOString(), "2026-03-01T00:00:00.000Z");
  // A firing from Berlin's March does not hold back April's.
  const marchFirings = [firing("threshold", 50, berlin.amount, at("2026-02-28T23:00Z"))];
  assert.deepEqual(summary(evaluateBudget(facts(berlin, usd(260), { firings: marchFirings }, lateMarch))), ["threshold 50 notify"]);

  // The ISO week holding New York's return to standard time (Sunday 1 November) is 169 hours long.
  const weekly = budget({ period: "week", timezone: "America/New_York" });
  const week = budgetPeriod(weekly, at("2026-10-30T12:00Z"));
  assert.equal(week.start.toISOString(), "2026-10-26T04:00:00.000Z");
  assert.equal((week.end.getTime() - week.start.getTime()) / HOUR, 169);
  // 20 % of it is 33.8 hours.
  assert.equal(forecastReady(week, new Date(week.start.getTime() + 33.7 * HOUR)), false);
  assert.equal(forecastReady(week, new Date(week.start.getTime() + 33.8 * HOUR)), true);

  // Berlin's spring-forward day has 23 hours; a day budget forecasts after 20 % of them.
  const daily = budget({ period: "day", timezone: "Europe/Berlin" });
  const day = budgetPeriod(daily, at("2026-03-29T10:00Z"));
  assert.equal((day.end.getTime() - day.start.getTime()) / HOUR, 23);
  assert.equal(forecastReady(day, new Date(day.start.getTime() + 4.5 * HOUR)), false);
  assert.equal(forecastReady(day, new Date(day.start.getTime() + 4.6 * HOUR)), true);
});

test("forecast: none before enough of the period has passed, then spend plus the recent run rate over the time left", () => {
  const month = budgetPeriod(budget(), NOW); // March 2026, 31 days
  // 20 % of 31 days is 6.2 days.
  assert.equal(forecastReady(month, at("2026-03-07T04:00Z")), false);
  assert.equal(forecastReady(month, at("2026-03-07T05:00Z")), true);
  // Longer periods wait at most 7 days.
  const quarter = budgetPeriod(budget({ period: "quarter" }), NOW);
  assert.equal(forecastReady(quarter, at("2026-01-07T23:00Z")), false);
  assert.equal(forecastReady(quarter, at("2026-01-08T00:00Z")), true);
  assert.equal(forecastSpend({ period: month, now: at("2026-03-03T00:00Z"), spend: usd(100), recentSpend: usd(100) }), null);

  // On 11 March at midnight the window is 4–11 March: $70 in 7 days is $10 a day, 21 days left.
  const now = at("2026-03-11T00:00Z");
  assert.equal(recentWindowStart(month, now).toISOString(), "2026-03-04T00:00:00.000Z");
  assert.equal(forecastSpend({ period: month, now, spend: usd(100), recentSpend: usd(70) }), usd(310));
  // Midday: the window holds today's half day too, 180 hours; 492 hours are left.
  const midday = at("2026-03-11T12:00Z");
  assert.equal(forecastSpend({ period: month, now: midday, spend: usd(100), recentSpend: usd(75) }), usd(305));
  // A week budget's window is the week so far.
  const week = budgetPeriod(budget({ period: "week" }), NOW); // Monday 9 March
  assert.equal(recentWindowStart(week, NOW).toISOString(), "2026-03-09T00:00:00.000Z");
});

test("a forecast over the amount is sent while under it, unless a threshold alert goes out with it", () => {
  const b = budget();
  assert.deepEqual(summary(evaluateBudget(facts(b, usd(200), { forecast: usd(650) }))), ["forecast 0 notify"]);
  assert.deepEqual(summary(evaluateBudget(facts(b, usd(260), { forecast: usd(650) }))), ["threshold 50 notify", "forecast 0"]);
  assert.deepEqual(summary(evaluateBudget(facts(b, usd(200), { forecast: usd(500) }))), []);
  assert.deepEqual(summary(evaluateBudget(facts(b, usd(500), { forecast: usd(900) }))), ["threshold 100 notify", "threshold 80", "threshold 50"]);
});

/** Hourly facts from a list of hourly spends, oldest first, ending just before `hour`. */
function hours(values: bigint[], recent: bigint, hour = at("2026-03-10T12:00Z")): HourlyFacts {
  const padded = [...Array(BASELINE_HOURS - values.length).fill(0n), ...values] as bigint[];
  const firstIndex = padded.findIndex((v) => v > 0n);
  return {
    hour,
    recent,
    baselineSum: padded.reduce((a, v) => a + v, 0n),
    baselineSquares: padded.reduce((a, v) => a + v * v, 0n),
    firstSpendAt: firstIndex === -1 ? null : new Date(hour.getTime() - (BASELINE_HOURS - firstIndex) * HOUR),
  };
}

test("anomaly: far above the scope's own hourly baseline, over the floor, with a day of history", () => {
  const floor = usd(5);
  const steady = Array(BASELINE_HOURS).fill(usd(1)) as bigint[];
  const verdict = detectAnomaly(hours(steady, usd(10)), floor);
  assert.ok(verdict);
  assert.equal(verdict.mean, usd(1));
  assert.equal(verdict.stddev, 0n);
  // A steady scope has no deviation: three times its mean is still needed.
  assert.equal(detectAnomaly(hours(steady, usd(3) - 1n), usd(1)), null);
  assert.ok(detectAnomaly(hours(steady, usd(3)), usd(1)));
  // The floor: 40 × a tiny baseline is nobody's emergency.
  const tiny = Array(BASELINE_HOURS).fill(usd(1) / 10n) as bigint[];
  assert.equal(detectAnomaly(hours(tiny, usd(4)), floor), null);
  // A scope with less than a day of history has no baseline to be far from.
  assert.equal(detectAnomaly(hours(Array(23).fill(usd(1)) as bigint[], usd(50)), floor), null);
  assert.ok(detectAnomaly(hours(Array(24).fill(usd(1)) as bigint[], usd(50)), floor));
  // A noisy scope: $0 and $10 by turns, mean $5, deviation $5; $20 is not beyond 3 deviations, $20.01 is.
  const noisy = Array.from({ length: BASELINE_HOURS }, (_, i) => (i % 2 === 0 ? 0n : usd(10)));
  assert.equal(detectAnomaly(hours(noisy, usd(20)), floor), null);
  const surge = detectAnomaly(hours(noisy, usd(20) + PICO_PER_USD / 100n), floor);
  assert.ok(surge);
  assert.equal(surge.mean, usd(5));
  assert.equal(surge.stddev, usd(5));
});

test("isqrt is the exact floor of the square root", () => {
  for (const n of [0n, 1n, 2n, 3n, 4n, 15n, 16n, 17n, 10n ** 30n, 10n ** 30n - 1n]) {
    const r = isqrt(n);
    assert.ok(r * r <= n && (r + 1n) * (r + 1n) > n, `isqrt(${n}) = ${r}`);
  }
});

test("an anomaly is keyed by its hour and not sent again within the quiet hours", () => {
  const b = budget();
  const anomaly = detectAnomaly(hours(Array(BASELINE_HOURS).fill(usd(1)) as bigint[], usd(40)), usd(5));
  assert.ok(anomaly);
  const decisions = evaluateBudget(facts(b, usd(10), { anomaly }));
  assert.deepEqual(summary(decisions), ["anomaly 0 notify"]);
  assert.equal(decisions[0]!.periodStart.toISOString(), "2026-03-10T12:00:00.000Z");
  const fiveHoursAgo = [firing("anomaly", 0, b.amount, at("2026-03-10T07:00Z"))];
  assert.deepEqual(summary(evaluateBudget(facts(b, usd(10), { anomaly, firings: fiveHoursAgo }))), []);
  const sixHoursAgo = [firing("anomaly", 0, b.amount, at("2026-03-10T06:00Z"))];
  assert.deepEqual(summary(evaluateBudget(facts(b, usd(10), { anomaly, firings: sixHoursAgo }))), ["anomaly 0 notify"]);
  // Sent beside a threshold alert, not instead of it.
  assert.deepEqual(summary(evaluateBudget(facts(b, usd(260), { anomaly }))), ["threshold 50 notify", "anomaly 0 notify"]);
});

test("budget state: paused, blocked or over at the amount, warning past a lower threshold or on course to exceed", () => {
  assert.equal(budgetState(budget({ paused: true }), usd(900), null), "paused");
  assert.equal(budgetState(budget({ mode: "hard" }), usd(500), null), "blocked");
  assert.equal(budgetState(budget(), usd(500), null), "over");
  assert.equal(budgetState(budget(), usd(250), null), "warning");
  assert.equal(budgetState(budget(), usd(100), usd(600)), "warning");
  assert.equal(budgetState(budget(), usd(100), usd(400)), "ok");
});

test("a budget alert carries spend, amount, percent, period end, forecast, contributors and its actions", () => {
  const b = budget({ timezone: "Europe/Berlin", mode: "hard" });
  const period = budgetPeriod(b, NOW);
  const top = [{ dimension: "project" as const, key: "ranking", spend_usd: "300" }];
  const alert = budgetAlert({
    id: "f1",
    decision: { kind: "threshold", threshold: 80, periodStart: period.start, notify: true },
    budget: b,
    period,
    spend: usd(412) + PICO_PER_USD / 4n,
    forecast: usd(640),
    runOut: at("2026-03-24T12:30Z"),
    anomaly: null,
    top,
    chart: null,
    now: NOW,
  });
  assert.doesNotThrow(() => Alert.parse(alert));
  assert.equal(alert.title, "search-monthly passed 80 % of $500.00");
  assert.equal(alert.spend_usd, "412.25");
  assert.equal(alert.amount_usd, "500");
  assert.equal(alert.percent, 82);
  assert.equal(alert.forecast_usd, "640");
  assert.equal(alert.forecast_method, FORECAST_METHOD);
  assert.deepEqual(alert.period, { start: "2026-02-28T23:00:00.000Z", end: "2026-03-31T22:00:00.000Z" });
  assert.match(alert.summary, /\$412\.25 of \$500\.00 \(82 %\) spent on team:search in this-month; the period ends 1 Apr 2026, 00:00 Europe\/Berlin\. Forecast for the period: \$640\.00\. At this pace \$500\.00 is reached 24 Mar 2026, 13:30 Europe\/Berlin\./);
  assert.equal(alert.run_out_at, "2026-03-24T12:30:00.000Z");
  assert.deepEqual(alert.top, top);
  assert.deepEqual(alert.actions.map((a) => a.action), ["request_raise", "mute", "breakdown"]);
  assert.ok(alert.actions.every((a) => a.target === "search-monthly"));

  const blocked = budgetAlert({ id: "f2", decision: { kind: "blocked", threshold: 0, periodStart: period.start, notify: true }, budget: b, period, spend: usd(501), forecast: null, runOut: null, anomaly: null, top, chart: null, now: NOW });
  assert.equal(blocked.run_out_at, null);
  // The run-out date is said on the alerts that look ahead, not on a recovery or an anomaly.
  const outlook = (kind: "forecast" | "recovered") =>
    budgetAlert({ id: kind, decision: { kind, threshold: 0, periodStart: period.start, notify: true }, budget: b, period, spend: usd(300), forecast: usd(640), runOut: at("2026-03-24T12:30Z"), anomaly: null, top, chart: null, now: NOW });
  assert.equal(outlook("forecast").run_out_at, "2026-03-24T12:30:00.000Z");
  assert.match(outlook("forecast").summary, /At this pace \$500\.00 is reached 24 Mar 2026, 13:30 Europe\/Berlin\./);
  assert.equal(outlook("recovered").run_out_at, null);
  assert.doesNotMatch(outlook("recovered").summary, /At this pace/);
  assert.equal(blocked.details.resets_at, "2026-03-31T22:00:00.000Z");
  assert.match(blocked.summary, /refused \(429 budget_exceeded\)/);
  assert.equal(blocked.forecast_usd, null);
});

test("digests are due at the set hour in each channel's zone, once a day through DST changes and odd offsets", () => {
  // An hourly job at minute 0 over two days around each zone's changes: exactly one run a local day is due.
  const days = ["2026-03-29", "2026-10-25", "2026-11-01", "2026-04-05"];
  for (const zone of ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham"]) {
    for (const day of days) {
      const start = Date.parse(`${day}T00:00Z`) - 24 * HOUR;
      const due = new Map<string, number>();
      for (let h = 0; h < 72; h++) {
        const now = new Date(start + h * HOUR);
        if (digestDue("digest_daily", now, zone, 9)) {
          const date = localClock(now, zone).date;
          due.set(date, (due.get(date) ?? 0) + 1);
        }
      }
      assert.ok([...due.values()].every((n) => n === 1), `${zone} around ${day}: ${JSON.stringify([...due])}`);
      assert.ok(due.size >= 2, `${zone} around ${day}`);
    }
  }
  // 09:30 in Berlin on the first day of summer time is 07:30 UTC; the day before, 08:30 UTC.
  assert.equal(digestDue("digest_daily", at("2026-03-29T07:30Z"), "Europe/Berlin", 9), true);
  assert.equal(digestDue("digest_daily", at("2026-03-29T08:30Z"), "Europe/Berlin", 9), false);
  assert.equal(digestDue("digest_daily", at("2026-03-28T08:30Z"), "Europe/Berlin", 9), true);
  // Weekly on Monday, Monday where the channel is: Sunday evening UTC is Monday morning in Tokyo.
  assert.equal(digestDue("digest_weekly", at("2026-03-09T00:10Z"), "Asia/Tokyo", 9), true);
  assert.equal(digestDue("digest_weekly", at("2026-03-09T00:10Z"), "UTC", 9), false);
  assert.equal(digestDue("digest_weekly", at("2026-03-09T09:10Z"), "UTC", 9), true);
  assert.equal(digestDue("digest_weekly", at("2026-03-10T09:10Z"), "UTC", 9), false);
  assert.equal(digestDue("digest_weekly", at("2026-03-09T16:00Z"), "America/Los_Angeles", 9), true);
});

test("a digest alert compares the period with the one before and lists the budgets worst first", () => {
  const period = { start: at("2026-03-09T00:00Z"), end: at("2026-03-10T00:00Z"), label: "yesterday" };
  const totals = (cost: bigint, requests: number) => ({ cost, requests, errors: 0, unpriced: 0, input_tokens: 0, cached_input_tokens: 0, cache_write_tokens: 0, output_tokens: 0, reasoning_tokens: 0 });
  const status = (name: string, state: "ok" | "warning" | "over", percent: number) => ({
    budget: { id: name, name, scope: { team: "search" }, mode: "soft" as const, period: "month" as const, timezone: "UTC" },
    state,
    spend_usd: String(percent * 5),
    amount_usd: "500",
    remaining_usd: "0",
    percent,
    forecast_usd: null,
    forecast_method: null,
    run_out: null,
    period: { start: "2026-03-01T00:00:00.000Z", end: "2026-04-01T00:00:00.000Z", label: "this-month" },
    top: [],
    as_of: NOW.toISOString(),
  });
  const alert = digestAlert({
    kind: "digest_daily",
    channelId: "c1",
    scope: { team: "search" },
    date: "2026-03-10",
    report: { period, total: totals(usd(110), 1234), previous: totals(usd(100), 1000), groups: [], unpriced_requests: 0 },
    top: [{ dimension: "project", key: "ranking", spend_usd: "80" }],
    movers: [],
    chart: null,
    budgets: [status("a", "ok", 10), status("b", "over", 120), status("c", "warning", 85)],
    now: NOW,
  });
  assert.doesNotThrow(() => Alert.parse(alert));
  assert.equal(alert.id, "digest_daily:c1:2026-03-10:team:search");
  assert.equal(alert.title, "Daily spend on team:search: $110.00 in yesterday");
  assert.equal(alert.summary, "$110.00 over 1,234 requests, +10.0 % against the day before ($100.00). Budgets: 1 ok, 1 warning, 1 over.");
  assert.deepEqual((alert.details.budgets as { name: string }[]).map((b) => b.name), ["b", "c", "a"]);
});

test("budgetPeriod answers what resolving the period afresh answers, across rolls and zones, forwards and back", async () => {
  const { resolvePeriod } = await import("../src/ledger/period.ts");
  const names = { day: "today", week: "this-week", month: "this-month", quarter: "this-quarter", year: "this-year" } as const;
  const zones = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kolkata"];
  // Steps of 7 h 13 min cross every midnight, DST change and month end; then the same instants backwards.
  const instants = Array.from({ length: 400 }, (_, i) => Date.UTC(2026, 2, 20) + i * (7 * 3_600_000 + 13 * 60_000));
  const same = (period: keyof typeof names, timezone: string, at: number) => {
    const now = new Date(at);
    const fresh = resolvePeriod(names[period], { now, timeZone: timezone });
    assert.ok(fresh.ok);
    assert.deepEqual(budgetPeriod({ period, timezone }, now), fresh.period, `${period} ${timezone} at ${now.toISOString()}`);
    return fresh.period;
  };
  for (const at of [...instants, ...instants.toReversed()])
    for (const timezone of zones)
      for (const period of Object.keys(names) as (keyof typeof names)[]) {
        // The instant, then the last millisecond of its period and the first of the next.
        const { end } = same(period, timezone, at);
        same(period, timezone, end.getTime() - 1);
        same(period, timezone, end.getTime());
      }
});
