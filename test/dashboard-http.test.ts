import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { ADMIN_TOKEN, type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { cookiesOf, csrfOf, exactMoney, signInWithToken } from "./helpers/dashboard.ts";
import { decimalUsdToPico } from "../src/pricing/money.ts";

/*
 * The dashboard over plain HTTP, as a browser without script would use it: sign-in, the
 * session cookie's flags, CSRF refusals, a cookie made by another gateway, escaping of usage
 * values, and figures equal to /api/spend's.
 */

let gw: TestGateway;
let cookie: string;
const HOSTILE = `<script>alert("x")</script>`;

async function get(path: string, as = cookie): Promise<{ status: number; text: string; res: Response }> {
  const res = await fetch(gw.base + path, { headers: { cookie: as }, redirect: "manual" });
  return { status: res.status, text: await res.text(), res };
}

async function post(path: string, fields: Record<string, string>, as = cookie): Promise<{ status: number; text: string; res: Response }> {
  const res = await fetch(gw.base + path, { method: "POST", redirect: "manual", headers: { cookie: as, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields) });
  return { status: res.status, text: await res.text(), res };
}

async function ingest(lines: Record<string, unknown>[]): Promise<void> {
  const res = await gw.admin("/api/usage?source=test", { method: "POST", headers: { "content-type": "application/x-ndjson" }, body: lines.map((l) => JSON.stringify(l)).join("\n") });
  assert.equal(res.status, 200, await res.text());
}

before(async () => {
  gw = await startTestGateway({ TOLLGATE_JOBS: "off" });
  const now = Date.now();
  await ingest([{ id: "unpriced-1", timestamp: new Date(now - 60_000).toISOString(), model: "house-model-9", provider: "openai", input_tokens: 4321, output_tokens: 99, team: "search" }]);
  await ingest(
    Array.from({ length: 24 }, (_, i) => ({
      id: `u${i}`,
      timestamp: new Date(now - i * 1_800_000).toISOString(),
      model: i % 2 ? "gpt-4o" : "gpt-4o-mini",
      provider: "openai",
      input_tokens: 1000 + i * 17,
      output_tokens: 100 + i,
      team: i % 3 === 0 ? HOSTILE : i % 3 === 1 ? "search" : "ads",
      feature: i % 4 === 0 ? `"><img src=x onerror=alert(1)>` : "chat",
    })),
  );
  cookie = (await signInWithToken(gw.base)).cookie;
});

after(async () => {
  await gw?.close();
});

describe("dashboard sign-in", () => {
  test("a visitor without a session is sent to sign in, and comes back to the page asked for", async () => {
    const res = await get("/explore?by=team", "");
    assert.equal(res.status, 303);
    assert.equal(res.res.headers.get("location"), "/sign-in?next=%2Fexplore%3Fby%3Dteam");
    const form = await get("/sign-in?next=%2Fexplore%3Fby%3Dteam", "");
    assert.equal(form.status, 200);
    assert.match(form.text, /name="next" value="\/explore\?by=team"/);
    assert.doesNotMatch(form.text, /Sign in with/, "no OpenID Connect button without its settings");
  });

  test("the session cookie is signed, HttpOnly and SameSite=Lax, not Secure over plain http; the session is stored server-side", async () => {
    const { res } = await signInWithToken(gw.base, "Flag Checker");
    const setCookie = res.headers.getSetCookie().find((c) => c.startsWith("tollgate_session="))!;
    assert.match(setCookie, /; HttpOnly/);
    assert.match(setCookie, /; SameSite=Lax/);
    assert.match(setCookie, /; Path=\//);
    assert.doesNotMatch(setCookie, /Secure/);
    const id = /^tollgate_session=([^.;]+)\./.exec(setCookie)![1]!;
    const rows = await gw.gateway.database.rows<{ kind: string; name: string; id_hash: string }>(sql`select kind, name, id_hash from web_sessions where name = 'Flag Checker'`);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.kind, "admin");
    assert.notEqual(rows[0]!.id_hash, id, "only a hash of the id is stored");
  });

  test("behind https (TOLLGATE_URL) the cookie is also Secure", async () => {
    const secure = await startTestGateway({ TOLLGATE_JOBS: "off", TOLLGATE_URL: "https://tollgate.example.com" }, { database: gw.gateway.database });
    try {
      const { res } = await signInWithToken(secure.base);
      assert.match(res.headers.getSetCookie().find((c) => c.startsWith("tollgate_session="))!, /; Secure/);
    } finally {
      await secure.close();
    }
  });

  test("a wrong token is refused, and a sign-in form without its CSRF token is refused", async () => {
    const form = await fetch(`${gw.base}/sign-in`);
    const csrf = csrfOf(await form.text());
    const wrong = await post("/sign-in", { _csrf: csrf, token: "not-the-token-at-all", name: "x" }, cookiesOf(form));
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /not this gateway&#39;s admin token/);
    assert.equal(wrong.res.headers.getSetCookie().some((c) => c.startsWith("tollgate_session=")), false);
    const noCsrf = await post("/sign-in", { token: ADMIN_TOKEN, name: "x" }, cookiesOf(form));
    assert.equal(noCsrf.status, 403);
    const noCookie = await post("/sign-in", { _csrf: csrf, token: ADMIN_TOKEN, name: "x" }, "");
    assert.equal(noCookie.status, 403);
    assert.equal(noCookie.res.headers.getSetCookie().some((c) => c.startsWith("tollgate_session=")), false);
  });

  test("a session cookie made by another gateway's key is refused, though its session exists", async () => {
    // Same database, another data folder: another master key.
    const other = await startTestGateway({ TOLLGATE_JOBS: "off" }, { database: gw.gateway.database });
    try {
      const theirs = (await signInWithToken(other.base, "Other Gateway")).cookie;
      assert.equal((await fetch(other.base + "/", { headers: { cookie: theirs }, redirect: "manual" })).status, 200, "valid where it was made");
      const here = await get("/", theirs);
      assert.equal(here.status, 303);
      assert.match(here.res.headers.get("location")!, /^\/sign-in/);
    } finally {
      await other.close();
    }
  });

  test("sign-out needs the CSRF token, revokes the session server-side and is audited with the person's name", async () => {
    const mine = (await signInWithToken(gw.base, "Sam Signout")).cookie;
    const overview = await get("/", mine);
    assert.equal((await post("/sign-out", {}, mine)).status, 403, "no token");
    assert.equal((await get("/", mine)).status, 200, "still signed in");
    const out = await post("/sign-out", { _csrf: csrfOf(overview.text) }, mine);
    assert.equal(out.status, 303);
    assert.equal((await get("/", mine)).status, 303, "the old cookie no longer opens a page");
    const audit = await gw.gateway.database.rows<{ actor: string; action: string }>(sql`select actor, action from audit_log where entity = 'session' and actor = 'admin:Sam Signout' order by id`);
    assert.deepEqual(audit.map((a) => a.action), ["sign_in", "sign_out"]);
  });
});

describe("dashboard pages", () => {
  test("the overview's month total is /api/spend's, exact; the daily chart is drawn with a text equivalent", async () => {
    const api = (await (await gw.admin("/api/spend?period=this-month")).json()) as { total: { cost_usd: string } };
    const page = await get("/");
    assert.equal(page.status, 200);
    assert.equal(exactMoney(page.text, "month-total"), api.total.cost_usd);
    assert.match(page.text, /<svg[^>]*role="img"/);
    assert.match(page.text, /<details><summary>Daily spend/);
    assert.match(page.res.headers.get("content-security-policy")!, /default-src 'none'/);
  });

  test("the daily chart stacks each day by the month's top teams and other, each figure /api/spend's for that day", async () => {
    const page = await get("/");
    const figure = /<figure id="daily"[\s\S]*?<\/figure>/.exec(page.text)?.[0];
    assert.ok(figure, "the overview has the daily chart");
    assert.match(figure, /<rect [^>]*><title>[^<]+<\/title><\/rect>/, "drawn as stacked columns");
    const unescape = (t: string) => t.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, "&");
    const heads = [...figure.matchAll(/<th scope="col"(?: class="num")?>([^<]*)<\/th>/g)].map((m) => unescape(m[1]!));
    const [, ...names] = heads;
    assert.equal(names.at(-1), "Total");
    const teams = names.slice(0, -1);
    assert.ok(teams.includes("search") && teams.includes(HOSTILE), `stacked by ${teams.join(", ")}`);
    const rows = [...figure.matchAll(/<tr><td>(\d{4}-\d\d-\d\d)<\/td>((?:<td class="num"><data value="[^"]+">[^<]*<\/data><\/td>)+)<\/tr>/g)];
    assert.ok(rows.length >= 1);
    const pico = (usd: string) => decimalUsdToPico(usd) as bigint;
    for (const [, day, cells] of rows) {
      const values = [...cells!.matchAll(/<data value="([^"]+)">/g)].map((m) => pico(m[1]!));
      const api = (await (await gw.admin(`/api/spend?period=${day}&by=team&top=50`)).json()) as { total: { cost_usd: string }; groups: { key: string; cost_usd: string }[] };
      const named = (key: string) => api.groups.find((g) => g.key === key);
      const expected = teams.map((t) => (t === "other" ? api.groups.filter((g) => !teams.includes(g.key)).reduce((a, g) => a + pico(g.cost_usd), 0n) : pico(named(t)?.cost_usd ?? "0")));
      assert.deepEqual(values, [...expected, pico(api.total.cost_usd)], `${day}: ${teams.join(", ")}, total`);
    }
  });

  test("usage values reach every page escaped: a team called <script> is text", async () => {
    for (const path of ["/", "/explore?by=team", "/explore?by=feature", "/budgets"]) {
      const page = await get(path);
      assert.equal(page.status, 200, path);
      assert.doesNotMatch(page.text, /<script/i, path);
      assert.doesNotMatch(page.text, /<img src=x/i, path);
    }
    const explore = await get("/explore?by=team");
    assert.match(explore.text, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;/);
  });

  test("the explorer groups by team with each group's exact spend, and filters", async () => {
    const api = (await (await gw.admin("/api/spend?period=last-7d&by=team&top=50&model=gpt-4o")).json()) as { total: { cost_usd: string }; groups: { key: string; cost_usd: string }[] };
    const page = await get("/explore?period=last-7d&by=team&model=gpt-4o");
    assert.equal(page.status, 200);
    assert.equal(exactMoney(page.text, "explore-total"), api.total.cost_usd);
    for (const g of api.groups) assert.ok(page.text.includes(`<data value="${g.cost_usd}">`), `group ${g.key} shows ${g.cost_usd}`);
  });

  test("a period outside the grammar is answered with what was expected", async () => {
    const page = await get("/explore?period=last-fortnight");
    assert.equal(page.status, 400);
    assert.match(page.text, /unknown period &quot;last-fortnight&quot;/);
    assert.match(page.text, /YYYY-MM-DD\.\.YYYY-MM-DD/);
  });

  test("an approval form without a valid CSRF token is refused and decides nothing", async () => {
    const budget = await gw.admin("/api/budgets", { method: "POST", body: JSON.stringify({ name: "csrf-budget", scope: { team: "search" }, amount_usd: "100", period: "month" }) });
    assert.equal(budget.status, 201, await budget.text());
    const raise = await gw.admin("/api/approvals", { method: "POST", body: JSON.stringify({ budget: "csrf-budget", amount_usd: "150", reason: "launch", requested_by: "admin" }) });
    const { id } = (await raise.json()) as { id: string };
    for (const fields of [{ decision: "approve" }, { decision: "approve", _csrf: "forged" }] as Record<string, string>[]) {
      const res = await post(`/approvals/${id}/decision`, fields);
      assert.equal(res.status, 403);
      assert.match(res.text, /CSRF/);
    }
    const after = (await (await gw.admin(`/api/approvals/${id}`)).json()) as { status: string };
    assert.equal(after.status, "pending");
  });

  test("unpriced usage lists the models without a price, with their calls", async () => {
    const page = await get("/unpriced?period=this-month");
    assert.equal(page.status, 200);
    const row = /<tr><td>house-model-9<\/td><td class="num">1<\/td><td class="num">1<\/td><td class="num">4,321<\/td>/.exec(page.text);
    assert.ok(row, "house-model-9 with its one unpriced call and its tokens");
    assert.doesNotMatch(page.text, /<td>gpt-4o<\/td>/, "priced models are not listed");
  });

  test("the finance CSV of the explorer is the admin API's", async () => {
    const mine = await get("/explore.csv?period=this-month");
    const api = await gw.admin("/api/reports/finance.csv?period=this-month");
    assert.equal(mine.status, 200);
    assert.match(mine.res.headers.get("content-type")!, /text\/csv/);
    assert.equal(mine.text, await api.text());
  });
});
