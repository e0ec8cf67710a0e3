import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createRegistry } from "../commands/registry.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";

/*
 * A NUL byte (%00 in a path or query, \u0000 in a JSON string or a command) cannot be stored by
 * PostgreSQL; before, it reached a query on these routes and the caller got a 500 (issue 14, item 12).
 */

let t: TestGateway;
before(async () => {
  t = await startTestGateway();
});
after(() => t.close());

const ROUTES: [method: string, path: string][] = [
  ["GET", "/api/budgets/a%00b"],
  ["GET", "/api/budgets/a%00b/status"],
  ["PATCH", "/api/budgets/a%00b"],
  ["DELETE", "/api/budgets/a%00b"],
  ["GET", "/api/channels/a%00b"],
  ["GET", "/api/channels/a%00b/mutes"],
  ["DELETE", "/api/channels/a%00b"],
  ["GET", "/api/approvals/a%00b"],
  ["POST", "/api/approvals/a%00b/decision"],
  ["DELETE", "/api/keys/a%00b"],
  ["DELETE", "/api/providers/a%00b"],
  ["GET", "/api/users/a%00b/usage"],
  ["DELETE", "/api/users/a%00b/usage"],
  ["DELETE", "/api/members/telegram/a%00b"],
  ["POST", "/api/outbox/a%00b/resend"],
  ["POST", "/api/ingest-sources/a%00b/secrets"],
  ["GET", "/api/spend?team=a%00b"],
  ["GET", "/api/audit?actor=a%00b"],
  ["GET", "/api/reports/finance?team=a%00b"],
];

describe("NUL bytes are refused with a precise 400, never a 500", () => {
  test("in a path or query, on every route that takes a name or an id", async () => {
    for (const [method, path] of ROUTES) {
      const res = await t.admin(path, { method, ...(method === "GET" || method === "DELETE" ? {} : { body: "{}" }) });
      const body = (await res.json()) as { code: string; detail: string };
      assert.equal(res.status, 400, `${method} ${path}: ${JSON.stringify(body)}`);
      assert.equal(body.code, "invalid_request");
      assert.match(body.detail, /NUL byte/);
    }
  });

  test("in a JSON body's strings or keys, named by their path", async () => {
    const cases: [string, string, unknown, string][] = [
      ["POST", "/api/budgets", { name: "nul\u0000budget", amount_usd: 10, period: "month", scope: { team: "a" } }, "name"],
      ["POST", "/api/keys", { kind: "virtual", name: "k", tags: { "e\u0000nv": "x" } }, "tags.e\u0000nv"],
      ["POST", "/api/channels", { platform: "webhook", name: "c", address: { url: "https://example.com/\u0000" } }, "address.url"],
      ["POST", "/api/members", { platform: "telegram", user_id: "1\u00002", role: "viewer" }, "user_id"],
    ];
    for (const [method, path, body, where] of cases) {
      const res = await t.admin(path, { method, body: JSON.stringify(body) });
      const answer = (await res.json()) as { errors: { path: string }[] };
      assert.equal(res.status, 400, `${path}: ${JSON.stringify(answer)}`);
      assert.deepEqual(answer.errors.map((e) => e.path), [where]);
    }
  });

  test("in command text, from the admin API as from every chat platform", async () => {
    const res = await t.admin("/api/commands", { method: "POST", body: JSON.stringify({ text: "budget show nul\u0000budget" }) });
    assert.equal(res.status, 400);
    const parsed = createRegistry().parse("budget show nul\u0000budget");
    assert.equal(parsed.ok, false);
    assert.match(parsed.ok ? "" : parsed.error.message, /NUL byte/);
  });
});
