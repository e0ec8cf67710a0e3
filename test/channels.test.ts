import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { KIND_SUBSCRIPTION } from "../src/alerts/alert.ts";
import type { ChannelInfo } from "../src/alerts/channels.ts";
import type { MuteInfo } from "../src/alerts/mutes.ts";
import { highestThresholdsOnly, muteKey, route, type Subscriber } from "../src/alerts/routing.ts";
import { WebhookReceiver } from "./fakes/webhook-receiver.ts";
import { enqueue, thresholdAlert } from "./helpers/alerts.ts";
import { runCli } from "./helpers/cli.ts";
import { ADMIN_TOKEN, type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { waitFor } from "./helpers/wait.ts";

const SEARCH = { id: "b-search", name: "search-monthly", scope: { team: "search" } };
const SEARCH_GPT = { id: "b-search-gpt", name: "search-gpt", scope: { team: "search", model: "gpt-4o" } };
const EVERYTHING = { id: "b-all", name: "company", scope: {} };

describe("routing", () => {
  const channel = (id: string, scopes: Subscriber["scopes"], kinds: Subscriber["kinds"] = ["alerts"]): Subscriber => ({ id, scopes, kinds });
  const ids = (routed: Map<string, { id: string }[]>) => Object.fromEntries([...routed].map(([c, alerts]) => [c, alerts.map((a) => a.id)]));

  test("a subscribed scope takes budgets within it; no scopes takes every budget", () => {
    const alerts = [thresholdAlert(SEARCH, 80, { id: "s" }), thresholdAlert(SEARCH_GPT, 80, { id: "g" }), thresholdAlert(EVERYTHING, 80, { id: "e" })];
    const routed = route(alerts, [channel("search", [{ team: "search" }]), channel("gpt", [{ model: "gpt-4o" }]), channel("all", []), channel("ads", [{ team: "ads" }])], new Set());
    assert.deepEqual(ids(routed), { search: ["s", "g"], gpt: ["g"], all: ["s", "g", "e"] });
  });

  test("kinds are matched by subscription; approval requests reach every approvals channel whatever its scopes", () => {
    const requested = thresholdAlert(SEARCH, 0, { id: "r", kind: "approval_requested", threshold: null });
    const digest = thresholdAlert(SEARCH, 0, { id: "d", kind: "digest_daily", threshold: null, budget: null });
    const crossed = thresholdAlert(SEARCH, 80, { id: "t" });
    const routed = route([requested, digest, crossed], [channel("approvers", [{ team: "ads" }], ["approvals"]), channel("daily", [{ team: "ads" }], ["daily"]), channel("both", [], ["alerts", "approvals"])], new Set());
    assert.deepEqual(ids(routed), { approvers: ["r"], daily: ["d"], both: ["r", "t"] });
    assert.equal(KIND_SUBSCRIPTION.approval_decided, "approvals");
  });

  test("a mute silences the budget's alerts in that channel only, and not its approval requests", () => {
    const crossed = thresholdAlert(SEARCH, 80, { id: "t" });
    const requested = thresholdAlert(SEARCH, 0, { id: "r", kind: "approval_requested", threshold: null });
    const routed = route([crossed, requested], [channel("a", [], ["alerts", "approvals"]), channel("b", [])], new Set([muteKey("a", SEARCH.id)]));
    assert.deepEqual(ids(routed), { a: ["r"], b: ["t"] });
  });

  test("several thresholds of one budget crossed at once: only the highest is sent", () => {
    const alerts = [50, 100, 80].map((t) => thresholdAlert(SEARCH, t, { id: `s${t}` }));
    const other = thresholdAlert(EVERYTHING, 50, { id: "e50" });
    const nextPeriod = thresholdAlert(SEARCH, 50, { id: "july50", period: { start: "2025-07-01T00:00:00.000Z", end: "2025-08-01T00:00:00.000Z" } });
    const forecast = thresholdAlert(SEARCH, 0, { id: "f", kind: "forecast", threshold: null });
    assert.deepEqual(highestThresholdsOnly([...alerts, other, nextPeriod, forecast]).map((a) => a.id), ["s100", "e50", "july50", "f"]);
  });

  test("channels named by the caller get the alerts whatever they subscribe to", () => {
    const decided = thresholdAlert(SEARCH, 0, { id: "d", kind: "approval_decided", threshold: null });
    const routed = route([decided], [channel("requester", [{ team: "ads" }], ["daily"]), channel("approvers", [], ["approvals"])], new Set(), ["requester"]);
    assert.deepEqual(ids(routed), { requester: ["d"] });
  });
});

describe("channels API", () => {
  let gw: TestGateway;
  let receiver: WebhookReceiver;
  before(async () => {
    gw = await startTestGateway({ TOLLGATE_OUTBOX_RETRY_SCHEDULE: "20ms,40ms,80ms,80ms,80ms,80ms,80ms", TOLLGATE_OUTBOUND_ALLOW: "127.0.0.1" });
    receiver = await WebhookReceiver.start();
  });
  afterEach(() => gw.gateway.database.db.execute(sql`delete from channels`));
  after(async () => {
    await receiver.down();
    await gw.close();
  });

  const post = (path: string, body: unknown) => gw.admin(path, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body) });
  const count = async (table: string) => Number((await gw.gateway.database.rows<{ n: number }>(sql`select count(*)::int as n from ${sql.identifier(table)}`))[0]!.n);
  const problem = async (res: Response) => {
    assert.match(res.headers.get("content-type") ?? "", /^application\/problem\+json/);
    return { status: res.status, ...((await res.json()) as { detail: string; errors?: { path: string; message: string }[] }) };
  };
  const webhook = { platform: "webhook", name: "ops", url: "https://hooks.example.com/tollgate" };

  test("creating a webhook shows its generated secret once; reading never shows it", async () => {
    const res = await post("/api/channels", { ...webhook, subscriptions: { scopes: [{ team: "search" }], kinds: ["alerts", "approvals", "alerts"] }, timezone: "Europe/Berlin" });
    assert.equal(res.status, 201);
    const created = (await res.json()) as ChannelInfo & { secret: string };
    assert.match(created.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.deepEqual(created.subscriptions, { scopes: [{ team: "search" }], kinds: ["alerts", "approvals"] });
    assert.deepEqual(created.address, { url: webhook.url });
    assert.equal(created.timezone, "Europe/Berlin");
    assert.equal(created.enabled, true);

    const listed = await (await gw.admin("/api/channels")).text();
    const one = await (await gw.admin(`/api/channels/${created.id}`)).text();
    for (const text of [listed, one]) {
      assert.ok(!text.includes(created.secret.slice(6)), "the secret is never shown again");
      assert.ok(!text.includes("secret"), "not even its field");
    }
    const [stored] = await gw.gateway.database.rows<{ secret_encrypted: string }>(sql`select secret_encrypted from channels where id = ${created.id}`);
    assert.ok(stored!.secret_encrypted.startsWith("v2."), "sealed with the master key");
    assert.equal((await gw.gateway.channels.target(created.id))!.secret, created.secret);

    const given = "whsec_" + Buffer.alloc(24, 1).toString("base64");
    const withSecret = (await (await post("/api/channels", { ...webhook, secret: given })).json()) as ChannelInfo & { secret: string };
    assert.equal(withSecret.secret, given);
    assert.deepEqual(withSecret.subscriptions, { scopes: [], kinds: ["alerts"] }, "defaults: every scope, alerts");
  });

  test("bad input is refused with the field and what was expected, and nothing is written", async () => {
    const [channelsBefore, auditBefore] = [await count("channels"), await count("audit_log")];
    const cases: [unknown, string, string | RegExp][] = [
      [{ ...webhook, platform: "slack" }, "platform", "webhook (chat channels are added from the chat itself)"],
      [{ ...webhook, url: "ftp://example.com" }, "url", "an http:// or https:// URL"],
      [{ platform: "webhook", name: "ops" }, "url", "an http:// or https:// URL"],
      [{ ...webhook, name: "" }, "name", "Too small: expected string to have >=1 characters"],
      [{ ...webhook, secret: "hunter2" }, "secret", "whsec_ followed by 24 to 64 bytes in base64, as Standard Webhooks secrets are"],
      [{ ...webhook, secret: "whsec_c2hvcnQ=" }, "secret", "whsec_ followed by 24 to 64 bytes in base64, as Standard Webhooks secrets are"],
      [{ ...webhook, subscriptions: { kinds: ["alerts", "pages"] } }, "subscriptions.kinds[1]", "one of alerts, approvals, daily, weekly"],
      [{ ...webhook, subscriptions: { kinds: [] } }, "subscriptions.kinds", "at least one of alerts, approvals, daily, weekly"],
      [{ ...webhook, subscriptions: { scopes: [{ squad: "x" }] } }, "subscriptions.scopes[0].squad", "not a dimension; one of team, project, feature, user, model, provider, key"],
      [{ ...webhook, subscriptions: { scopes: [], digest: true } }, "subscriptions", /digest/],
      [{ ...webhook, timezone: "Mars/Olympus" }, "timezone", "an IANA time zone such as UTC or Europe/Berlin"],
      [{ ...webhook, colour: "red" }, "", /colour/],
    ];
    for (const [body, path, message] of cases) {
      const res = await problem(await post("/api/channels", body));
      assert.equal(res.status, 400, JSON.stringify(body));
      const error = res.errors?.find((e) => e.path === path);
      assert.ok(error, `${JSON.stringify(body)}: ${JSON.stringify(res.errors)}`);
      if (typeof message === "string") assert.equal(error.message, message);
      else assert.match(error.message, message);
    }
    const notJson = await problem(await post("/api/channels", "{"));
    assert.equal(notJson.status, 400);
    assert.equal(notJson.detail, "the body is not valid JSON");
    assert.equal(await count("channels"), channelsBefore);
    assert.equal(await count("audit_log"), auditBefore);
  });

  test("a channel is changed and removed, each change audited without its secret", async () => {
    const created = (await (await post("/api/channels", { ...webhook, timezone: "Asia/Tokyo" })).json()) as ChannelInfo & { secret: string };
    const patch = (body: unknown, id = created.id) => gw.admin(`/api/channels/${id}`, { method: "PATCH", body: JSON.stringify(body) });

    const renamed = await patch({ name: "ops-2", subscriptions: { kinds: ["daily"] }, secret: "whsec_" + Buffer.alloc(32, 2).toString("base64") });
    assert.equal(renamed.status, 200);
    const after = (await renamed.json()) as ChannelInfo;
    assert.equal(after.name, "ops-2");
    assert.deepEqual(after.subscriptions, { scopes: [], kinds: ["daily"] }, "scopes left alone");
    assert.equal(after.timezone, "Asia/Tokyo", "the zone left alone");
    assert.equal((await gw.gateway.channels.target(created.id))!.secret, "whsec_" + Buffer.alloc(32, 2).toString("base64"));

    const disabled = (await (await patch({ enabled: false })).json()) as ChannelInfo;
    assert.equal(disabled.enabled, false);
    assert.equal(disabled.disabled_reason, "disabled by admin");

    const empty = await problem(await patch({}));
    assert.equal(empty.status, 400);
    assert.deepEqual(empty.errors, [{ path: "", message: "give at least one of name, url, secret, subscriptions, timezone, enabled" }]);
    const badZone = await problem(await patch({ timezone: "Nowhere" }));
    assert.deepEqual(badZone.errors, [{ path: "timezone", message: "an IANA time zone such as UTC or Europe/Berlin" }]);
    const missing = await problem(await patch({ name: "x" }, "no-such-channel"));
    assert.equal(missing.status, 404);
    assert.equal(missing.detail, "no channel with id no-such-channel");

    const removed = await gw.admin(`/api/channels/${created.id}`, { method: "DELETE" });
    assert.equal(removed.status, 200);
    assert.equal((await problem(await gw.admin(`/api/channels/${created.id}`, { method: "DELETE" }))).status, 404);
    assert.equal((await problem(await gw.admin(`/api/channels/${created.id}`))).status, 404);

    const trail = await gw.gateway.database.rows<{ action: string; before: unknown; after: unknown }>(
      sql`select action, before, after from audit_log where entity = 'channel' and entity_id = ${created.id} order by id`,
    );
    assert.deepEqual(trail.map((t) => t.action), ["create", "update", "update", "delete"]);
    assert.equal((trail[1]!.after as { secret_replaced: boolean }).secret_replaced, true);
    assert.ok(!JSON.stringify(trail).includes(created.secret.slice(6)), "no secret in the audit log");
  });

  test("a mute silences a budget in one channel until undone; it is listed and audited", async () => {
    const budget = await gw.gateway.budgets.create(
      { name: "search-monthly", scope: { team: "search" }, amount_usd: 500_000_000_000_000n, period: "month", timezone: "UTC", thresholds: [50, 80, 100], mode: "soft", paused: false },
      "test",
    );
    assert.ok(budget.ok);
    const ref = { id: budget.budget.id, name: "search-monthly", scope: { team: "search" } };
    const secret = "whsec_" + Buffer.alloc(32, 3).toString("base64");
    receiver.secret = secret;
    const quiet = (await (await post("/api/channels", { ...webhook, name: "quiet", url: receiver.url, secret })).json()) as ChannelInfo;
    const loud = (await (await post("/api/channels", { ...webhook, name: "loud", url: receiver.url, secret })).json()) as ChannelInfo;

    const before = Date.now();
    const muted = await post(`/api/channels/${quiet.id}/mutes`, { budget: "search-monthly", duration: "24h" });
    assert.equal(muted.status, 201);
    const mute = (await muted.json()) as MuteInfo;
    assert.equal(mute.budget.id, ref.id);
    const until = Date.parse(mute.until);
    assert.ok(until >= before + 86_400_000 && until <= Date.now() + 86_400_000);

    const listed = (await (await gw.admin(`/api/channels/${quiet.id}/mutes`)).json()) as { mutes: MuteInfo[] };
    assert.deepEqual(listed.mutes.map((m) => m.budget.name), ["search-monthly"]);
    assert.deepEqual(((await (await gw.admin("/api/mutes")).json()) as { mutes: MuteInfo[] }).mutes.map((m) => m.channel_id), [quiet.id]);

    const first = thresholdAlert(ref, 80);
    await enqueue(gw.gateway, [first]);
    await waitFor("the loud channel's message", () => receiver.accepted.length === 1);
    assert.ok(receiver.accepted[0]!.id.startsWith(`${loud.id}:`));
    assert.equal((await gw.gateway.notifier.list({ limit: 10 })).length, 1, "nothing was queued for the muted channel");

    const unmuted = await gw.admin(`/api/channels/${quiet.id}/mutes/search-monthly`, { method: "DELETE" });
    assert.equal(unmuted.status, 200);
    await enqueue(gw.gateway, [thresholdAlert(ref, 100)]);
    await waitFor("both channels' messages", () => receiver.accepted.length === 3);
    assert.deepEqual(receiver.accepted.slice(1).map((r) => r.id.split(":")[0]).sort(), [quiet.id, loud.id].sort());

    const again = await problem(await gw.admin(`/api/channels/${quiet.id}/mutes/search-monthly`, { method: "DELETE" }));
    assert.equal(again.status, 404);
    assert.equal(again.detail, `budget search-monthly is not muted in channel ${quiet.id}`);
    const trail = await gw.gateway.database.rows<{ action: string }>(sql`select action from audit_log where entity = 'mute' order by id`);
    assert.deepEqual(trail.map((t) => t.action), ["mute", "unmute"]);
  });

  test("bad mutes are refused precisely and write nothing", async () => {
    const channel = (await (await post("/api/channels", webhook)).json()) as ChannelInfo;
    const mutes = `/api/channels/${channel.id}/mutes`;
    const auditBefore = await count("audit_log");
    const cases: [unknown, string, string][] = [
      [{ budget: "search-monthly" }, "until", "give either until or duration, such as \"duration\": \"24h\""],
      [{ budget: "search-monthly", duration: "24h", until: "2999-01-01T00:00:00Z" }, "until", "give either until or duration, such as \"duration\": \"24h\""],
      [{ budget: "search-monthly", duration: "24x" }, "duration", "\"24x\" is not a duration; expected a duration such as 30m, 24h, 2d or 1w (at most 90 days)"],
      [{ budget: "search-monthly", duration: "24h please" }, "duration", "unexpected \"please\" after the duration"],
      [{ budget: "search-monthly", until: "2001-01-01T00:00:00Z" }, "until", "a time in the future"],
      [{ budget: "search-monthly", until: "tomorrow" }, "until", "an ISO 8601 time with its offset, such as 2025-07-01T09:00:00Z"],
      [{ duration: "1h" }, "budget", "Invalid input: expected string, received undefined"],
    ];
    for (const [body, path, message] of cases) {
      const res = await problem(await post(mutes, body));
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.deepEqual(res.errors, [{ path, message }], JSON.stringify(body));
    }
    const noBudget = await problem(await post(mutes, { budget: "nope", duration: "1h" }));
    assert.equal(noBudget.status, 404);
    assert.equal(noBudget.detail, "no budget nope");
    const noChannel = await problem(await post("/api/channels/nope/mutes", { budget: "search-monthly", duration: "1h" }));
    assert.equal(noChannel.status, 404);
    assert.equal(noChannel.detail, "no channel with id nope");
    assert.equal((await problem(await gw.admin("/api/channels/nope/mutes"))).status, 404);
    assert.equal(await count("mutes"), 0);
    assert.equal(await count("audit_log"), auditBefore);
  });

  test("the CLI creates and lists channels, mutes and unmutes, and resends from the outbox", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tollgate-cli-"));
    const cli = (...args: string[]) => runCli(dir, args, { TOLLGATE_URL: gw.base, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN });
    try {
      const created = await cli("channels", "create", "finance", "https://hooks.example.com/f", "--scope", "team:search,model:gpt-4o", "--kinds", "alerts,daily", "--tz", "Europe/Berlin");
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, /signing secret: whsec_\S+\nThis is the only time the secret is shown/);
      assert.match(created.stdout, /finance\s+webhook\s+https:\/\/hooks\.example\.com\/f\s+team:search model:gpt-4o\s+alerts,daily\s+Europe\/Berlin\s+true/);
      const [channel] = await gw.gateway.channels.list();

      const listed = await cli("channels", "list");
      assert.equal(listed.code, 0, listed.stderr);
      assert.ok(listed.stdout.includes(channel!.id) && !listed.stdout.includes("whsec_"));

      const muted = await cli("alerts", "mute", "search-monthly", "2d", "--channel", channel!.id);
      assert.equal(muted.code, 0, muted.stderr);
      assert.match(muted.stdout, new RegExp(`^search-monthly muted in channel ${channel!.id} until \\d{4}-`));
      assert.equal((await cli("alerts", "unmute", "search-monthly", "--channel", channel!.id)).code, 0);

      const resend = await cli("outbox", "resend", "987654");
      assert.equal(resend.code, 2);
      assert.match(resend.stderr, /answered 404: no notification with id 987654/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
