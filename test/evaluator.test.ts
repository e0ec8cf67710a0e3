import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import type { Alert } from "../src/alerts/alert.ts";
import { digestJobs } from "../src/alerts/digest.ts";
import { OutboxNotifier } from "../src/alerts/outbox.ts";
import { BASELINE_HOURS, HourlyFactsReader, detectAnomaly } from "../src/budgets/anomaly.ts";
import { type Budget, budgetPeriod } from "../src/budgets/budget.ts";
import { topContributors } from "../src/budgets/contributors.ts";
import { BudgetEvaluator } from "../src/budgets/evaluator.ts";
import { groupByScope, scopeKey, spendForBudgets } from "../src/budgets/spend-batch.ts";
import type { Database } from "../src/db/connection.ts";
import { UsageEvent, type UsageEventInput } from "../src/ledger/event.ts";
import { eventBuilder } from "../src/ledger/build-event.ts";
import { Recorder } from "../src/ledger/recorder.ts";
import { querySpend } from "../src/ledger/spend.ts";
import { createLogger } from "../src/logger.ts";
import { PICO_PER_USD } from "../src/pricing/money.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { ledgerEvent } from "./helpers/ledger-event.ts";
import { waitFor } from "./helpers/wait.ts";
import { sampleBudget } from "./helpers/sample-budget.ts";

const usd = (n: number) => BigInt(n) * PICO_PER_USD;
const at = (iso: string) => new Date(iso);

const budget = (id: string, scope: Budget["scope"], fields: Partial<Budget> = {}): Budget => sampleBudget({ id, name: id, scope, amount: usd(100), ...fields });

let t: TestGateway;

before(async () => {
  // Jobs off: the cron evaluation and the delivery worker stay out of the way; flush-time evaluation is what is tested.
  t = await startTestGateway({ TOLLGATE_JOBS: "off" });
});
after(() => t.close());

describe("spend of many budgets", () => {
  let database: Database;
  let recorder: Recorder;
  let seq = 0;
  // $1 a call, $7 for model "seven": sums are easy to read and exact.
  const builder = eventBuilder((e) => ({ cost: e.model === "seven" ? usd(7) : usd(1), priced: true }));
  const event = (ts: string, fields: Partial<UsageEventInput> = {}) =>
    ledgerEvent(builder, UsageEvent.parse({ source: "t", id: `e${seq++}`, ts: at(ts), tokens: {}, model: "one", ...fields }));

  // Years ahead of the gateway tests below, which record at the real time on the same database.
  before(() => {
    database = t.gateway.database;
    recorder = new Recorder(database, builder, { batchSize: 1000, maxWaitMs: 1 });
  });
  after(() => recorder.close());

  test("each budget gets the spend of its own period, zone and scope, exactly as a spend query over the period says", async () => {
    await recorder.record([
      // Around Berlin's April (22:00 UTC on 31 March to 22:00 UTC on 30 April).
      event("2031-03-31T21:59:59Z", { team: "search" }),
      event("2031-03-31T22:00:00Z", { team: "search", user: "ada" }),
      event("2031-04-30T21:59:59Z", { team: "search", model: "seven" }),
      event("2031-04-30T22:00:00Z", { team: "search" }),
      // Around Kolkata's 10 April (18:30 UTC on the 9th to 18:30 UTC on the 10th).
      event("2031-04-09T18:29:59Z", { team: "ml", user: "ada" }),
      event("2031-04-09T18:30:00Z", { team: "ml", user: "ada", model: "seven" }),
      event("2031-04-10T18:29:59Z", { team: "ml", user: "bob" }),
      event("2031-04-10T18:30:00Z", { team: "ml" }),
    ]);
    const now = at("2031-04-10T12:00Z");
    const budgets = [
      budget("all-utc", {}),
      budget("all-berlin", {}, { timezone: "Europe/Berlin" }),
      budget("search-berlin", { team: "search" }, { timezone: "Europe/Berlin" }),
      budget("search-seven", { team: "search", model: "seven" }, { timezone: "Europe/Berlin" }),
      budget("ada-utc", { user: "ada" }),
      budget("ada-kolkata-day", { user: "ada" }, { period: "day", timezone: "Asia/Kolkata" }),
      budget("ml-kolkata-day", { team: "ml" }, { period: "day", timezone: "Asia/Kolkata" }),
      budget("nobody", { team: "nobody" }),
    ];
    const spends = await spendForBudgets(database, budgets, now);
    const byId = new Map(spends.map((s) => [s.budget.id, s.spend]));
    assert.deepEqual(Object.fromEntries(byId), {
      "all-utc": usd(7 + 1 + 1 + 7 + 1 + 1),
      "all-berlin": usd(1 + 7 + 1 + 7 + 1 + 1),
      "search-berlin": usd(1 + 7),
      "search-seven": usd(7),
      "ada-utc": usd(1 + 7),
      "ada-kolkata-day": usd(7),
      "ml-kolkata-day": usd(7 + 1),
      nobody: 0n,
    });
    for (const b of budgets) {
      const period = budgetPeriod(b, now);
      const report = await querySpend(database, { period, filters: b.scope, now: period.end });
      assert.equal(byId.get(b.id), report.total.cost, b.id);
    }

    // Top contributors of several scopes in one go, by the first dimension each scope leaves open
    // under which its spend has names: search's has no project or feature set, so by model
    // (never "Top projects: (none)").
    const periodOf = (id: string) => budgetPeriod(budgets.find((b) => b.id === id)!, now);
    const tops = await topContributors(database, [
      { scope: {}, period: periodOf("all-utc") },
      { scope: { team: "search" }, period: periodOf("search-berlin") },
      { scope: { user: "ada" }, period: periodOf("ada-utc") },
      { scope: { team: "nobody" }, period: periodOf("nobody") },
    ]);
    assert.deepEqual(tops, [
      [
        { dimension: "team", key: "ml", spend_usd: "10" },
        { dimension: "team", key: "search", spend_usd: "8" },
      ],
      [
        { dimension: "model", key: "seven", spend_usd: "7" },
        { dimension: "model", key: "one", spend_usd: "1" },
      ],
      [{ dimension: "team", key: "ml", spend_usd: "8" }],
      [],
    ]);
  });

  test("a budget on a model counts its family's dated snapshots, in every read of budget spend", async () => {
    const now = at("2032-05-20T12:30Z");
    await recorder.record([
      event("2032-05-20T12:00:00Z", { model: "gpt-4o", team: "a", user: "ada" }),
      event("2032-05-20T12:05:00Z", { model: "gpt-4o-2024-08-06", team: "a", user: "ada" }),
      // The end of Kolkata's 20 May, read from events.
      event("2032-05-20T18:10:00Z", { model: "gpt-4o-2024-08-06", team: "b" }),
      event("2032-05-20T12:10:00Z", { model: "claude-3-5-sonnet-20241022", team: "b" }),
      ...Array.from({ length: 4 }, () => event("2032-05-20T12:15:00Z", { model: "gpt-4o-mini-2024-07-18", team: "a", user: "ada" })),
      event("2032-05-20T12:20:00Z", { model: "gpt-4o-mini", team: "a" }),
      event("2032-05-20T12:25:00Z", { model: "claude-3-5-sonnet-v2", team: "b" }),
    ]);
    const budgets = [
      budget("family", { model: "gpt-4o" }),
      budget("snapshot", { model: "gpt-4o-2024-08-06" }),
      budget("mini", { model: "gpt-4o-mini" }),
      budget("team-family", { team: "a", model: "gpt-4o" }),
      budget("user-family", { user: "ada", model: "gpt-4o" }),
      budget("claude", { model: "claude-3-5-sonnet" }),
      budget("family-kolkata-day", { model: "gpt-4o" }, { period: "day", timezone: "Asia/Kolkata" }),
    ];
    const spends = await spendForBudgets(database, budgets, now);
    const byId = new Map(spends.map((s) => [s.budget.id, s.spend]));
    assert.deepEqual(Object.fromEntries(byId), {
      family: usd(3),
      snapshot: usd(2),
      mini: usd(5),
      "team-family": usd(2),
      "user-family": usd(2),
      claude: usd(1),
      "family-kolkata-day": usd(3),
    });
    for (const b of budgets) {
      const period = budgetPeriod(b, now);
      const report = await querySpend(database, { period, filters: b.scope, now: period.end });
      assert.equal(byId.get(b.id), report.total.cost, b.id);
    }

    const tops = await topContributors(database, [{ scope: { model: "gpt-4o" }, period: budgetPeriod(budgets[0]!, now) }]);
    assert.deepEqual(tops, [
      [
        { dimension: "team", key: "a", spend_usd: "2" },
        { dimension: "team", key: "b", spend_usd: "1" },
      ],
    ]);

    const facts = await new HourlyFactsReader().read(database, groupByScope(budgets), now);
    const recent = (scope: Budget["scope"]) => facts.get(scopeKey(scope))?.recent;
    assert.deepEqual([recent({ model: "gpt-4o" }), recent({ model: "gpt-4o-2024-08-06" }), recent({ model: "gpt-4o-mini" })], [usd(2), usd(1), usd(5)]);
  });

  test("hourly facts: the current hour against the week of whole hours before it", async () => {
    const hour = Date.parse("2031-06-10T12:00Z");
    const iso = (ms: number) => new Date(ms).toISOString();
    // $1 in each of the 30 hours before, $10 in the current hour so far, and one hour too old to count.
    const events = Array.from({ length: 30 }, (_, i) => event(iso(hour - (i + 1) * 3_600_000 + 60_000), { team: "surge" }));
    events.push(event(iso(hour - (BASELINE_HOURS + 1) * 3_600_000), { team: "surge" }));
    for (let i = 0; i < 10; i++) events.push(event(iso(hour + i * 60_000), { team: "surge" }));
    await recorder.record(events);
    const budgets = [budget("surge", { team: "surge" }), budget("surge-user", { team: "surge", user: "ada" })];
    const reader = new HourlyFactsReader();
    const facts = await reader.read(database, groupByScope(budgets), new Date(hour + 30 * 60_000));
    assert.deepEqual(facts.get(scopeKey({ team: "surge" })), {
      hour: new Date(hour),
      recent: usd(10),
      baselineSum: usd(30),
      baselineSquares: usd(1) * usd(1) * 30n,
      firstSpendAt: new Date(hour - 30 * 3_600_000),
    });
    // Users have no hourly grain: no facts, so no anomaly.
    assert.equal(facts.has(scopeKey({ team: "surge", user: "ada" })), false);
    assert.ok(detectAnomaly(facts.get(scopeKey({ team: "surge" }))!, usd(5)));
    assert.equal(detectAnomaly(facts.get(scopeKey({ team: "surge" }))!, usd(11)), null);

    // Within the hour the baseline is kept and only the current hour is read again.
    await recorder.record([event(iso(hour + 40 * 60_000), { team: "surge" }), event(iso(hour - 2 * 3_600_000), { team: "surge" })]);
    const later = (await reader.read(database, groupByScope(budgets), new Date(hour + 45 * 60_000))).get(scopeKey({ team: "surge" }));
    assert.equal(later?.recent, usd(11));
    assert.equal(later?.baselineSum, usd(30));
    const nextHour = (await reader.read(database, groupByScope(budgets), new Date(hour + 3_600_000))).get(scopeKey({ team: "surge" }));
    assert.equal(nextHour?.baselineSum, usd(30 + 1 + 11));
    assert.equal(nextHour?.recent, 0n);
  });
});

describe("evaluation in the gateway", () => {
  let key: string;
  let seq = 0;

  before(async () => {
    key = await t.ingestKey();
    const res = await t.admin("/api/channels", {
      method: "POST",
      body: JSON.stringify({ platform: "webhook", name: "ops", url: "https://hooks.example.com/ops", subscriptions: { kinds: ["alerts", "daily"] } }),
    });
    assert.equal(res.status, 201, await res.clone().text());
  });

  /** gpt-4o at $2.50 per million input tokens: `cents` worth of input (other models at their own price). */
  async function spend(team: string, cents: number, project = "ranking", model = "gpt-4o"): Promise<void> {
    const res = await fetch(`${t.base}/v1/usage`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ id: `u${seq++}`, timestamp: new Date().toISOString(), provider: "openai", model, input_tokens: cents * 4000, team, project }),
    });
    assert.equal(res.status, 200, await res.clone().text());
  }

  /** Waits for the writes so far and the evaluations they asked for. */
  async function settled(): Promise<void> {
    await t.gateway.recorder.flush();
    await t.gateway.evaluator.idle();
  }

  async function createBudget(body: Record<string, unknown>): Promise<void> {
    const res = await t.admin("/api/budgets", { method: "POST", body: JSON.stringify({ period: "month", ...body }) });
    assert.equal(res.status, 201, await res.clone().text());
  }

  // Forecasts are left out: whether one is made depends on the day of the month the test runs on
  // (evaluate.test.ts covers them with fixed clocks).
  async function alertsOf(name: string): Promise<Alert[]> {
    const rows = await t.gateway.database.rows<{ payload: { alerts: Alert[] } }>(sql`select payload from notifications order by id`);
    return rows.flatMap((r) => r.payload.alerts).filter((a) => a.budget?.name === name && a.kind !== "forecast");
  }

  async function firingsOf(name: string): Promise<string[]> {
    const rows = await t.gateway.database.rows<{ kind: string; threshold: number; amount: string }>(sql`
      select f.kind, f.threshold, f.amount::text as amount from alert_firings f join budgets b on b.id = f.budget_id
      where b.name = ${name} and f.kind <> 'forecast' order by f.kind, f.amount::numeric, f.threshold`);
    return rows.map((r) => `${r.kind} ${r.threshold} $${BigInt(r.amount) / PICO_PER_USD}`);
  }

  test("usage crossing 80 % reaches the outbox as one alert, with the firings of both lines crossed", async () => {
    await createBudget({ name: "search-monthly", scope: { team: "search" }, amount_usd: "1" });
    await spend("search", 55);
    await spend("elsewhere", 500);
    await waitFor("the 50 % alert", async () => (await alertsOf("search-monthly")).length === 1);
    await spend("search", 30);
    await waitFor("the 80 % alert", async () => (await alertsOf("search-monthly")).length === 2);
    await settled();
    const [first, second] = await alertsOf("search-monthly");
    assert.equal(first!.threshold, 50);
    assert.equal(second!.kind, "threshold");
    assert.equal(second!.threshold, 80);
    assert.equal(second!.spend_usd, "0.85");
    assert.equal(second!.amount_usd, "1");
    assert.equal(second!.percent, 85);
    assert.deepEqual(second!.top, [{ dimension: "project", key: "ranking", spend_usd: "0.85" }]);
    assert.deepEqual(await firingsOf("search-monthly"), ["threshold 50 $1", "threshold 80 $1"]);
    // Each carries the period so far as it stood when it fired: running spend against the amount.
    for (const [alert, spent] of [[first!, "0.55"], [second!, "0.85"]] as const) {
      assert.ok(alert.chart);
      assert.equal(alert.chart.kind, "line");
      assert.deepEqual(alert.chart.series.map((x) => x.name), ["Spent", "Budget"]);
      assert.equal(alert.chart.series[0]!.values.at(-1), spent);
      assert.ok(alert.chart.series[1]!.values.every((v) => v === "1"));
      assert.ok(alert.chart.categories.length >= 1 && alert.chart.categories.length <= 20);
    }

    const status = await t.admin("/api/budgets/search-monthly/status");
    assert.equal(status.status, 200);
    const body = (await status.json()) as Record<string, unknown>;
    assert.equal(body.state, "warning");
    assert.equal(body.spend_usd, "0.85");
    assert.equal(body.amount_usd, "1");
    assert.equal(body.remaining_usd, "0.15");
    assert.equal(body.percent, 85);
    assert.deepEqual(body.top, [{ dimension: "project", key: "ranking", spend_usd: "0.85" }]);
    const missing = await t.admin("/api/budgets/no-such-budget/status");
    assert.equal(missing.status, 404);
    assert.match(missing.headers.get("content-type") ?? "", /^application\/problem\+json/);
  });

  test("usage of a dated snapshot reaches a budget on its family, and other families' usage does not", async () => {
    await createBudget({ name: "family", scope: { team: "family", model: "gpt-4o" }, amount_usd: "1" });
    await spend("family", 500, "ranking", "gpt-4o-mini-2024-07-18");
    await spend("family", 55, "ranking", "gpt-4o-2024-08-06");
    await waitFor("the 50 % alert", async () => (await alertsOf("family")).length === 1);
    await settled();
    const [alert] = await alertsOf("family");
    assert.equal(alert!.kind, "threshold");
    assert.equal(alert!.threshold, 50);
    assert.equal(alert!.spend_usd, "0.55");
    assert.deepEqual(await firingsOf("family"), ["threshold 50 $1"]);
  });

  test("a threshold alert carries the date the amount runs out at the recent run rate", async () => {
    await createBudget({ name: "runout", scope: { team: "runout" }, amount_usd: "100", timezone: "UTC" });
    await settled();
    // $10 a call, in May 2032, past the gateway's own recorder: $20 early in the month, then $60 in the 7 days before the 11th.
    const builder = eventBuilder(() => ({ cost: usd(10), priced: true }));
    const writer = new Recorder(t.gateway.database, builder, { batchSize: 10, maxWaitMs: 1 });
    const days = ["02", "02", "04", "05", "06", "08", "09", "10"];
    await writer.record(days.map((d, i) => ledgerEvent(builder, UsageEvent.parse({ source: "runout", id: `ro${i}`, ts: at(`2032-05-${d}T12:00:00Z`), tokens: {}, team: "runout" }))));
    await writer.close();
    const evaluator = new BudgetEvaluator(t.gateway.database, new OutboxNotifier(t.gateway.database, { scheduleMs: [10, 10] }), { anomalyMinSpend: usd(1000), logger: createLogger("silent") });
    const { alerts } = await evaluator.evaluateAll(at("2032-05-11T00:00:00Z"));
    const [alert, ...rest] = alerts.filter((a) => a.budget?.name === "runout");
    assert.deepEqual(rest, []);
    assert.equal(alert!.kind, "threshold");
    assert.equal(alert!.threshold, 80);
    // $20 left at $60 a week: 56 hours after midnight on the 11th.
    assert.equal(alert!.run_out_at, "2032-05-13T08:00:00.000Z");
    assert.match(alert!.summary, /At this pace \$100\.00 is reached 13 May 2032, 08:00 UTC\./);
  });

  test("two evaluators at once record and send each alert once", async () => {
    await createBudget({ name: "race", scope: { team: "race" }, amount_usd: "1", mode: "hard" });
    await settled();
    // Written past the gateway's own recorder, so only the two evaluators below look at it.
    const builder = eventBuilder(() => ({ cost: usd(2), priced: true }));
    const writer = new Recorder(t.gateway.database, builder, { batchSize: 10, maxWaitMs: 1 });
    await writer.record([ledgerEvent(builder, UsageEvent.parse({ source: "race", id: "r1", ts: new Date(), tokens: {}, team: "race" }))]);
    await writer.close();
    const evaluator = () => new BudgetEvaluator(t.gateway.database, new OutboxNotifier(t.gateway.database, { scheduleMs: [10, 10] }), { anomalyMinSpend: usd(5), logger: createLogger("silent") });
    const now = new Date();
    const results = await Promise.all([evaluator().evaluateAll(now), evaluator().evaluateAll(now)]);
    const sent = results.flatMap((r) => r.alerts).filter((a) => a.budget?.name === "race");
    assert.deepEqual(sent.map((a) => a.kind), ["blocked"]);
    assert.deepEqual((await alertsOf("race")).map((a) => a.kind), ["blocked"]);
    assert.deepEqual(await firingsOf("race"), ["blocked 0 $1", "threshold 50 $1", "threshold 80 $1", "threshold 100 $1"]);
    // And again later: nothing new.
    assert.deepEqual((await evaluator().evaluateAll(new Date())).alerts.filter((a) => a.budget?.name === "race"), []);
  });

  test("a paused budget fires nothing, on a write or on schedule", async () => {
    await createBudget({ name: "paused", scope: { team: "paused" }, amount_usd: "0.10", paused: true });
    await spend("paused", 50);
    await settled();
    await t.gateway.evaluator.evaluateAll(new Date());
    assert.deepEqual(await firingsOf("paused"), []);
    assert.deepEqual(await alertsOf("paused"), []);
  });

  test("a raise mid-period is evaluated against the spend already made", async () => {
    await createBudget({ name: "raise", scope: { team: "raise" }, amount_usd: "1" });
    await spend("raise", 85);
    await settled();
    assert.deepEqual((await alertsOf("raise")).map((a) => `${a.kind} ${a.threshold} of ${a.amount_usd}`), ["threshold 80 of 1"]);

    // $2 with $0.85 already spent is 42 %: no line crossed, nothing sent.
    assert.equal((await t.admin("/api/budgets/raise", { method: "PATCH", body: JSON.stringify({ amount_usd: "2" }) })).status, 200);
    await settled();
    assert.equal((await alertsOf("raise")).length, 1);
    // $1.70 is 85 % of $2: 80 % of the new amount is a new line.
    await spend("raise", 85);
    await settled();
    // Over $2, then raised to $3 with $2.10 spent: back under at once, at 70 %.
    await spend("raise", 40);
    await settled();
    assert.equal((await t.admin("/api/budgets/raise", { method: "PATCH", body: JSON.stringify({ amount_usd: "3" }) })).status, 200);
    await settled();
    const alerts = await alertsOf("raise");
    assert.deepEqual(
      alerts.map((a) => `${a.kind} ${a.threshold} of ${a.amount_usd}`),
      ["threshold 80 of 1", "threshold 80 of 2", "threshold 100 of 2", "recovered null of 3"],
    );
    assert.equal(alerts.at(-1)!.percent, 70);
    assert.equal(alerts.at(-1)!.details.reason, "raise");
    assert.deepEqual(await firingsOf("raise"), [
      "recovered 0 $3",
      "threshold 50 $1",
      "threshold 80 $1",
      "threshold 50 $2",
      "threshold 80 $2",
      "threshold 100 $2",
      "threshold 50 $3",
    ]);
  });

  test("a daily digest goes out once per channel and local day, in the digest hour only", async () => {
    const { runDailyDigests, runWeeklyDigests } = digestJobs({ database: t.gateway.database, notifier: t.gateway.notifier, hour: 9 });
    const digests = async () =>
      (await t.gateway.database.rows<{ payload: { alerts: Alert[] } }>(sql`select payload from notifications`)).flatMap((r) => r.payload.alerts).filter((a) => a.kind.startsWith("digest"));
    assert.equal(await runDailyDigests(at("2030-01-07T08:59Z")), 0);
    assert.equal(await runDailyDigests(at("2030-01-07T09:00Z")), 1);
    assert.equal(await runDailyDigests(at("2030-01-07T09:30Z")), 1);
    // Not subscribed to weekly digests.
    assert.equal(await runWeeklyDigests(at("2030-01-07T09:00Z")), 0);
    const sent = await digests();
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.kind, "digest_daily");
    assert.equal(sent[0]!.period?.start, "2030-01-06T00:00:00.000Z");
    // No spend in 2030: no trend to draw, no movers.
    assert.equal(sent[0]!.chart, null);
    assert.deepEqual(sent[0]!.movers, []);
  });
});
