import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import type { Alert } from "../src/alerts/alert.ts";
import { BudgetInput } from "../src/budgets/budget.ts";
import { channels } from "../src/db/schema.ts";
import type { FakeUpstream } from "./fakes/fake-upstream.ts";
import { OPENAI_KEY, startFakeOpenAI } from "./fakes/openai.ts";
import { BIN_ARGS } from "./helpers/cli.ts";
import { ADMIN_TOKEN, type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { HANG_MS, waitFor } from "./helpers/wait.ts";

let gw: TestGateway;
let openaiFake: FakeUpstream;
const HOUR = 3_600_000;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; type: string; body: Record<string, any> }> {
  const res = await gw.admin(path, { method, ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, type: res.headers.get("content-type") ?? "", body: text ? JSON.parse(text) : {} };
}

async function counts(): Promise<Record<string, number>> {
  const [row] = await gw.gateway.database.rows<Record<string, number>>(sql`
    select (select count(*)::int from approvals) as approvals, (select count(*)::int from notifications) as notifications,
      (select count(*)::int from audit_log) as audit, (select count(*)::int from members) as members,
      (select string_agg(amount::text, ',' order by name) from budgets) as amounts`);
  return row!;
}

/** The alerts written to the outbox for a channel, oldest first. */
async function alertsFor(channelId: string): Promise<Alert[]> {
  const rows = await gw.gateway.database.rows<{ payload: { alerts: Alert[] } | string }>(
    sql`select payload from notifications where channel_id = ${channelId} order by id`,
  );
  return rows.flatMap((r) => (typeof r.payload === "string" ? JSON.parse(r.payload) : r.payload).alerts);
}

async function auditOf(entity: string, entityId: string): Promise<{ actor: string; action: string }[]> {
  return gw.gateway.database.rows(sql`select actor, action from audit_log where entity = ${entity} and entity_id = ${entityId} order by id`);
}

async function amountOf(name: string): Promise<bigint> {
  return (await gw.gateway.budgets.find(name))!.amount;
}

/** A 400 problem naming exactly these field paths. */
function assertFieldErrors(res: Awaited<ReturnType<typeof call>>, paths: string[]): void {
  assert.equal(res.status, 400, JSON.stringify(res.body));
  assert.match(res.type, /application\/problem\+json/);
  assert.deepEqual(
    (res.body.errors as { path: string }[]).map((e) => e.path).sort(),
    [...paths].sort(),
    JSON.stringify(res.body.errors),
  );
}

/** A 400 problem for an unknown field: the object holding it is at fault (`at`), and the message names the key. */
function assertUnknownField(res: Awaited<ReturnType<typeof call>>, key: string, at = ""): void {
  assertFieldErrors(res, [at]);
  assert.match(res.body.errors[0].message, new RegExp(`^unknown field "${key}"; the fields of `));
}

const USD = 1_000_000_000_000n;
const heard: { id: string; amount?: bigint }[] = [];

before(async () => {
  openaiFake = await startFakeOpenAI();
  gw = await startTestGateway({ TOLLGATE_JOBS: "off", OPENAI_BASE_URL: openaiFake.url, OPENAI_API_KEY: OPENAI_KEY });
  gw.gateway.budgets.onChange((b) => heard.push({ id: b.id, amount: "amount" in b ? b.amount : undefined }));
  for (const [name, team] of [["search-monthly", "search"], ["ads-monthly", "ads"], ["ml-monthly", "ml"], ["ops-monthly", "ops"]] as const) {
    const created = await gw.gateway.budgets.create(BudgetInput.parse({ name, scope: { team }, amount_usd: "500", period: "month", mode: "hard" }), "test");
    assert.ok(created.ok);
  }
  await gw.gateway.database.db.insert(channels).values([
    { id: "approvers", platform: "webhook", name: "approvers", address: { url: "http://127.0.0.1:9/approvers" }, kinds: ["approvals"] },
    { id: "search-room", platform: "webhook", name: "search room", address: { url: "http://127.0.0.1:9/search" }, kinds: ["alerts"] },
  ]);
  for (const [user_id, role] of [["UREQ", "requester"], ["UAPP", "approver"], ["UAPP2", "approver"], ["UVIEW", "viewer"], ["29:1a-b", "admin"]] as const)
    assert.equal((await call("PUT", "/api/members", { platform: user_id.includes(":") ? "teams" : "slack", user_id, role })).status, 201);
});

after(async () => {
  await gw.close();
  await openaiFake.close();
});

describe("members", () => {
  test("set creates (201) then updates (200), list shows them, remove deletes; each change audited", async () => {
    const created = await call("PUT", "/api/members", { platform: "telegram", user_id: "4242", role: "requester", name: "Ana" });
    assert.equal(created.status, 201);
    assert.deepEqual({ ...created.body, updated_at: undefined }, { platform: "telegram", user_id: "4242", role: "requester", name: "Ana", scopes: [], updated_at: undefined });
    const updated = await call("POST", "/api/members", { platform: "telegram", user_id: "4242", role: "approver" });
    assert.equal(updated.status, 200);
    assert.equal(updated.body.role, "approver");
    assert.equal(updated.body.name, "Ana", "a name left out is kept");
    const scoped = await call("PUT", "/api/members", { platform: "telegram", user_id: "4242", role: "approver", scopes: [{ team: "search" }, { team: "ads", model: "gpt-4o" }] });
    assert.deepEqual(scoped.body.scopes, [{ team: "search" }, { team: "ads", model: "gpt-4o" }]);
    assert.deepEqual((await call("PUT", "/api/members", { platform: "telegram", user_id: "4242", role: "approver" })).body.scopes, scoped.body.scopes, "scopes left out are kept");
    const listed = await call("GET", "/api/members");
    assert.ok(listed.body.members.some((m: any) => m.platform === "telegram" && m.user_id === "4242" && m.role === "approver"));
    assert.ok(listed.body.members.some((m: any) => m.platform === "teams" && m.user_id === "29:1a-b"), "Teams ids keep their colon");
    assert.equal(await gw.gateway.members.roleOf("telegram", "4242"), "approver");

    const removed = await call("DELETE", "/api/members/telegram/4242");
    assert.equal(removed.status, 200);
    assert.equal(removed.body.role, "approver");
    assert.equal(await gw.gateway.members.roleOf("telegram", "4242"), "viewer", "people without a role are viewers");
    assert.deepEqual(
      (await auditOf("member", "telegram:4242")).map((a) => `${a.actor} ${a.action}`),
      ["admin create", "admin update", "admin update", "admin update", "admin delete"],
    );
  });

  test("bad input: exact status and field, nothing written", async () => {
    const before = await counts();
    assertFieldErrors(await call("PUT", "/api/members", { platform: "myspace", user_id: "U1", role: "viewer" }), ["platform"]);
    assertFieldErrors(await call("PUT", "/api/members", { platform: "slack", user_id: "U1", role: "boss" }), ["role"]);
    assertFieldErrors(await call("PUT", "/api/members", { platform: "slack", user_id: "U1", role: "viewer", scopes: [{ colour: "red" }] }), ["scopes[0].colour"]);
    assertFieldErrors(await call("PUT", "/api/members", { platform: "slack", role: "viewer" }), ["user_id"]);
    assertFieldErrors(await call("PUT", "/api/members", { platform: "slack", user_id: "  ", role: "viewer" }), ["user_id"]);
    assertUnknownField(await call("PUT", "/api/members", { platform: "slack", user_id: "U1", role: "viewer", team: "x" }), "team");
    const badJson = await call("PUT", "/api/members", "{not json");
    assert.equal(badJson.status, 400);
    assert.equal(badJson.body.detail, "the body is not valid JSON");
    const missing = await call("DELETE", "/api/members/slack/UNOBODY");
    assert.equal(missing.status, 404);
    assert.equal(missing.body.detail, "no member slack:UNOBODY");
    assert.deepEqual(await counts(), before);
  });
});

describe("raise requests", () => {
  let id: string;

  test("a request is stored pending for the TTL and sent to every approvals channel with approve/reject actions", async () => {
    const before = Date.now();
    const res = await call("POST", "/api/approvals", {
      budget: "search-monthly",
      amount_usd: "800",
      reason: "launch week",
      requested_by: "slack:UREQ",
      requested_via: { platform: "webhook", channel_id: "search-room", user_id: "UREQ" },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    id = res.body.id;
    assert.match(id, /^apr_[0-9a-f]{12}$/);
    assert.equal(res.body.budget, "search-monthly");
    assert.equal(res.body.from_usd, "500");
    assert.equal(res.body.to_usd, "800");
    assert.equal(res.body.status, "pending");
    assert.equal(res.body.requested_by, "slack:UREQ");
    const ttl = Date.parse(res.body.expires_at) - Date.parse(res.body.created_at);
    assert.equal(ttl, 72 * HOUR, "TOLLGATE_APPROVAL_TTL defaults to 72h");
    assert.ok(Date.parse(res.body.created_at) >= before - 1000);

    const [alert] = await alertsFor("approvers");
    assert.equal(alert!.kind, "approval_requested");
    assert.equal(alert!.budget!.name, "search-monthly");
    assert.equal(alert!.amount_usd, "500");
    assert.deepEqual(
      alert!.actions.map((a) => [a.action, a.target]),
      [["approve", id], ["reject", id]],
    );
    assert.equal(alert!.details.reason, "launch week");
    assert.deepEqual(await alertsFor("search-room"), [], "the requester's channel hears the outcome, not the request");
    assert.deepEqual((await auditOf("approval", id)).map((a) => `${a.actor} ${a.action}`), ["slack:UREQ request"]);

    assert.equal((await call("GET", `/api/approvals/${id}`)).body.status, "pending");
    const pending = await call("GET", "/api/approvals?status=pending");
    assert.deepEqual(pending.body.approvals.map((a: any) => a.id), [id]);
  });

  test("bad requests: exact status and error, nothing half-written", async () => {
    const before = await counts();
    const ask = (body: Record<string, unknown>) =>
      call("POST", "/api/approvals", { budget: "ads-monthly", amount_usd: "900", reason: "more traffic", requested_by: "slack:UREQ", ...body });

    const same = await ask({ amount_usd: "500" });
    assertFieldErrors(same, ["amount_usd"]);
    assert.match(same.body.errors[0].message, /must be above the budget's current amount of \$500\.00/);
    assertFieldErrors(await ask({ amount_usd: "499.99" }), ["amount_usd"]);
    assertFieldErrors(await ask({ amount_usd: 900 }), ["amount_usd"]);
    assertFieldErrors(await ask({ amount_usd: "-5" }), ["amount_usd"]);
    assertFieldErrors(await ask({ amount_usd: "0.0000000000001" }), ["amount_usd"]);
    assertFieldErrors(await ask({ budget: "no-such-budget" }), ["budget"]);
    assertFieldErrors(await ask({ reason: "   " }), ["reason"]);
    assertFieldErrors(await ask({ requested_by: "bob" }), ["requested_by"]);
    assertFieldErrors(await ask({ requested_by: "myspace:bob" }), ["requested_by"]);
    assertFieldErrors(await ask({ requested_via: { platform: "webhook", channel_id: "nowhere" } }), ["requested_via.channel_id"]);
    assertFieldErrors(await ask({ requested_via: { channel_id: "search-room" } }), ["requested_via.platform"]);
    assertUnknownField(await ask({ requested_via: { platform: "slack", channel: "x" } }), "channel", "requested_via");
    assertUnknownField(await ask({ colour: "red" }), "colour");
    assertFieldErrors(await call("POST", "/api/approvals", {}), ["budget", "amount_usd", "reason", "requested_by"]);

    const viewer = await ask({ requested_by: "slack:UVIEW" });
    assert.equal(viewer.status, 403);
    assert.equal(viewer.body.detail, "slack:UVIEW is a viewer; asking for a raise needs the requester, approver or admin role");
    const stranger = await ask({ requested_by: "slack:USTRANGER" });
    assert.equal(stranger.status, 403, "people nobody gave a role are viewers");

    const twice = await call("POST", "/api/approvals", { budget: "search-monthly", amount_usd: "900", reason: "again", requested_by: "slack:UREQ" });
    assert.equal(twice.status, 409);
    assert.match(twice.body.detail, new RegExp(`already waiting for a decision \\(${id}\\)`));

    const badStatus = await call("GET", "/api/approvals?status=done");
    assertFieldErrors(badStatus, ["status"]);
    assert.equal((await call("GET", "/api/approvals/apr_000000000000")).status, 404);
    assert.deepEqual(await counts(), before);
  });

  test("bad decisions: 400 with the field, 404 for an unknown id, 403 for anyone below approver; nothing changes", async () => {
    const before = await counts();
    const decide = (body: Record<string, unknown>, target = id) => call("POST", `/api/approvals/${target}/decision`, body);
    assertFieldErrors(await decide({ decision: "maybe", by: "slack:UAPP" }), ["decision"]);
    assertFieldErrors(await decide({ decision: "approve" }), ["by"]);
    assertFieldErrors(await decide({ decision: "approve", by: "UAPP" }), ["by"]);
    assertFieldErrors(await decide({ decision: "approve", by: "slack:UAPP", reason: "" }), ["reason"]);
    assertUnknownField(await decide({ decision: "approve", by: "slack:UAPP", amount_usd: "1000" }), "amount_usd");
    const unknown = await decide({ decision: "approve", by: "slack:UAPP" }, "apr_000000000000");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.detail, "no approval request with id apr_000000000000");

    const requester = await decide({ decision: "approve", by: "slack:UREQ" });
    assert.equal(requester.status, 403);
    assert.match(requester.type, /application\/problem\+json/);
    assert.equal(requester.body.detail, "slack:UREQ is a requester; deciding a raise needs the approver or admin role");
    const stranger = await decide({ decision: "reject", by: "telegram:999" });
    assert.equal(stranger.status, 403);
    assert.equal(stranger.body.detail, "telegram:999 is a viewer; deciding a raise needs the approver or admin role");

    assert.deepEqual(await counts(), before);
    assert.equal((await call("GET", `/api/approvals/${id}`)).body.status, "pending");
  });

  test("an approver's approval raises the budget at once, tells listeners, audits, and notifies approvers and the requester", async () => {
    heard.length = 0;
    const res = await call("POST", `/api/approvals/${id}/decision`, { decision: "approve", by: "slack:UAPP", reason: "fine for launch" });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, "approved");
    assert.equal(res.body.decided_by, "slack:UAPP");
    assert.equal(res.body.decision_reason, "fine for launch");
    assert.equal(res.body.budget_amount_usd, "800");
    assert.equal(await amountOf("search-monthly"), 800n * USD);
    const search = (await gw.gateway.budgets.find("search-monthly"))!;
    assert.deepEqual(heard, [{ id: search.id, amount: 800n * USD }], "the enforcement side hears the raise once, after commit");

    assert.deepEqual((await auditOf("approval", id)).map((a) => `${a.actor} ${a.action}`), ["slack:UREQ request", "slack:UAPP approve"]);
    assert.deepEqual((await auditOf("budget", search.id)).map((a) => `${a.actor} ${a.action}`), ["test create", "slack:UAPP update"]);

    const decided = (await alertsFor("approvers")).filter((a) => a.kind === "approval_decided");
    assert.equal(decided.length, 1);
    assert.equal(decided[0]!.title, "Raise of search-monthly to $800.00 approved by slack:UAPP");
    assert.equal(decided[0]!.amount_usd, "800");
    const toRequester = await alertsFor("search-room");
    assert.deepEqual(toRequester.map((a) => a.id), [decided[0]!.id], "the requester hears where they asked");
  });

  test("a second click, or a second approver, changes nothing and is told who decided and when", async () => {
    const before = await counts();
    const first = (await call("GET", `/api/approvals/${id}`)).body;
    for (const body of [
      { decision: "approve", by: "slack:UAPP" },
      { decision: "reject", by: "slack:UAPP2", reason: "too much" },
      { decision: "reject", by: "admin" },
    ]) {
      const again = await call("POST", `/api/approvals/${id}/decision`, body);
      assert.equal(again.status, 409);
      assert.match(again.type, /application\/problem\+json/);
      assert.equal(again.body.detail, `already approved by slack:UAPP at ${first.decided_at}`);
      assert.equal(again.body.decided_by, "slack:UAPP");
      assert.equal(again.body.decided_at, first.decided_at);
      assert.equal(again.body.approval_status, "approved");
    }
    assert.deepEqual(await counts(), before);
    assert.equal(await amountOf("search-monthly"), 800n * USD);
  });

  test("two approvers deciding at the same moment: exactly one decision counts", async () => {
    const asked = await call("POST", "/api/approvals", { budget: "ml-monthly", amount_usd: "650.50", reason: "eval run", requested_by: "teams:29:1a-b" });
    assert.equal(asked.status, 201);
    const answers = await Promise.all([
      call("POST", `/api/approvals/${asked.body.id}/decision`, { decision: "approve", by: "slack:UAPP" }),
      call("POST", `/api/approvals/${asked.body.id}/decision`, { decision: "reject", by: "slack:UAPP2" }),
      call("POST", `/api/approvals/${asked.body.id}/decision`, { decision: "approve", by: "admin" }),
    ]);
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 409, 409]);
    const winner = answers.find((a) => a.status === 200)!.body;
    const decisions = (await auditOf("approval", asked.body.id)).filter((a) => a.action !== "request");
    assert.equal(decisions.length, 1);
    assert.equal(await amountOf("ml-monthly"), winner.status === "approved" ? 650_500_000_000_000n : 500n * USD);
    for (const loser of answers.filter((a) => a.status === 409)) assert.equal(loser.body.decided_by, winner.decided_by);
  });

  test("a rejection leaves the amount; the admin API decides as admin", async () => {
    const asked = await call("POST", "/api/approvals", { budget: "ads-monthly", amount_usd: "1000", reason: "holiday", requested_by: "admin" });
    assert.equal(asked.status, 201);
    assert.equal(asked.body.requested_by, "admin");
    const res = await gw.admin(`/api/approvals/${asked.body.id}/decision`, {
      method: "POST",
      headers: { "x-tollgate-actor": "maria" },
      body: JSON.stringify({ decision: "reject", by: "admin", reason: "not this quarter" }),
    });
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, 200);
    assert.equal(body.status, "rejected");
    assert.equal(body.decided_by, "admin:maria");
    assert.equal(await amountOf("ads-monthly"), 500n * USD);
    const [decided] = (await alertsFor("approvers")).filter((a) => a.id === `approval:${asked.body.id}:rejected`);
    assert.equal(decided!.title, "Raise of ads-monthly to $1,000.00 rejected by admin:maria");
  });
});

describe("four eyes", () => {
  const raise = async (budget: string, by: string) => {
    assert.ok((await gw.gateway.budgets.create(BudgetInput.parse({ name: budget, scope: { team: budget }, amount_usd: "100", period: "month" }), "test")).ok);
    const asked = await call("POST", "/api/approvals", { budget, amount_usd: "5000", reason: "mine", requested_by: by });
    assert.equal(asked.status, 201, JSON.stringify(asked.body));
    return asked.body.id as string;
  };
  const decide = (id: string, body: Record<string, unknown>) => call("POST", `/api/approvals/${id}/decision`, body);

  test("an approver cannot decide their own raise, even with a reason; another approver can", async () => {
    const id = await raise("eyes-approver", "slack:UAPP2");
    // What a view offers buttons by (Slack's Home tab): not to the requester, to another approver, never to a requester.
    const pending = (await gw.gateway.approvals.get(id))!;
    const now = new Date();
    assert.equal(gw.gateway.approvals.mayDecide(pending, { kind: "member", platform: "slack", userId: "UAPP2" }, "approver", now), false);
    assert.equal(gw.gateway.approvals.mayDecide(pending, { kind: "member", platform: "slack", userId: "UAPP2" }, "admin", now), false, "an override needs a reason a button cannot give");
    assert.equal(gw.gateway.approvals.mayDecide(pending, { kind: "member", platform: "slack", userId: "UAPP" }, "approver", now), true);
    assert.equal(gw.gateway.approvals.mayDecide(pending, { kind: "member", platform: "slack", userId: "UAPP" }, "requester", now), false);
    assert.equal(gw.gateway.approvals.mayDecide(pending, { kind: "member", platform: "slack", userId: "UAPP" }, "approver", pending.expires_at), false, "not once expired");
    for (const decision of ["approve", "reject"]) {
      const own = await decide(id, { decision, by: "slack:UAPP2", reason: "trust me" });
      assert.equal(own.status, 403, JSON.stringify(own.body));
      assert.equal(own.body.detail, "slack:UAPP2 asked for this raise; another approver or an admin decides it");
    }
    const override = await decide(id, { decision: "approve", by: "slack:UAPP2", override: "only an admin may" });
    assert.equal(override.status, 403);
    assert.equal(await amountOf("eyes-approver"), 100n * USD, "$100 stays $100");
    assert.deepEqual((await auditOf("approval", id)).map((a) => a.action), ["request"]);
    const other = await decide(id, { decision: "approve", by: "slack:UAPP" });
    assert.equal(other.status, 200);
    assert.equal(await amountOf("eyes-approver"), 5000n * USD);
  });

  test("an admin deciding their own raise must override with a reason, which is audited", async () => {
    const id = await raise("eyes-admin", "teams:29:1a-b");
    const bare = await decide(id, { decision: "approve", by: "teams:29:1a-b" });
    assert.equal(bare.status, 403);
    assert.equal(bare.body.detail, "teams:29:1a-b asked for this raise; another approver decides it, or an admin overrides with a reason");
    assertFieldErrors(await decide(id, { decision: "approve", by: "teams:29:1a-b", override: " " }), ["override"]);
    const overridden = await decide(id, { decision: "approve", by: "teams:29:1a-b", override: "the other approvers are on leave" });
    assert.equal(overridden.status, 200, JSON.stringify(overridden.body));
    assert.equal(await amountOf("eyes-admin"), 5000n * USD);
    const [entry] = await gw.gateway.database.rows<{ actor: string; after: { four_eyes_override?: string } | string }>(
      sql`select actor, after from audit_log where entity = 'approval' and entity_id = ${id} and action = 'approve'`,
    );
    const after = typeof entry!.after === "string" ? JSON.parse(entry!.after) : entry!.after;
    assert.equal(entry!.actor, "teams:29:1a-b");
    assert.equal(after.four_eyes_override, "the other approvers are on leave");
  });

  test("TOLLGATE_FOUR_EYES=off lets a team of one decide its own raise", async () => {
    const alone = await startTestGateway({ TOLLGATE_JOBS: "off", TOLLGATE_FOUR_EYES: "off" });
    try {
      assert.ok((await alone.gateway.budgets.create(BudgetInput.parse({ name: "solo", scope: {}, amount_usd: "100", period: "month" }), "test")).ok);
      const post = async (path: string, body: unknown) => {
        const res = await alone.admin(path, { method: "POST", body: JSON.stringify(body) });
        return { status: res.status, body: (await res.json()) as Record<string, any> };
      };
      const asked = await post("/api/approvals", { budget: "solo", amount_usd: "200", reason: "growth", requested_by: "admin" });
      const own = (await alone.gateway.approvals.get(asked.body.id))!;
      assert.equal(alone.gateway.approvals.mayDecide(own, { kind: "admin", label: own.requested_by }, "admin", new Date()), true, "their own, with four eyes off");
      const decided = await post(`/api/approvals/${asked.body.id}/decision`, { decision: "approve", by: "admin" });
      assert.equal(decided.status, 200, JSON.stringify(decided.body));
      assert.equal(decided.body.budget_amount_usd, "200");
    } finally {
      await alone.close();
    }
  });
});

describe("expiry", () => {
  test("a pending request expires after the TTL (fixed clock), is announced once, and cannot be decided after", async () => {
    const asked = await call("POST", "/api/approvals", { budget: "ops-monthly", amount_usd: "700", reason: "migration", requested_by: "slack:UREQ" });
    assert.equal(asked.status, 201);
    const id = asked.body.id as string;
    const expiresAt = Date.parse(asked.body.expires_at);
    const approvals = gw.gateway.approvals;

    assert.equal(await approvals.expireApprovals(new Date(expiresAt - 1)), 0, "not before its time");
    assert.equal((await call("GET", `/api/approvals/${id}`)).body.status, "pending");
    assert.equal(await approvals.expireApprovals(new Date(expiresAt)), 1);
    assert.equal(await approvals.expireApprovals(new Date(expiresAt + HOUR)), 0, "expired once");
    const expired = (await call("GET", `/api/approvals/${id}`)).body;
    assert.equal(expired.status, "expired");
    assert.equal(expired.decided_by, null);
    assert.deepEqual((await auditOf("approval", id)).map((a) => `${a.actor} ${a.action}`), ["slack:UREQ request", "system expire"]);
    const announced = (await alertsFor("approvers")).filter((a) => a.id.startsWith(`approval:${id}:`)).map((a) => a.kind);
    assert.deepEqual(announced, ["approval_requested", "approval_decided"]);

    const late = await call("POST", `/api/approvals/${id}/decision`, { decision: "approve", by: "slack:UAPP" });
    assert.equal(late.status, 409);
    assert.equal(late.body.detail, `the request expired at ${asked.body.expires_at} without a decision`);
    assert.equal(await amountOf("ops-monthly"), 500n * USD);

    const again = await call("POST", "/api/approvals", { budget: "ops-monthly", amount_usd: "700", reason: "migration, again", requested_by: "slack:UREQ" });
    assert.equal(again.status, 201, "an expired request does not block a new one");
  });

  test("a decision after the TTL but before the job ran is refused and marks the request expired", async () => {
    const [pending] = (await call("GET", "/api/approvals?status=pending")).body.approvals.filter((a: any) => a.budget === "ops-monthly");
    const by = { kind: "member" as const, platform: "slack", userId: "UAPP" };
    const late = await gw.gateway.approvals.decide(pending.id, { decision: "approve", by }, new Date(Date.parse(pending.expires_at) + 1));
    assert.equal(late.ok, false);
    assert.equal(!late.ok && late.kind, "conflict");
    assert.equal((await call("GET", `/api/approvals/${pending.id}`)).body.status, "expired");
    assert.equal(await amountOf("ops-monthly"), 500n * USD);
  });
});

describe("a raise lifts a hard block", () => {
  test("blocked with 429 at the amount; the next call after the approval goes through, without waiting", async () => {
    assert.ok((await gw.gateway.budgets.create(BudgetInput.parse({ name: "block-monthly", scope: { team: "block" }, amount_usd: "1", period: "month", mode: "hard" }), "test")).ok);
    // $1 of gpt-4o input at $2.50 per million tokens.
    const seeded = await call("POST", "/api/usage?source=test", { id: "seed-block", timestamp: new Date().toISOString(), provider: "openai", model: "gpt-4o", input_tokens: 400_000, team: "block" });
    assert.equal(seeded.status, 200);
    const key = ((await call("POST", "/api/keys", { kind: "virtual", name: "block-key", team: "block" })).body as { key: string }).key;
    const chat = () =>
      fetch(`${gw.base}/openai/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o", max_tokens: 50, messages: [{ role: "user", content: "hello" }] }),
      });
    await waitFor("the spend to block the budget", async () => (await chat()).status === 429);

    const asked = await call("POST", "/api/approvals", { budget: "block-monthly", amount_usd: "5", reason: "demo day", requested_by: "slack:UREQ" });
    assert.equal((await chat()).status, 429, "asking is not getting");
    const decided = await call("POST", `/api/approvals/${asked.body.id}/decision`, { decision: "approve", by: "slack:UAPP" });
    assert.equal(decided.status, 200);
    const res = await chat();
    assert.equal(res.status, 200, await res.text());
  });
});

describe("CLI", () => {
  const cli = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const env = { PATH: process.env.PATH, HOME: process.env.HOME, TOLLGATE_URL: gw.base, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, LOG_LEVEL: "silent" };
      execFile(process.execPath, [...BIN_ARGS, ...args], { env, timeout: HANG_MS }, (err, stdout, stderr) =>
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
      );
    });

  test("members set, approvals request and approve through the admin API, errors in one line", async () => {
    assert.equal((await cli(["members", "set", "slack", "UCLI", "approver", "--name", "Cli Person"])).code, 0);
    assert.equal(await gw.gateway.members.roleOf("slack", "UCLI"), "approver");

    const asked = await cli(["approvals", "request", "ads-monthly", "750", "black", "friday", "--by", "slack:UREQ"]);
    assert.equal(asked.code, 0, asked.stderr);
    assert.match(asked.stdout, /ads-monthly\s+500\s+750\s+pending\s+slack:UREQ\s+black friday/);
    const id = /apr_[0-9a-f]{12}/.exec(asked.stdout)![0];

    const refused = await cli(["approvals", "approve", id, "--by", "slack:UREQ"]);
    assert.equal(refused.code, 2);
    assert.equal(refused.stderr, `tollgate: POST /api/approvals/${id}/decision answered 403: slack:UREQ is a requester; deciding a raise needs the approver or admin role\n`);
    const approved = await cli(["approvals", "approve", id, "--by", "slack:UCLI"]);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /ads-monthly is now \$750/);
    assert.equal(await amountOf("ads-monthly"), 750n * USD);
  });
});
