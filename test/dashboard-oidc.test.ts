import assert from "node:assert/strict";
import { once } from "node:events";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import Provider from "oidc-provider";
import type { Browser, Page } from "playwright-core";
import { sql } from "drizzle-orm";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { NO_BROWSER, launchBrowser } from "./helpers/browser.ts";

/*
 * Signing in to the dashboard with OpenID Connect against a real OpenID provider (oidc-provider,
 * started here, with its own login and consent pages), driven in headless chromium: the role
 * comes from the members table (platform oidc, by verified email), a viewer sees only the scope
 * given and is refused an admin page, and someone who is no member is not let in.
 */

const CLIENT_ID = "tollgate-dashboard";
const CLIENT_SECRET = "a-client-secret-of-some-length-0123456789";
const PEOPLE: Record<string, string> = { alice: "Alice Approver", victor: "Victor Viewer", mallory: "Mallory Outsider" };

let gw: TestGateway;
let idp: Server;
let browser: Browser;

async function signInAs(login: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${gw.base}/`);
  await page.getByRole("link", { name: "Sign in with Test IdP" }).click();
  // oidc-provider's own development login and consent pages.
  await page.locator("input[name=login]").fill(login);
  await page.locator("input[name=password]").fill("any password");
  await page.getByRole("button", { name: "Sign-in" }).click();
  await page.getByRole("button", { name: "Continue" }).click();
  await page.waitForURL((url) => url.origin === gw.base);
  return page;
}

describe("dashboard sign-in with OpenID Connect", { skip: NO_BROWSER }, () => {
  before(async () => {
    idp = createServer();
    idp.listen(0, "127.0.0.1");
    await once(idp, "listening");
    const issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
    gw = await startTestGateway({
      TOLLGATE_JOBS: "off",
      TOLLGATE_OIDC_ISSUER: issuer,
      TOLLGATE_OIDC_CLIENT_ID: CLIENT_ID,
      TOLLGATE_OIDC_CLIENT_SECRET: CLIENT_SECRET,
      TOLLGATE_OIDC_NAME: "Test IdP",
    });
    const provider = new Provider(issuer, {
      clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${gw.base}/auth/oidc/callback`], token_endpoint_auth_method: "client_secret_post" }],
      claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
      findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id, email: `${id}@Example.com`, email_verified: true, name: PEOPLE[id] ?? id }) }),
      cookies: { keys: ["oidc-test-cookie-key"] },
    });
    idp.on("request", provider.callback());

    const now = Date.now();
    const lines = Array.from({ length: 12 }, (_, i) => ({ id: `o${i}`, timestamp: new Date(now - i * 3_000_000).toISOString(), model: "gpt-4o", provider: "openai", input_tokens: 1500 + i, output_tokens: 200, team: i % 2 ? "search" : "ads" }));
    assert.equal((await gw.admin("/api/usage?source=test", { method: "POST", headers: { "content-type": "application/x-ndjson" }, body: lines.map((l) => JSON.stringify(l)).join("\n") })).status, 200);
    for (const member of [
      { platform: "oidc", user_id: "alice@example.com", role: "approver" },
      { platform: "oidc", user_id: "victor@example.com", role: "viewer", name: "Victor V.", scopes: [{ team: "search" }] },
    ]) {
      const res = await gw.admin("/api/members", { method: "PUT", body: JSON.stringify(member) });
      assert.ok(res.ok, await res.text());
    }
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
    idp?.closeAllConnections();
    await new Promise((resolve) => idp?.close(resolve));
  });

  test("a member signs in through the provider with the role the members table gives their verified email", async () => {
    const page = await signInAs("alice");
    assert.equal(new URL(page.url()).pathname, "/");
    assert.match((await page.locator(".who").textContent())!, /Alice Approver \(approver\)/);
    await page.getByRole("link", { name: "Approvals" }).click();
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Approvals");
    const audit = await page.goto(`${gw.base}/audit`);
    assert.equal(audit!.status(), 403, "an approver is no admin");
    const signIns = await gw.gateway.database.rows<{ actor: string }>(sql`select actor from audit_log where entity = 'session' and action = 'sign_in'`);
    assert.deepEqual(signIns.map((r) => r.actor), ["oidc:alice@example.com"]);
  });

  test("a viewer sees only the scope given, and is refused the pages above a viewer", async () => {
    const page = await signInAs("victor");
    assert.match((await page.locator(".who").textContent())!, /Victor V\. \(viewer\)/);
    const spend = (await (await gw.admin("/api/spend?period=this-month&team=search")).json()) as { total: { cost_usd: string } };
    const all = (await (await gw.admin("/api/spend?period=this-month")).json()) as { total: { cost_usd: string } };
    assert.notEqual(spend.total.cost_usd, all.total.cost_usd);
    assert.equal(await page.locator("#month-total data").getAttribute("value"), spend.total.cost_usd);
    assert.match((await page.locator("main").textContent())!, /Showing team:search only/);
    // A filter of another team cannot widen the scope.
    await page.goto(`${gw.base}/explore?by=team&team=ads`);
    assert.equal(await page.locator("#explore-total data").getAttribute("value"), spend.total.cost_usd);
    assert.equal(await page.getByRole("link", { name: "Audit log" }).count(), 0);
    for (const path of ["/audit", "/approvals", "/explore.csv"]) {
      const res = await page.goto(`${gw.base}${path}`);
      assert.equal(res!.status(), 403, path);
    }
    assert.match((await page.locator("main").textContent())!, /needs the requester role; you are a viewer/);
  });

  test("someone the provider knows but the gateway does not is not let in", async () => {
    const page = await signInAs("mallory");
    assert.equal(new URL(page.url()).pathname, "/auth/oidc/callback");
    assert.match((await page.getByRole("alert").textContent())!, /mallory@example\.com is not a member of this gateway/);
    const res = await page.goto(`${gw.base}/`);
    assert.match(res!.url(), /\/sign-in/);
  });
});
