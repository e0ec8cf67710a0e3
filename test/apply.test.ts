import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { BudgetsFile, desiredOf, parseBudgetsSource, planApply } from "../src/budgets/apply.ts";
import { type Budget, BudgetInput } from "../src/budgets/budget.ts";
import { type ApplyAnswer, renderPlan } from "../src/cli/budget-commands.ts";
import { runCli } from "./helpers/cli.ts";
import { ADMIN_TOKEN, type TestGateway, startTestGateway } from "./helpers/gateway.ts";

/** A budget as the store would hand it back. */
function storedBudget(fields: Record<string, unknown>): Budget {
  const input = BudgetInput.parse(fields);
  const { amount_usd, ...rest } = input;
  const at = new Date("2026-03-01T00:00:00Z");
  return { id: `id-${input.name}`, ...rest, amount: amount_usd, created_at: at, updated_at: at };
}

/** Declared budgets as a file would give them. */
function declared(...raw: Record<string, unknown>[]) {
  return desiredOf(raw, raw.map((r) => BudgetInput.parse(r)));
}

describe("planApply", () => {
  const current = [
    storedBudget({ name: "search", scope: { team: "search" }, amount_usd: "500", period: "month", mode: "hard" }),
    storedBudget({ name: "paused-one", amount_usd: "10", period: "day", paused: true }),
    storedBudget({ name: "legacy", amount_usd: "1", period: "year" }),
  ];

  test("creates, field-level updates with before and after, unchanged, and undeclared left alone", () => {
    const plan = planApply(
      declared(
        { name: "new-one", scope: { model: "gpt-4o", feature: "summarize" }, amount_usd: "50", period: "day" },
        { name: "search", scope: { team: "search" }, amount_usd: "750.50", period: "month", mode: "hard", thresholds: [100, 80] },
        { name: "paused-one", amount_usd: "10", period: "day" },
      ),
      current,
      false,
    );
    assert.deepEqual(plan, {
      changes: [
        {
          action: "create",
          name: "new-one",
          budget: { scope: { feature: "summarize", model: "gpt-4o" }, amount_usd: "50", period: "day", timezone: "UTC", thresholds: [50, 80, 100], mode: "soft", paused: false },
        },
        {
          action: "update",
          name: "search",
          id: "id-search",
          fields: [
            { field: "amount_usd", before: "500", after: "750.5" },
            { field: "thresholds", before: [50, 80, 100], after: [80, 100] },
          ],
        },
      ],
      // The file leaves `paused` out: the budget stays paused.
      unchanged: ["paused-one"],
      left_alone: ["legacy"],
    });
  });

  test("prune deletes what the file does not declare; the same scope in another key order is no change", () => {
    const plan = planApply(declared({ name: "search", scope: { team: "search" }, amount_usd: "500.000", period: "month", mode: "hard" }), current, true);
    assert.deepEqual(plan.changes, [
      { action: "delete", name: "legacy", id: "id-legacy" },
      { action: "delete", name: "paused-one", id: "id-paused-one" },
    ]);
    assert.deepEqual(plan.unchanged, ["search"]);
    const multi = [storedBudget({ name: "m", scope: { model: "gpt-4o", team: "a" }, amount_usd: "1", period: "day" })];
    assert.deepEqual(planApply(declared({ name: "m", scope: { team: "a", model: "gpt-4o" }, amount_usd: "1", period: "day" }), multi, false).unchanged, ["m"]);
  });

  test("a field written explicitly is applied, even when it is the default", () => {
    const plan = planApply(declared({ name: "paused-one", amount_usd: "10", period: "day", paused: false }), current, false);
    assert.deepEqual(plan.changes, [{ action: "update", name: "paused-one", id: "id-paused-one", fields: [{ field: "paused", before: true, after: false }] }]);
  });
});

describe("budgets files", () => {
  test("YAML amounts are read as written, never through a float", () => {
    const read = parseBudgetsSource("budgets:\n  - name: a\n    amount_usd: 12345678901234.567891\n    period: day\n  - name: b\n    amount_usd: 12.10\n    period: day\n");
    assert.ok(read.ok);
    const file = BudgetsFile.parse(read.source.value);
    assert.deepEqual(
      file.budgets.map((b) => b.amount_usd),
      [12_345_678_901_234_567_891_000_000n, 12_100_000_000_000n],
    );
  });

  test("errors carry the path in the file and its line", () => {
    const text = ["budgets:", "  - name: ok", "    amount_usd: '5'", "    period: month", "  - name: bad", "    amount_usd: -3", "    period: fortnight", "    scope: {region: eu}"].join("\n");
    const read = parseBudgetsSource(text);
    assert.ok(read.ok);
    const checked = BudgetsFile.safeParse(read.source.value);
    assert.ok(!checked.success);
    assert.deepEqual(
      checked.error.issues.map((i) => [i.path.join("."), read.source.lineOf(i.path)]),
      [
        ["budgets.1.scope.region", 8],
        ["budgets.1.amount_usd", 6],
        ["budgets.1.period", 7],
      ],
    );
    const syntax = parseBudgetsSource("budgets:\n  - name: a\n   amount_usd: [\n");
    assert.ok(!syntax.ok);
    assert.match(syntax.message, /^line \d+: /);
  });
});

describe("tollgate apply, through the real CLI and the admin API", () => {
  let t: TestGateway;
  let dir: string;
  const file = () => join(dir, "budgets.yaml");
  const cli = (...args: string[]) => runCli(dir, args, { TOLLGATE_URL: t.base, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN });
  /** An admin API answer's JSON. */
  const read = async (path: string, init?: RequestInit) => (await (await t.admin(path, init)).json()) as any;
  const names = async () => (await t.gateway.database.rows<{ name: string; amount: string }>(sql`select name, amount::text from budgets order by name`)).map((r) => `${r.name}=${r.amount}`);

  before(async () => {
    t = await startTestGateway();
    dir = mkdtempSync(join(tmpdir(), "tollgate-apply-"));
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const FILE = `# budgets of the search team
budgets:
  - name: search-monthly
    scope: {team: search}
    amount_usd: 500
    period: month
    mode: hard
  - name: summarize-daily
    scope: {feature: summarize, model: gpt-4o}
    amount_usd: 50
    period: day
    timezone: Europe/Berlin
`;

  test("--dry-run shows the diff and writes nothing; a bad file or bad options are refused by line and option", async () => {
    writeFileSync(file(), FILE);
    const badFile = join(dir, "bad.yaml");
    writeFileSync(badFile, `budgets:\n  - name: fine\n    amount_usd: 5\n    period: day\n  - name: broken\n    amount_usd: 0\n    period: fortnight\n    colour: red\n`);
    const [dry, bad, badSet] = await Promise.all([
      cli("apply", file(), "--dry-run"),
      cli("apply", badFile),
      cli("budget", "set", "x", "--scope", "region:eu", "--amount", "0", "--period", "month", "--tz", "Mars/Base"),
    ]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^\+ create search-monthly\n {4}scope: team:search\n {4}amount_usd: \$500\n {4}period: month\n {4}timezone: UTC\n {4}thresholds: 50,80,100\n {4}mode: hard\n {4}paused: false$/m);
    assert.match(dry.stdout, /^\+ create summarize-daily$/m);
    assert.match(dry.stdout, /^dry run: 2 changes not applied$/m);

    assert.equal(bad.code, 2);
    assert.equal(
      bad.stderr,
      [
        `tollgate: ${badFile} has 3 errors; nothing was applied`,
        `${badFile}:5: budgets[1]: unknown field "colour"; the fields of a budget are name, scope, amount_usd, period, timezone, thresholds, mode, paused`,
        `${badFile}:6: budgets[1].amount_usd: must be more than 0, such as "500" or "12.50"`,
        `${badFile}:7: budgets[1].period: one of day, week, month, quarter, year`,
        "",
      ].join("\n"),
    );
    assert.equal(badSet.code, 2);
    assert.equal(
      badSet.stderr,
      'tollgate: --scope region: not a dimension; one of team, project, feature, user, model, provider, key\n--amount: must be more than 0, such as "500" or "12.50"\n--tz: an IANA time zone such as UTC or Europe/Berlin\n',
    );
    assert.deepEqual(await names(), []);
  });

  test("apply creates; applying the same file again changes nothing", async () => {
    const first = await cli("apply", file());
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^applied 2 changes$/m);
    assert.deepEqual(await names(), ["search-monthly=500000000000000", "summarize-daily=50000000000000"]);
    const auditBefore = (await read("/api/audit?entity=budget&limit=500")).entries.length;

    const second = await cli("apply", file());
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, "= 2 unchanged: search-monthly, summarize-daily\nno changes\n");
    assert.equal((await read("/api/audit?entity=budget&limit=500")).entries.length, auditBefore, "a run without changes writes no audit entry");
  });

  test("a changed amount and a removed budget: update shown field by field; --prune deletes", async () => {
    assert.equal((await t.admin("/api/budgets", { method: "POST", body: JSON.stringify({ name: "by-hand", amount_usd: "9", period: "week" }) })).status, 201);
    const search = { name: "search-monthly", scope: { team: "search" }, amount_usd: "750.25", period: "month", mode: "hard" };
    const apply = async (body: unknown) => {
      const res = await t.admin("/api/budgets/apply", { method: "POST", body: JSON.stringify(body) });
      assert.equal(res.status, 200);
      return renderPlan((await res.json()) as ApplyAnswer);
    };
    assert.equal(
      await apply({ budgets: [search] }),
      "~ update search-monthly\n    amount_usd: $500 → $750.25\n  2 not declared, left alone (--prune deletes them): by-hand, summarize-daily\napplied 1 change",
    );
    assert.equal(await apply({ budgets: [search], prune: true, dry_run: true }), "- delete by-hand\n- delete summarize-daily\n= 1 unchanged: search-monthly\ndry run: 2 changes not applied");
    assert.equal(await apply({ budgets: [search], prune: true }), "- delete by-hand\n- delete summarize-daily\n= 1 unchanged: search-monthly\napplied 2 changes");
    assert.deepEqual(await names(), ["search-monthly=750250000000000"]);

    const { entries } = await read("/api/audit?entity=budget&limit=3");
    assert.deepEqual(
      entries.map((e: any) => [e.action, e.before?.name, e.after?.amount_usd ?? null]),
      [
        ["delete", "summarize-daily", null],
        ["delete", "by-hand", null],
        ["update", "search-monthly", "750.25"],
      ],
    );
  });

  test("budget set, pause, list and audit", async () => {
    const set = await cli("budget", "set", "team-ml", "--scope", "team:ml,model:gpt-4o", "--amount", "$1200.5", "--period", "quarter", "--mode", "hard", "--tz", "Europe/Berlin");
    assert.equal(set.code, 0, set.stderr);
    // Other budgets are no business of `budget set`: it does not list them as left alone.
    assert.equal(set.stdout, "+ create team-ml\n    scope: team:ml model:gpt-4o\n    amount_usd: $1200.5\n    period: quarter\n    timezone: Europe/Berlin\n    thresholds: 50,80,100\n    mode: hard\n    paused: false\napplied 1 change\n");
    assert.equal((await cli("budget", "pause", "team-ml")).stdout, "paused team-ml\n");

    const [listed, audit] = await Promise.all([cli("budget", "list"), cli("audit", "--entity", "budget", "--limit", "2")]);
    // The list shows where each budget stands (spend, percent, state); `set` above showed its settings.
    assert.match(listed.stdout, /^team-ml\s+team:ml model:gpt-4o\s+quarter\s+hard\s+0\s+1200\.5\s+0 %\s+paused\b/m);
    assert.match(audit.stdout, /^\d+\s+\S+\s+admin\s+update\s+budget\s+[0-9a-f-]{36}\s+paused false → true$/m);
    assert.match(audit.stdout, /^\d+\s+\S+\s+admin\s+create\s+budget\s+[0-9a-f-]{36}\s+team-ml$/m);
  });
});
