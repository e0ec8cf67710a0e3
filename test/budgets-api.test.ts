import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";

let t: TestGateway;
before(async () => {
  t = await startTestGateway({ TOLLGATE_MASTER_KEY: randomBytes(32).toString("hex") });
});
after(() => t.close());

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await t.admin(path, { method, headers, ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, type: res.headers.get("content-type") ?? "", headers: res.headers, text, body: text && res.headers.get("content-type")?.includes("json") ? (JSON.parse(text) as any) : undefined };
}

/** What is stored: every budget row and every audit entry, to show that a refusal wrote nothing. */
async function stored(): Promise<{ budgets: string; audit: number }> {
  const budgets = await t.gateway.database.rows<{ id: string; name: string; amount: string; updated_at: unknown }>(sql`select id, name, amount::text, updated_at from budgets order by id`);
  const [audit] = await t.gateway.database.rows<{ n: string }>(sql`select count(*)::text as n from audit_log`);
  return { budgets: JSON.stringify(budgets), audit: Number(audit!.n) };
}

const ISSUE_BODY = { name: "search-monthly", scope: { team: "search" }, amount_usd: "500", period: "month", timezone: "UTC", thresholds: [50, 80, 100], mode: "hard" };

describe("/api/budgets", () => {
  test("create with the issue's body, read by id and by name, list, change, delete", async () => {
    const created = await call("POST", "/api/budgets", ISSUE_BODY);
    assert.equal(created.status, 201, created.text);
    const { id, created_at, updated_at, ...rest } = created.body;
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.ok(Date.parse(created_at) > 0 && Date.parse(updated_at) > 0);
    assert.deepEqual(rest, { ...ISSUE_BODY, paused: false });

    const byId = await call("GET", `/api/budgets/${id}`);
    const byName = await call("GET", "/api/budgets/search-monthly");
    assert.equal(byId.status, 200);
    assert.deepEqual(byId.body, created.body);
    assert.deepEqual(byName.body, created.body);
    const listed = await call("GET", "/api/budgets");
    assert.ok(listed.body.budgets.some((b: any) => JSON.stringify(b) === JSON.stringify(created.body)));

    const paused = await call("PATCH", "/api/budgets/search-monthly", { paused: true, thresholds: [100, 90] });
    assert.equal(paused.status, 200, paused.text);
    assert.deepEqual({ ...paused.body, updated_at: undefined }, { ...created.body, paused: true, thresholds: [90, 100], updated_at: undefined });

    const deleted = await call("DELETE", `/api/budgets/${id}`);
    assert.equal(deleted.status, 200);
    assert.equal(deleted.body.name, "search-monthly");
    for (const [method, path] of [["GET", `/api/budgets/${id}`], ["DELETE", `/api/budgets/${id}`], ["PATCH", "/api/budgets/search-monthly"]] as const) {
      const gone = await call(method, path, method === "PATCH" ? { mode: "soft" } : undefined);
      assert.equal(gone.status, 404, `${method} ${path}`);
      assert.match(gone.type, /^application\/problem\+json/);
      assert.match(gone.body.detail, /^no budget /);
      assert.equal(gone.body.code, "not_found", "the catalogue's stable code");
    }
  });

  test("amounts go in and come out as the exact same decimal text", async () => {
    for (const [i, amount] of ["0.000001", "1234567.89", "0.000000000001", "98765432109876543.210987654321"].entries()) {
      const created = await call("POST", "/api/budgets", { name: `exact-${i}`, amount_usd: amount, period: "day" });
      assert.equal(created.status, 201, created.text);
      assert.equal(created.body.amount_usd, amount);
      assert.equal((await call("GET", `/api/budgets/exact-${i}`)).body.amount_usd, amount);
    }
    const patched = await call("PATCH", "/api/budgets/exact-0", { amount_usd: "12.50" });
    assert.equal(patched.body.amount_usd, "12.5");
  });

  test("a duplicate name is 409 and writes nothing, on create and on rename", async () => {
    assert.equal((await call("POST", "/api/budgets", { name: "dup-a", amount_usd: "1", period: "week" })).status, 201);
    assert.equal((await call("POST", "/api/budgets", { name: "dup-b", amount_usd: "1", period: "week" })).status, 201);
    const before = await stored();
    const again = await call("POST", "/api/budgets", { name: "dup-a", amount_usd: "2", period: "month" });
    assert.equal(again.status, 409);
    assert.match(again.type, /^application\/problem\+json/);
    assert.equal(again.body.detail, "a budget named dup-a already exists");
    assert.deepEqual([again.body.title, again.body.status, again.body.code], ["Conflict", 409, "conflict"]);
    const rename = await call("PATCH", "/api/budgets/dup-b", { name: "dup-a" });
    assert.equal(rename.status, 409);
    assert.equal(rename.body.detail, "a budget named dup-a already exists");
    assert.deepEqual(await stored(), before);
  });

  test("bad input to every endpoint: 400 with the field's path and what was expected; nothing written", async () => {
    assert.equal((await call("POST", "/api/budgets", { name: "target", amount_usd: "100", period: "month" })).status, 201);
    const before = await stored();
    const base = { name: "bad", amount_usd: "5", period: "month" };
    const money = 'a decimal amount of USD as a string, such as "500" or "12.50" (a JSON number would not be exact)';
    const positive = 'must be more than 0, such as "500" or "12.50"';
    const percentage = "a whole percentage from 1 to 1000";
    const cases: [string, string, unknown, { path: string; message: string }[]][] = [
      ["POST", "/api/budgets", { ...base, scope: { region: "eu" } }, [{ path: "scope.region", message: "not a dimension; one of team, project, feature, user, model, provider, key" }]],
      ["POST", "/api/budgets", { ...base, amount_usd: "-5" }, [{ path: "amount_usd", message: positive }]],
      ["POST", "/api/budgets", { ...base, amount_usd: "0" }, [{ path: "amount_usd", message: positive }]],
      ["POST", "/api/budgets", { ...base, amount_usd: 500 }, [{ path: "amount_usd", message: money }]],
      ["POST", "/api/budgets", { ...base, amount_usd: 12.5 }, [{ path: "amount_usd", message: money }]],
      ["POST", "/api/budgets", { ...base, amount_usd: "0.0000000000001" }, [{ path: "amount_usd", message: '"0.0000000000001" is finer than a pico-dollar (more than 12 decimal places)' }]],
      ["POST", "/api/budgets", { ...base, amount_usd: "five" }, [{ path: "amount_usd", message: '"five" is not a decimal amount of USD' }]],
      ["POST", "/api/budgets", { ...base, period: "fortnight" }, [{ path: "period", message: "one of day, week, month, quarter, year" }]],
      ["POST", "/api/budgets", { ...base, timezone: "Mars/Olympus_Mons" }, [{ path: "timezone", message: "an IANA time zone such as UTC or Europe/Berlin" }]],
      ["POST", "/api/budgets", { ...base, thresholds: [0, 50] }, [{ path: "thresholds[0]", message: percentage }]],
      ["POST", "/api/budgets", { ...base, thresholds: [50, 1001] }, [{ path: "thresholds[1]", message: percentage }]],
      ["POST", "/api/budgets", { ...base, thresholds: [50.5] }, [{ path: "thresholds[0]", message: percentage }]],
      ["POST", "/api/budgets", { ...base, mode: "block" }, [{ path: "mode", message: "soft (alerts only) or hard (alerts and blocks)" }]],
      ["POST", "/api/budgets", { ...base, colour: "red" }, [{ path: "", message: UNKNOWN_COLOUR }]],
      ["PATCH", "/api/budgets/target", { amount_usd: "-1" }, [{ path: "amount_usd", message: positive }]],
      ["PATCH", "/api/budgets/target", { amount_usd: 250 }, [{ path: "amount_usd", message: money }]],
      ["PATCH", "/api/budgets/target", { scope: { team: "a", region: "eu" } }, [{ path: "scope.region", message: "not a dimension; one of team, project, feature, user, model, provider, key" }]],
      ["PATCH", "/api/budgets/target", { timezone: "Nowhere/City" }, [{ path: "timezone", message: "an IANA time zone such as UTC or Europe/Berlin" }]],
      ["PATCH", "/api/budgets/target", { colour: "red" }, [{ path: "", message: UNKNOWN_COLOUR }]],
      ["PATCH", "/api/budgets/target", {}, [{ path: "", message: "give at least one field to change" }]],
      // One bad entry refuses the whole set: the good one before it is not created either.
      ["POST", "/api/budgets/apply", { budgets: [{ ...base, name: "fine" }, { ...base, amount_usd: "0" }] }, [{ path: "budgets[1].amount_usd", message: positive }]],
      ["POST", "/api/budgets/apply", { budgets: [{ ...base, name: "twice" }, { ...base, name: "twice" }] }, [{ path: "budgets[1].name", message: "twice is declared twice (first at budgets[0])" }]],
      ["POST", "/api/budgets/apply", { budgets: [base], prune: "yes" }, [{ path: "prune", message: "Invalid input: expected boolean, received string" }]],
    ];
    for (const [method, path, body, errors] of cases) {
      const res = await call(method, path, body);
      const label = `${method} ${path} ${JSON.stringify(body)}`;
      assert.equal(res.status, 400, label);
      assert.match(res.type, /^application\/problem\+json/, label);
      assert.deepEqual(res.body.errors, errors, label);
      assert.equal(res.body.code, "invalid_request", label);
    }
    const notJson = await call("POST", "/api/budgets", "{name:");
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.detail, "the body is not valid JSON");
    assert.deepEqual(await stored(), before, "no budget row and no audit entry from any refused request");
  });

  test("a new amount mid-period counts at once against the spend already made, and is audited before and after", async () => {
    const ingest = await t.ingestKey();
    const now = new Date().toISOString();
    // gpt-4o, 10,000 prompt tokens of which 8,000 cached, 1,000 output: $0.025 each.
    const event = (id: string) => ({ id: `mid-${id}`, timestamp: now, provider: "openai", model: "gpt-4o", input_tokens: 10_000, cached_input_tokens: 8_000, output_tokens: 1_000, team: "mid", feature: "summarize" });
    const sent = await fetch(`${t.base}/v1/usage`, { method: "POST", headers: { authorization: `Bearer ${ingest}`, "content-type": "application/json" }, body: JSON.stringify(["a", "b", "c"].map(event)) });
    assert.equal(sent.status, 200);
    const created = await call("POST", "/api/budgets", { name: "mid-period", scope: { feature: "summarize", team: "mid" }, amount_usd: "0.1", period: "year", mode: "hard" });
    assert.equal(created.status, 201);
    const status = async () => {
      const { spend_usd, amount_usd, percent, state } = (await call("GET", "/api/budgets/mid-period/status")).body;
      return { spend_usd, amount_usd, percent, state };
    };
    assert.deepEqual(await status(), { spend_usd: "0.075", amount_usd: "0.1", percent: 75, state: "warning" });

    const patched = await call("PATCH", "/api/budgets/mid-period", { amount_usd: "0.05" }, { "x-tollgate-actor": "alice" });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.amount_usd, "0.05");
    assert.deepEqual(await status(), { spend_usd: "0.075", amount_usd: "0.05", percent: 150, state: "blocked" });

    const { entries } = (await call("GET", `/api/audit?entity=budget&entity_id=${created.body.id}`)).body;
    assert.deepEqual(
      entries.map((e: any) => [e.action, e.actor, e.before?.amount_usd ?? null, e.after?.amount_usd ?? null]),
      [
        ["update", "admin:alice", "0.1", "0.05"],
        ["create", "admin", null, "0.1"],
      ],
    );
    assert.deepEqual(entries[0].after.scope, { feature: "summarize", team: "mid" });
  });
});

const UNKNOWN_COLOUR = 'unknown field "colour"; the fields of a budget are name, scope, amount_usd, period, timezone, thresholds, mode, paused';

describe("/api/audit", () => {
  test("newest first, a page at a time, filtered by entity, id and actor", async () => {
    for (let i = 0; i < 5; i++) assert.equal((await call("POST", "/api/budgets", { name: `paged-${i}`, amount_usd: "1", period: "year" }, { "x-tollgate-actor": "pager" })).status, 201);
    const seen: number[] = [];
    let before: number | null = null;
    let pages = 0;
    do {
      const page = await call("GET", `/api/audit?actor=admin:pager&limit=2${before ? `&before=${before}` : ""}`);
      assert.equal(page.status, 200);
      assert.ok(page.body.entries.length <= 2);
      seen.push(...page.body.entries.map((e: any) => e.id));
      for (const e of page.body.entries) assert.deepEqual([e.actor, e.action, e.entity], ["admin:pager", "create", "budget"]);
      before = page.body.next_before;
      pages++;
    } while (before !== null);
    assert.equal(pages, 3);
    assert.equal(seen.length, 5);
    assert.deepEqual(seen, [...seen].sort((a, b) => b - a), "newest first");
    const names = [];
    for (const id of seen) {
      const [entry] = (await call("GET", `/api/audit?before=${id + 1}&limit=1`)).body.entries;
      names.push(entry.after.name);
    }
    assert.deepEqual(names, ["paged-4", "paged-3", "paged-2", "paged-1", "paged-0"]);

    const keys = await call("GET", "/api/audit?entity=key");
    assert.ok(keys.body.entries.every((e: any) => e.entity === "key"));
  });

  test("bad query parameters: 400 naming the parameter", async () => {
    const cases: [string, { path: string; message: string }[]][] = [
      ["entity=budgets", [{ path: "entity", message: "one of budget, key, provider_key, ingest_source, channel, member, approval, mute, usage, session" }]],
      ["limit=0", [{ path: "limit", message: "a whole number from 1 to 500" }]],
      ["limit=ten", [{ path: "limit", message: "a whole number from 1 to 500" }]],
      ["limit=501", [{ path: "limit", message: "a whole number from 1 to 500" }]],
      ["before=-3", [{ path: "before", message: "an entry id from next_before" }]],
      ["entitty=budget", [{ path: "", message: 'unknown field "entitty"; the fields of the query are entity, entity_id, actor, limit, before' }]],
    ];
    for (const [query, errors] of cases) {
      const res = await call("GET", `/api/audit?${query}`);
      assert.equal(res.status, 400, query);
      assert.deepEqual(res.body.errors, errors, query);
    }
  });

  test("key changes are audited with ids, names and hints, never the key", async () => {
    const key = await call("POST", "/api/keys", { kind: "virtual", name: "audited-key", team: "search" }, { "x-tollgate-actor": "bob" });
    assert.equal(key.status, 201);
    assert.equal((await call("DELETE", `/api/keys/${key.body.id}`)).status, 200);
    assert.equal((await call("DELETE", `/api/keys/${key.body.id}`)).status, 200, "revoking twice is a no-op");
    const providerSecret = "sk-audit-test-provider-key-0123456789";
    assert.equal((await call("POST", "/api/providers", { name: "anthropic", api_key: providerSecret })).status, 200);
    assert.equal((await call("DELETE", "/api/providers/anthropic")).status, 200);
    const source = await call("POST", "/api/ingest-sources", { name: "audited-source" });
    assert.equal(source.status, 201);

    const keyLog = (await call("GET", `/api/audit?entity=key&entity_id=${key.body.id}`)).body.entries;
    assert.deepEqual(
      keyLog.map((e: any) => [e.action, e.actor, e.before?.revoked_at ?? null, e.after.name]),
      [
        ["revoke", "admin", null, "audited-key"],
        ["create", "admin:bob", null, "audited-key"],
      ],
    );
    assert.ok(keyLog[0].after.revoked_at);
    const providerLog = (await call("GET", "/api/audit?entity=provider_key&entity_id=anthropic")).body.entries;
    assert.deepEqual(
      providerLog.map((e: any) => [e.action, e.before.source, e.after.source, e.after.hint]),
      [
        ["remove", "stored", "none", null],
        ["set", "none", "stored", "…6789"],
      ],
    );
    const sourceLog = (await call("GET", `/api/audit?entity=ingest_source&entity_id=${source.body.id}`)).body.entries;
    assert.deepEqual(sourceLog.map((e: any) => [e.action, e.after]), [["create", { id: source.body.id, name: "audited-source" }]]);

    const everything = (await call("GET", "/api/audit?limit=500")).text;
    for (const secret of [key.body.key, key.body.key.slice(4), providerSecret, source.body.secret]) assert.ok(!everything.includes(secret), "no key material in the audit log");
    assert.ok(!everything.includes(key.body.prefix), "not even the key's prefix");
  });
});

describe("/api/reports/finance.csv", () => {
  test("the finance report as a CSV download, the same rows as /api/reports/finance", async () => {
    const ingest = await t.ingestKey();
    const now = new Date().toISOString();
    const event = (id: string, team: string) => ({ id: `fin-${id}`, timestamp: now, provider: "openai", model: "gpt-4o", input_tokens: 10_000, cached_input_tokens: 8_000, output_tokens: 1_000, team, project: "p" });
    const sent = await fetch(`${t.base}/v1/usage`, { method: "POST", headers: { authorization: `Bearer ${ingest}`, "content-type": "application/json" }, body: JSON.stringify([event("a", "alpha"), event("b", "alpha"), event("c", "beta")]) });
    assert.equal(sent.status, 200, await sent.text());

    const csv = await call("GET", "/api/reports/finance.csv?period=today");
    assert.equal(csv.status, 200);
    assert.match(csv.type, /^text\/csv/);
    assert.match(csv.headers.get("content-disposition") ?? "", /^attachment; filename="?tollgate-today\.csv"?$/);
    const [header, ...rows] = csv.text.split(/\r?\n/).filter(Boolean);
    assert.equal(header, "team,project,model,requests,unpriced_requests,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,reasoning_tokens,cost_usd");
    // Other tests in this file spend too, under other teams.
    assert.deepEqual(
      rows.filter((r) => /^(alpha|beta),/.test(r)),
      ["alpha,p,gpt-4o,2,0,20000,16000,0,2000,0,0.05", "beta,p,gpt-4o,1,0,10000,8000,0,1000,0,0.025"],
    );
    assert.equal((await call("GET", "/api/reports/finance?period=today&format=csv")).text, csv.text);

    const json = await call("GET", "/api/reports/finance.csv?period=today&format=json");
    assert.equal(json.status, 400);
    assert.deepEqual(json.body.errors, [{ path: "format", message: "finance.csv is always CSV; /api/reports/finance?format=json answers JSON" }]);
    const period = await call("GET", "/api/reports/finance.csv?period=last-fortnight");
    assert.equal(period.status, 400);
    assert.equal(period.body.errors[0].path, "period");
  });
});
