import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import OpenAI from "openai";
import type { ExportedEvent } from "../src/ledger/user-data.ts";
import { decimalUsdToPico, picoToDecimalString } from "../src/pricing/money.ts";
import type { FakeUpstream } from "./fakes/fake-upstream.ts";
import { OPENAI_KEY, startFakeOpenAI } from "./fakes/openai.ts";
import { csrfOf, memberSessionCookie, signInWithToken } from "./helpers/dashboard.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { proxyRow } from "./helpers/proxy-ledger.ts";
import { assertRollupsMatchEvents } from "./helpers/rollups.ts";
import { waitFor } from "./helpers/wait.ts";

/*
 * The dashboard's admin pages over plain HTTP, as a browser without script uses them: gateway
 * keys created (the key shown once) and revoked, with the proxy's answer to the key checked
 * each time; provider keys set and removed; one end user's usage exported and erased with the
 * API's numbers; viewers refused; forms without the CSRF token refused and changing nothing.
 */

let gw: TestGateway;
let openaiFake: FakeUpstream;
let cookie: string;
let viewerCookie: string;
const HOSTILE = `<script>alert("u")</script>`;

async function get(path: string, as = cookie): Promise<{ status: number; text: string; res: Response }> {
  const res = await fetch(gw.base + path, { headers: { cookie: as }, redirect: "manual" });
  return { status: res.status, text: await res.text(), res };
}

async function post(path: string, fields: Record<string, string | string[]>, as = cookie): Promise<{ status: number; text: string; res: Response }> {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) for (const v of [value].flat()) body.append(name, v);
  const res = await fetch(gw.base + path, { method: "POST", redirect: "manual", headers: { cookie: as, "content-type": "application/x-www-form-urlencoded" }, body });
  return { status: res.status, text: await res.text(), res };
}

/** The CSRF token of the admin's session, read off a page as a browser's form would carry it. */
const csrf = async (as = cookie) => csrfOf((await get("/keys", as)).text);

interface ListedKey {
  id: string;
  name: string;
  prefix: string;
  revoked_at: string | null;
}
const apiKeys = async () => ((await (await gw.admin("/api/keys")).json()) as { keys: ListedKey[] }).keys;

const chat = (apiKey: string) =>
  new OpenAI({ baseURL: `${gw.base}/openai/v1`, apiKey, maxRetries: 0 }).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });

async function ingest(lines: Record<string, unknown>[]): Promise<void> {
  const res = await gw.admin("/api/usage?source=test", { method: "POST", headers: { "content-type": "application/x-ndjson" }, body: lines.map((l) => JSON.stringify(l)).join("\n") });
  assert.equal(res.status, 200, await res.text());
}

before(async () => {
  openaiFake = await startFakeOpenAI();
  gw = await startTestGateway({
    TOLLGATE_JOBS: "off",
    OPENAI_BASE_URL: openaiFake.url,
    OPENAI_API_KEY: OPENAI_KEY,
    // Members of platform oidc exist only with a provider set; it is never reached here.
    TOLLGATE_OIDC_ISSUER: "http://127.0.0.1:9/",
    TOLLGATE_OIDC_CLIENT_ID: "dashboard",
    TOLLGATE_OIDC_CLIENT_SECRET: "a-client-secret-of-some-length",
  });
  cookie = (await signInWithToken(gw.base, "Dana Admin")).cookie;
  const member = await gw.admin("/api/members", { method: "PUT", body: JSON.stringify({ platform: "oidc", user_id: "vic@example.com", role: "viewer", scopes: [{ team: "search" }] }) });
  assert.equal(member.status, 201, await member.text());
  viewerCookie = await memberSessionCookie(gw, "vic@example.com", "Victor Viewer");
});

after(async () => {
  await gw?.close();
  await openaiFake?.close();
});

describe("gateway keys from the dashboard", () => {
  test("an admin creates a virtual key: shown once with no-store, works at the proxy, refused there once revoked through the page", async () => {
    const created = await post("/keys", { _csrf: await csrf(), kind: "virtual", name: "web made", team: "web", allowed_providers: ["openai"], allowed_models: "gpt-4o, gpt-4o-mini" });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.res.headers.get("cache-control"), "no-store");
    const key = /id="new-key" readonly size="60" value="(tlg_[^"]+)"/.exec(created.text)?.[1];
    assert.ok(key, "the key is on the answer page");
    assert.match(created.text, /only time the key is shown/);

    const listed = (await apiKeys()).find((k) => k.name === "web made")!;
    assert.ok(listed, "the admin API lists it");
    assert.ok(key.startsWith(listed.prefix));
    const again = await get("/keys");
    assert.ok(again.text.includes(`<code>${listed.prefix}…</code>`), "the list shows where it starts");
    assert.equal(again.text.includes(key), false, "a second view does not show the key");
    assert.equal((await get(`/keys/${listed.id}/revoke`)).text.includes(key), false);
    const audit = await gw.gateway.database.rows<{ actor: string; action: string; text: string }>(sql`select actor, action, after::text as text from audit_log where entity = 'key' and entity_id = ${listed.id}`);
    assert.deepEqual(audit.map((a) => [a.actor, a.action]), [["admin:Dana Admin", "create"]]);
    assert.equal(audit[0]!.text.includes(key) || audit[0]!.text.includes(listed.prefix), false, "the audit log keeps neither the key nor its prefix");

    const { response } = await chat(key).withResponse();
    const row = await proxyRow(gw.gateway.database, response.headers.get("x-tollgate-request-id")!);
    assert.equal(row.api_key_id, listed.id);
    assert.equal(row.team, "web", "the key's attribution is stamped on its usage");

    const confirm = await get(`/keys/${listed.id}/revoke`);
    assert.equal(confirm.status, 200);
    assert.match(confirm.text, /Revoke key web made\?/);
    const revoked = await post(`/keys/${listed.id}/revoke`, { _csrf: csrfOf(confirm.text) });
    assert.equal(revoked.status, 303);
    const notice = await get(revoked.res.headers.get("location")!);
    assert.match(notice.text, /Key web made is revoked/);
    await assert.rejects(chat(key), (err: unknown) => err instanceof OpenAI.AuthenticationError);
    const revokeAudit = await gw.gateway.database.rows<{ actor: string }>(sql`select actor from audit_log where entity = 'key' and entity_id = ${listed.id} and action = 'revoke'`);
    assert.deepEqual(revokeAudit.map((a) => a.actor), ["admin:Dana Admin"]);
  });

  test("the admin API's rules judge the form: errors by field, the values kept, nothing created", async () => {
    const before = (await apiKeys()).length;
    const token = await csrf();
    const bad = await post("/keys", { _csrf: token, kind: "virtual", name: "", team: HOSTILE });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /<li><code>name<\/code>: /);
    assert.ok(bad.text.includes(`value="&lt;script&gt;alert(&quot;u&quot;)&lt;/script&gt;"`), "the team typed is shown again, escaped");
    assert.doesNotMatch(bad.text, /<script/);
    const ingestLimited = await post("/keys", { _csrf: token, kind: "ingest", name: "limited ingest", allowed_providers: ["openai"] });
    assert.equal(ingestLimited.status, 400);
    assert.match(ingestLimited.text, /<code>allowed_providers<\/code>: only virtual keys call providers; leave it out for ingest keys/);
    const elsewhere = await post("/keys", { _csrf: token, kind: "virtual", name: "elsewhere", allowed_providers: ["openai", "nowhere"], allowed_models: "claude-*, gpt-4o" });
    assert.equal(elsewhere.status, 400);
    assert.match(elsewhere.text, /<code>allowed_providers\[1\]<\/code>: one of the proxy&#39;s providers: openai/);
    assert.match(elsewhere.text, /value="openai" checked/, "the ticked providers stay ticked");
    assert.match(elsewhere.text, /value="claude-\*, gpt-4o"/);
    assert.equal((await apiKeys()).length, before);
  });

  test("without the CSRF token nothing is created or revoked", async () => {
    const live = (await gw.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: "csrf target" }) }).then((r) => r.json())) as { id: string; key: string };
    const before = (await apiKeys()).length;
    for (const token of [undefined, "forged"]) {
      const fields: Record<string, string> = token ? { _csrf: token } : {};
      const create = await post("/keys", { ...fields, kind: "virtual", name: "should not exist" });
      assert.equal(create.status, 403);
      assert.match(create.text, /CSRF/);
      assert.equal((await post(`/keys/${live.id}/revoke`, fields)).status, 403);
      assert.equal((await post("/providers", { ...fields, name: "openai", api_key: "sk-should-not-be-stored-000" })).status, 403);
    }
    assert.equal((await apiKeys()).length, before);
    assert.equal((await apiKeys()).find((k) => k.id === live.id)!.revoked_at, null);
    assert.ok(await chat(live.key), "the key still works");
    const stored = await gw.gateway.database.rows(sql`select provider from provider_keys`);
    assert.equal(stored.length, 0);
  });
});

describe("provider keys from the dashboard", () => {
  test("an admin sets the upstream key (never shown back), the proxy sends it; removing it brings the environment's back", async () => {
    const secret = "sk-set-from-the-dashboard-0123456789";
    const set = await post("/providers", { _csrf: await csrf(), name: "openai", api_key: secret });
    assert.equal(set.status, 303, set.text);
    const page = await get(set.res.headers.get("location")!);
    assert.match(page.text, /The stored key of openai was set/);
    assert.match(page.text, /<code>…6789<\/code>/);
    assert.equal(page.text.includes(secret), false);
    const key = (await gw.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: "upstream check" }) }).then((r) => r.json())) as { key: string };
    // The fake accepts only its own key: the dashboard's is what went upstream.
    await assert.rejects(chat(key.key), (err: unknown) => err instanceof OpenAI.AuthenticationError);
    assert.equal(openaiFake.requests.at(-1)!.headers.authorization, `Bearer ${secret}`);

    const confirm = await get("/providers/openai/remove");
    assert.equal(confirm.status, 200);
    const removed = await post("/providers/openai/remove", { _csrf: csrfOf(confirm.text) });
    assert.equal(removed.status, 303);
    assert.ok(await chat(key.key));
    assert.equal(openaiFake.requests.at(-1)!.headers.authorization, `Bearer ${OPENAI_KEY}`);
    const audit = await gw.gateway.database.rows<{ actor: string; action: string; text: string }>(sql`select actor, action, coalesce(after::text, '') as text from audit_log where entity = 'provider_key' order by id`);
    assert.deepEqual(audit.map((a) => [a.actor, a.action]), [["admin:Dana Admin", "set"], ["admin:Dana Admin", "remove"]]);
    assert.equal(audit.some((a) => a.text.includes(secret)), false);
  });

  test("a key the provider schema refuses is said so, and nothing is stored", async () => {
    const bad = await post("/providers", { _csrf: await csrf(), name: "nowhere", api_key: "short" });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /one of the proxy&#39;s providers/);
    assert.match(bad.text, /at least 8 characters/);
    assert.equal((await gw.gateway.database.rows(sql`select provider from provider_keys`)).length, 0);
  });
});

describe("one end user's data from the dashboard", () => {
  const day = (d: number, h: number) => new Date(Date.UTC(2026, 2, d, h, 13, 7, 250)).toISOString();
  const usage = (user: string | undefined, n: number, prefix: string) =>
    Array.from({ length: n }, (_, i) => ({
      id: `${prefix}-${i}`,
      timestamp: day(3 + (i % 3), 8 + (i % 5)),
      model: i % 2 ? "gpt-4o" : "gpt-4o-mini",
      provider: "openai",
      input_tokens: 1000 + 37 * i,
      output_tokens: 50 + 11 * i,
      team: i % 2 ? "search" : "ads",
      ...(user ? { user } : {}),
    }));

  before(async () => {
    await ingest([...usage("erin", 17, "erin"), ...usage(HOSTILE, 5, "hostile"), ...usage("frank", 9, "frank"), ...usage(undefined, 4, "anon")]);
  });

  const apiSpend = async () =>
    ((await (await gw.admin("/api/spend?period=2026-03&by=team")).json()) as { groups: { key: string; cost_usd: string; requests: number }[] }).groups;

  test("the lookup shows their footprint; the export is the API's, line for line, and audited under the person's name", async () => {
    const page = await get("/users?user=erin");
    assert.equal(page.status, 200);
    assert.match(page.text, /<span id="footprint-requests">17<\/span> requests from 2026-03-03 to 2026-03-05/);
    const mine = await get("/users/usage.ndjson?user=erin");
    assert.equal(mine.status, 200);
    assert.match(mine.res.headers.get("content-type")!, /application\/x-ndjson/);
    assert.equal(mine.res.headers.get("cache-control"), "no-store");
    const api = await (await gw.admin("/api/users/erin/usage")).text();
    assert.equal(mine.text, api);
    assert.equal(mine.text.trimEnd().split("\n").length, 17);
    // Audited once the stream has ended, so after the client has read it.
    const exports = () => gw.gateway.database.rows<{ actor: string }>(sql`select actor from audit_log where entity = 'usage' and entity_id = 'erin' and action = 'export' order by id`);
    await waitFor("both exports audited", async () => (await exports()).length === 2);
    assert.deepEqual((await exports()).map((a) => a.actor).sort(), ["admin", "admin:Dana Admin"]);
  });

  test("an end user id called <script> is text on every page", async () => {
    const q = new URLSearchParams({ user: HOSTILE });
    for (const path of [`/users?${q}`, `/users/erase?${q}`]) {
      const page = await get(path);
      assert.equal(page.status, 200, path);
      assert.doesNotMatch(page.text, /<script/i, path);
      assert.ok(page.text.includes("&lt;script&gt;alert(&quot;u&quot;)&lt;/script&gt;"), path);
    }
    const wrong = await post("/users/erase", { _csrf: await csrf(), user: HOSTILE, confirm: "nope" });
    assert.equal(wrong.status, 400);
    assert.doesNotMatch(wrong.text, /<script/i);
  });

  test("erasing needs the id typed again; then the counts are the API's and every rollup is reduced by exactly their part", async () => {
    const exported = (await (await gw.admin("/api/users/erin/usage")).text()).trimEnd().split("\n").map((l) => JSON.parse(l) as ExportedEvent);
    const before = await apiSpend();
    const confirm = await get("/users/erase?user=erin");
    assert.match(confirm.text, /Type the end user id to confirm/);

    const mistyped = await post("/users/erase", { _csrf: csrfOf(confirm.text), user: "erin", confirm: "erin " });
    assert.equal(mistyped.status, 400);
    assert.match(mistyped.text, /does not match erin; nothing was erased/);
    const noCsrf = await post("/users/erase", { user: "erin", confirm: "erin" });
    assert.equal(noCsrf.status, 403);
    const still = await gw.gateway.database.rows<{ n: number }>(sql`select count(*)::int as n from usage_events where "user" = 'erin'`);
    assert.equal(still[0]!.n, 17, "nothing erased by a mistyped id or a form without its token");

    const erased = await post("/users/erase", { _csrf: csrfOf(confirm.text), user: "erin", confirm: "erin" });
    assert.equal(erased.status, 200, erased.text);
    assert.match(erased.text, new RegExp(`<span id="erased-events">${exported.length}</span> events erased`));
    const audit = await gw.gateway.database.rows<{ actor: string; text: string }>(sql`select actor, after::text as text from audit_log where entity = 'usage' and entity_id = 'erin' and action = 'erase'`);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.actor, "admin:Dana Admin");
    assert.equal(JSON.parse(audit[0]!.text).events, exported.length);

    const after = await apiSpend();
    for (const team of ["ads", "search"]) {
      const theirs = exported.filter((e) => e.team === team);
      const was = before.find((g) => g.key === team)!;
      const now = after.find((g) => g.key === team)!;
      const spent = theirs.reduce((sum, e) => sum + (decimalUsdToPico(e.cost_usd) as bigint), 0n);
      assert.equal(now.requests, was.requests - theirs.length, team);
      assert.equal(now.cost_usd, picoToDecimalString((decimalUsdToPico(was.cost_usd) as bigint) - spent), team);
    }
    await assertRollupsMatchEvents(gw.gateway.database);
    assert.match((await get("/users?user=erin")).text, /No usage is recorded for the end user <strong>erin<\/strong>/);
    // The API erasing again finds what the page left: nothing.
    const api = (await (await gw.admin("/api/users/erin/usage", { method: "DELETE" })).json()) as { events: number };
    assert.equal(api.events, 0);
  });

  test("an id no event can carry is answered with the API's reason", async () => {
    const page = await get(`/users?user=${encodeURIComponent(" padded")}`);
    assert.equal(page.status, 400);
    assert.match(page.text, /must not start or end with spaces/);
  });
});

describe("admin pages and roles", () => {
  test("a viewer is refused every admin page and form, and their posts change nothing", async () => {
    const overview = await get("/", viewerCookie);
    assert.equal(overview.status, 200, "a viewer has a session");
    assert.doesNotMatch(overview.text, /href="\/keys"/, "the navigation offers no admin page");
    const theirCsrf = csrfOf(overview.text);
    for (const path of ["/keys", "/users?user=frank", "/users/usage.ndjson?user=frank", "/users/erase?user=frank", "/providers/openai/remove"]) {
      const page = await get(path, viewerCookie);
      assert.equal(page.status, 403, path);
      assert.match(page.text, /needs the admin role; you are a viewer/, path);
    }
    const keys = (await apiKeys()).length;
    assert.equal((await post("/keys", { _csrf: theirCsrf, kind: "virtual", name: "viewer made" }, viewerCookie)).status, 403);
    assert.equal((await post("/users/erase", { _csrf: theirCsrf, user: "frank", confirm: "frank" }, viewerCookie)).status, 403);
    assert.equal((await post("/providers", { _csrf: theirCsrf, name: "openai", api_key: "sk-viewer-would-set-this" }, viewerCookie)).status, 403);
    assert.equal((await apiKeys()).length, keys);
    const frank = await gw.gateway.database.rows<{ n: number }>(sql`select count(*)::int as n from usage_events where "user" = 'frank'`);
    assert.equal(frank[0]!.n, 9);
  });
});
