import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import type { BudgetJson } from "../src/budgets/budget-json.ts";
import type { NotificationInfo } from "../src/alerts/outbox.ts";
import { CookieSigner } from "../src/web/cookies.ts";
import { WebSessions } from "../src/web/sessions.ts";
import { WebhookReceiver } from "./fakes/webhook-receiver.ts";
import { enqueue, thresholdAlert } from "./helpers/alerts.ts";
import { csrfOf, signInWithToken } from "./helpers/dashboard.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { waitFor } from "./helpers/wait.ts";

/*
 * The dashboard's budget forms and its alerts and deliveries page over plain HTTP, as a browser
 * without script uses them: an admin creates, edits, pauses and resumes a budget and the admin
 * API shows each change; bad input is refused with the admin API's own errors at their fields;
 * viewers and forms without a CSRF token change nothing; a dead delivery resent from the page
 * reaches a webhook receiver; a viewer sees only the deliveries of budgets in their scope.
 */

const MASTER_KEY = Buffer.alloc(32, 9);
const HOSTILE = `<script>alert("x")</script>`;

let gw: TestGateway;
let admin: string;

type Answer = { status: number; text: string; location: string | null };

async function get(path: string, as = admin): Promise<Answer> {
  const res = await fetch(gw.base + path, { headers: { cookie: as }, redirect: "manual" });
  return { status: res.status, text: await res.text(), location: res.headers.get("location") };
}

async function post(path: string, fields: Record<string, string>, as = admin): Promise<Answer> {
  const res = await fetch(gw.base + path, { method: "POST", redirect: "manual", headers: { cookie: as, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields) });
  return { status: res.status, text: await res.text(), location: res.headers.get("location") };
}

/** Posts a form with the CSRF token of the page it is on, as a browser submitting it would. */
async function submit(formPath: string, action: string, fields: Record<string, string>, as = admin): Promise<Answer> {
  const form = await get(formPath, as);
  assert.equal(form.status, 200, form.text);
  return post(action, { _csrf: csrfOf(form.text), ...fields }, as);
}

async function apiBudget(name: string): Promise<BudgetJson | undefined> {
  const res = await gw.admin(`/api/budgets/${encodeURIComponent(name)}`);
  return res.status === 404 ? undefined : ((await res.json()) as BudgetJson);
}

/** A viewer signed in through OpenID Connect, held to `scopes`: their member entry and a session, as the callback makes one. */
async function viewerCookie(userId: string, scopes: Record<string, string>[]): Promise<string> {
  const member = await gw.admin("/api/members", { method: "PUT", body: JSON.stringify({ platform: "oidc", user_id: userId, role: "viewer", scopes }) });
  assert.ok(member.ok, await member.text());
  const session = await new WebSessions(gw.gateway.database, 3_600_000).create({ kind: "oidc", subject: userId, name: userId });
  return `tollgate_session=${new CookieSigner(MASTER_KEY, "session").sign(session.id)}`;
}

const FORM = { name: "web-search", amount_usd: "250.50", period: "month", timezone: "Europe/Berlin", thresholds: "80, 50", mode: "hard", team: "search" };

before(async () => {
  gw = await startTestGateway({
    TOLLGATE_JOBS: "off",
    TOLLGATE_MASTER_KEY: MASTER_KEY.toString("base64"),
    TOLLGATE_OUTBOUND_ALLOW: "127.0.0.1",
    TOLLGATE_OUTBOX_RETRY_SCHEDULE: "20ms",
    // For members of platform oidc. The provider is only reached on signing in through it, which
    // dashboard-oidc.test.ts does against a real one; here viewers' sessions are made directly.
    TOLLGATE_OIDC_ISSUER: "http://127.0.0.1:9",
    TOLLGATE_OIDC_CLIENT_ID: "unused",
    TOLLGATE_OIDC_CLIENT_SECRET: "unused",
  });
  admin = (await signInWithToken(gw.base, "Dana Admin")).cookie;
});

after(async () => {
  await gw?.close();
});

describe("budget forms", () => {
  let id: string;

  test("an admin creates a budget with the form; /api/budgets shows it, audited under the person's name", async () => {
    const list = await get("/budgets");
    assert.match(list.text, /<a href="\/budgets\/new">New budget<\/a>/);
    const created = await submit("/budgets/new", "/budgets", FORM);
    assert.equal(created.status, 303, created.text);
    const budget = (await apiBudget("web-search"))!;
    assert.deepEqual(
      { amount_usd: budget.amount_usd, period: budget.period, timezone: budget.timezone, thresholds: budget.thresholds, mode: budget.mode, scope: budget.scope, paused: budget.paused },
      { amount_usd: "250.5", period: "month", timezone: "Europe/Berlin", thresholds: [50, 80], mode: "hard", scope: { team: "search" }, paused: false },
    );
    id = budget.id;
    assert.equal(created.location, `/budgets/${id}?done=created`);
    const shown = await get(created.location!);
    assert.match(shown.text, /role="status">Budget created\./);
    assert.doesNotMatch((await get(`/budgets/${id}?done=constructor`)).text, /role="status"/, "only the changes it knows");
    const audit = await gw.gateway.database.rows<{ actor: string }>(sql`select actor from audit_log where entity = 'budget' and entity_id = ${id} and action = 'create'`);
    assert.deepEqual(audit.map((a) => a.actor), ["admin:Dana Admin"]);
  });

  test("the edit form holds the budget's values; saving changes it, and pause and resume keep the rest", async () => {
    const form = await get(`/budgets/${id}/edit`);
    for (const value of ['value="web-search"', 'value="250.5"', 'value="Europe/Berlin"', 'value="50, 80"', 'name="team" value="search"', '<option value="hard" selected>'])
      assert.ok(form.text.includes(value), value);
    const saved = await post(`/budgets/${id}`, { _csrf: csrfOf(form.text), ...FORM, amount_usd: "300", thresholds: "90", mode: "soft" });
    assert.equal(saved.status, 303, saved.text);
    assert.equal(saved.location, `/budgets/${id}?done=updated`);
    let budget = (await apiBudget("web-search"))!;
    assert.deepEqual([budget.amount_usd, budget.thresholds, budget.mode, budget.paused], ["300", [90], "soft", false]);

    const page = await get(`/budgets/${id}`);
    assert.match(page.text, /<button type="submit">Pause web-search<\/button>/);
    const paused = await post(`/budgets/${id}/pause`, { _csrf: csrfOf(page.text) });
    assert.equal(paused.location, `/budgets/${id}?done=paused`);
    budget = (await apiBudget("web-search"))!;
    assert.deepEqual([budget.paused, budget.amount_usd], [true, "300"]);

    // An edit keeps the budget paused: pausing is its own button.
    assert.equal((await submit(`/budgets/${id}/edit`, `/budgets/${id}`, { ...FORM, amount_usd: "310" })).status, 303);
    budget = (await apiBudget("web-search"))!;
    assert.deepEqual([budget.paused, budget.amount_usd], [true, "310"]);

    const resumed = await submit(`/budgets/${id}`, `/budgets/${id}/resume`, {});
    assert.equal(resumed.location, `/budgets/${id}?done=resumed`);
    assert.equal((await apiBudget("web-search"))!.paused, false);

    const history = await get(`/budgets/${id}`);
    assert.match(history.text, /<h2>Changes<\/h2>/);
    assert.match(history.text, /amount_usd 250\.5 → 300; thresholds \[50,80\] → \[90\]; mode hard → soft/);
    assert.match(history.text, /<td>paused false → true<\/td>/);
    const actors = await gw.gateway.database.rows<{ actor: string }>(sql`select distinct actor from audit_log where entity = 'budget' and entity_id = ${id}`);
    assert.deepEqual(actors.map((a) => a.actor), ["admin:Dana Admin"]);
  });

  test("bad input is refused with the admin API's own errors, each at its field, and the form keeps what was typed", async () => {
    const typed = { name: "bad name!", amount_usd: "12,50", period: "month", timezone: "Mars/Olympus", thresholds: "50, lots", mode: "soft", team: "" };
    const refused = await submit("/budgets/new", "/budgets", typed);
    assert.equal(refused.status, 400);
    const errorAt = (field: string) => new RegExp(`id="budget-${field}-error" class="field-error">([^<]*)<`).exec(refused.text)?.[1];
    assert.equal(errorAt("name"), "letters, digits, dot, dash and underscore, starting with a letter or digit");
    assert.equal(errorAt("amount_usd"), "&quot;12,50&quot; is not a decimal amount of USD");
    assert.equal(errorAt("timezone"), "an IANA time zone such as UTC or Europe/Berlin");
    assert.equal(errorAt("thresholds"), "&quot;lots&quot;: a whole percentage from 1 to 1000");
    assert.equal(errorAt("period"), undefined);
    assert.match(refused.text, /id="budget-amount_usd" name="amount_usd" aria-describedby="budget-amount_usd-help budget-amount_usd-error" aria-invalid="true" value="12,50"/);
    assert.ok(refused.text.includes('value="bad name!"') && refused.text.includes('value="50, lots"'), "what was typed is kept");
    assert.match(refused.text, /<li><a href="#budget-amount_usd">Amount \(USD\)<\/a>: &quot;12,50&quot; is not a decimal amount of USD<\/li>/);

    // The same body to the admin API: the same messages.
    const api = await gw.admin("/api/budgets", { method: "POST", body: JSON.stringify({ name: "bad name!", amount_usd: "12,50", period: "month", timezone: "Mars/Olympus", thresholds: [50, "lots"], mode: "soft" }) });
    const problem = (await api.json()) as { errors: { path: string; message: string }[] };
    assert.deepEqual(problem.errors.map((e) => e.path).sort(), ["amount_usd", "name", "thresholds[1]", "timezone"]);
    for (const e of problem.errors) assert.ok(refused.text.includes(e.message.replaceAll('"', "&quot;")), e.message);

    const missing = await submit("/budgets/new", "/budgets", { ...FORM, name: "no-amount", amount_usd: "" });
    assert.equal(missing.status, 400);
    assert.match(missing.text, /id="budget-amount_usd-error" class="field-error">required</);
    const taken = await submit("/budgets/new", "/budgets", FORM);
    assert.equal(taken.status, 409);
    assert.match(taken.text, /id="budget-name-error" class="field-error">a budget named web-search already exists</);
    const budgets = (await (await gw.admin("/api/budgets")).json()) as { budgets: BudgetJson[] };
    assert.deepEqual(budgets.budgets.map((b) => b.name), ["web-search"], "nothing refused was created");
  });

  test("forms without a valid CSRF token are refused and change nothing", async () => {
    const before = await apiBudget("web-search");
    for (const fields of [{}, { _csrf: "forged" }] as Record<string, string>[]) {
      for (const [path, body] of [
        ["/budgets", { ...FORM, name: "csrf-made" }],
        [`/budgets/${id}`, { ...FORM, amount_usd: "1" }],
        [`/budgets/${id}/pause`, {}],
      ] as const) {
        const res = await post(path, { ...fields, ...body });
        assert.equal(res.status, 403, path);
        assert.match(res.text, /CSRF/);
      }
    }
    assert.deepEqual(await apiBudget("web-search"), before);
    assert.equal(await apiBudget("csrf-made"), undefined);
  });

  test("a viewer is refused the forms (403) and shown no buttons, though they see the budget", async () => {
    const viewer = await viewerCookie("vera@example.com", [{ team: "search" }]);
    const page = await get(`/budgets/${id}`, viewer);
    assert.equal(page.status, 200);
    assert.doesNotMatch(page.text, /Edit web-search|Pause web-search/);
    assert.doesNotMatch(page.text, /<h2>Changes<\/h2>/);
    assert.doesNotMatch((await get("/budgets", viewer)).text, /New budget/);
    for (const path of ["/budgets/new", `/budgets/${id}/edit`]) {
      const res = await get(path, viewer);
      assert.equal(res.status, 403, path);
      assert.match(res.text, /needs the admin role; you are a viewer/);
    }
    const csrf = csrfOf(page.text);
    for (const [path, body] of [
      ["/budgets", { ...FORM, name: "viewer-made" }],
      [`/budgets/${id}`, { ...FORM, amount_usd: "1" }],
      [`/budgets/${id}/pause`, {}],
    ] as const)
      assert.equal((await post(path, { _csrf: csrf, ...body }, viewer)).status, 403, path);
    assert.equal((await apiBudget("web-search"))!.amount_usd, "310");
    assert.equal(await apiBudget("viewer-made"), undefined);
  });

  test("usage-derived values reach the budget pages escaped", async () => {
    const created = await submit("/budgets/new", "/budgets", { ...FORM, name: "hostile", team: HOSTILE });
    assert.equal(created.status, 303, created.text);
    assert.deepEqual((await apiBudget("hostile"))!.scope, { team: HOSTILE });
    const hostileId = (await apiBudget("hostile"))!.id;
    for (const path of ["/budgets", `/budgets/${hostileId}`, `/budgets/${hostileId}/edit`]) {
      const page = await get(path);
      assert.equal(page.status, 200, path);
      assert.doesNotMatch(page.text, /<script/i, path);
      assert.match(page.text, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;/, path);
    }
  });
});

describe("alerts and deliveries", () => {
  let receiver: WebhookReceiver;
  const budgetRef = async (name: string, team: string) => {
    const res = await gw.admin("/api/budgets", { method: "POST", body: JSON.stringify({ name, scope: { team }, amount_usd: "500", period: "month" }) });
    assert.equal(res.status, 201, await res.clone().text());
    const b = (await res.json()) as BudgetJson;
    return { id: b.id, name: b.name, scope: b.scope as Record<string, string> };
  };
  const outbox = async (query = "") => ((await (await gw.admin(`/api/outbox${query}`)).json()) as { notifications: NotificationInfo[] }).notifications;

  before(async () => {
    receiver = await WebhookReceiver.start();
    const channel = await gw.admin("/api/channels", { method: "POST", body: JSON.stringify({ platform: "webhook", name: "ops-hook", url: receiver.url }) });
    assert.equal(channel.status, 201, await channel.clone().text());
    receiver.secret = ((await channel.json()) as { secret: string }).secret;
    gw.gateway.delivery.start();
  });

  after(async () => {
    await receiver?.down();
  });

  test("a dead delivery resent with the page's button becomes pending and reaches the receiver; a viewer sees only their scope's", async () => {
    const search = await budgetRef("search-monthly", "search");
    const ads = await budgetRef("ads-monthly", "ads");
    receiver.script.push({ status: 500 }, { status: 503 });
    const doomed = thresholdAlert(search, 80, { title: `search-monthly passed 80 % for ${HOSTILE}` });
    await enqueue(gw.gateway, [doomed]);
    await waitFor("the search message dead after its two tries", async () => (await outbox("?status=dead")).length === 1);
    await enqueue(gw.gateway, [thresholdAlert(ads, 50)]);
    await waitFor("the ads message delivered", () => receiver.accepted.length === 1);

    const [dead] = await outbox("?status=dead");
    const page = await get("/alerts?status=dead");
    assert.equal(page.status, 200);
    assert.doesNotMatch(page.text, /<script/i);
    assert.ok(page.text.includes("search-monthly passed 80 % for &lt;script&gt;"), "the alert it carries, escaped");
    assert.ok(page.text.includes("HTTP 503 Service Unavailable"), "its last error");
    assert.match(page.text, /<td>ops-hook<br><span class="muted">webhook<\/span><\/td><td><span class="state-over">dead<\/span><\/td><td class="num">2<\/td>/);
    assert.match(page.text, new RegExp(`<form class="inline" method="post" action="/alerts/deliveries/${dead!.id}/resend">`));

    const viewer = await viewerCookie("vic@example.com", [{ team: "ads" }]);
    const theirs = await get("/alerts", viewer);
    assert.equal(theirs.status, 200);
    assert.ok(theirs.text.includes("ads-monthly passed 50 %"), "their budget's alert");
    assert.doesNotMatch(theirs.text, /search-monthly/, "nothing of a budget outside their scope");
    assert.doesNotMatch(theirs.text, /Resend/, "no resend for viewers");
    assert.equal((await post(`/alerts/deliveries/${dead!.id}/resend`, { _csrf: csrfOf(theirs.text) }, viewer)).status, 403);
    assert.equal((await post(`/alerts/deliveries/${dead!.id}/resend`, {})).status, 403, "no CSRF token");
    assert.equal((await outbox("?status=dead")).length, 1, "still dead");

    const resent = await post(`/alerts/deliveries/${dead!.id}/resend`, { _csrf: csrfOf(page.text) });
    assert.equal(resent.status, 303, resent.text);
    assert.equal(resent.location, `/alerts?resent=${dead!.id}`);
    await waitFor("the resent message delivered", () => receiver.accepted.some((r) => (r.body.alerts as { id: string }[]).some((a) => a.id === doomed.id)));
    await waitFor("settled as delivered", async () => (await outbox("?status=delivered")).some((n) => n.id === dead!.id));
    assert.match((await get(`/alerts?resent=${dead!.id}`)).text, new RegExp(`role="status">Message ${dead!.id} will be sent again`));

    const again = await post(`/alerts/deliveries/${dead!.id}/resend`, { _csrf: csrfOf(page.text) });
    assert.equal(again.status, 409);
    assert.match(again.text, /is delivered; only dead notifications are resent/);
  });

  test("a status outside the outbox's is answered with what it may be", async () => {
    const page = await get("/alerts?status=lost");
    assert.equal(page.status, 400);
    assert.match(page.text, /Status: one of pending, delivered, dead\./);
  });
});
