import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { createAdapter } from "../integrations/teams/bot.ts";
import { teamsDeliverer } from "../integrations/teams/deliver.ts";
import { integrations } from "../integrations/index.ts";
import { teamsIntegration } from "../integrations/teams/index.ts";
import { teamsSettings } from "../integrations/teams/settings.ts";
import { telegramIntegration } from "../integrations/telegram/index.ts";
import { webhook } from "../integrations/webhook/index.ts";
import type { ChannelInfo } from "../src/alerts/channels.ts";
import { loadConfig } from "../src/config.ts";
import { loadIntegrations } from "../src/integration.ts";
import { createLogger } from "../src/logger.ts";
import { type FakeConnector, startFakeConnector } from "./fakes/bot-connector.ts";
import { cardProblems } from "./helpers/adaptive-card.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { waitFor } from "./helpers/wait.ts";
import { sampleAlert } from "./helpers/sample-alert.ts";

/*
 * botbuilder's CloudAdapter and TeamsActivityHandler on the gateway's /api/messages, driven with
 * activities as Teams sends them, and talking to a fake Bot Framework connector that records every
 * call. Authentication is off (TEAMS_AUTH=off) here; teams-auth.test.ts runs it with real
 * credentials against fakes of the Bot Framework's and Entra's identity services.
 */

const TENANT = "7d4b7c7e-0000-4000-8000-000000000001";
const CHANNEL = "19:approvals0001@thread.tacv2";
const BOT = { id: "28:tollgate-bot", name: "Tollgate" };
interface Person { aad: string; name: string; chat: string }
const DANA: Person = { aad: "aad-dana", name: "Dana Ruiz", chat: "a:personal-dana" };
const OMAR: Person = { aad: "aad-omar", name: "Omar Approver", chat: "a:personal-omar" };
const RITA: Person = { aad: "aad-rita", name: "Rita Requester", chat: "a:personal-rita" };
const VIC: Person = { aad: "aad-vic", name: "Vic Viewer", chat: "a:personal-vic" };
const ADA: Person = { aad: "aad-ada", name: "Ada Admin", chat: "a:personal-ada" };
const BUDGET = "search-monthly";

let connector: FakeConnector;
let t: TestGateway;
let seq = 0;

function activity(who: Person, where: "channel" | "personal", extra: Record<string, unknown>): Record<string, unknown> {
  const conversation = where === "channel" ? { id: `${CHANNEL};messageid=${1000 + seq}`, conversationType: "channel", isGroup: true, tenantId: TENANT, name: "approvals" } : { id: who.chat, conversationType: "personal", tenantId: TENANT };
  return {
    type: "message",
    id: `act-${seq++}`,
    timestamp: new Date().toISOString(),
    channelId: "msteams",
    serviceUrl: connector.serviceUrl,
    from: { id: `29:${who.aad}`, name: who.name, aadObjectId: who.aad },
    recipient: BOT,
    conversation,
    channelData: { tenant: { id: TENANT }, ...(where === "channel" ? { channel: { id: CHANNEL, name: "approvals" }, team: { id: "19:team@thread.tacv2" } } : {}) },
    ...extra,
  };
}

async function post(body: Record<string, unknown>): Promise<{ status: number; body: any }> {
  const res = await fetch(`${t.base}/api/messages`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Says `text` to the bot and returns the card it answered with. */
async function say(who: Person, where: "channel" | "personal", text: string): Promise<any> {
  const msg = activity(who, where, where === "channel"
    ? { text: `<at>Tollgate</at> ${text}`, entities: [{ type: "mention", mentioned: BOT, text: "<at>Tollgate</at>" }] }
    : { text });
  const before = connector.calls.length;
  const res = await post(msg);
  assert.ok(res.status === 200 || res.status === 202, `status ${res.status}`);
  const replies = connector.calls.slice(before).filter((c) => c.method === "POST" && c.activityId === msg.id);
  assert.equal(replies.length, 1, `one reply to ${text}`);
  return cardOf(replies[0]!.body);
}

const cardOf = (activity: Record<string, unknown>) => (activity.attachments as { contentType: string; content: any }[])[0]!.content;

function texts(v: unknown): string {
  if (Array.isArray(v)) return v.map(texts).join("\n");
  if (!v || typeof v !== "object") return "";
  const o = v as Record<string, unknown>;
  return [typeof o.text === "string" ? o.text : "", typeof o.value === "string" ? o.value : "", ...Object.values(o).map(texts)].filter(Boolean).join("\n");
}

const invoke = (who: Person, verb: string, target: string, inputs: Record<string, string> = {}) =>
  post(activity(who, "channel", { type: "invoke", name: "adaptiveCard/action", value: { action: { type: "Action.Execute", verb, data: { verb, target, ...inputs } }, trigger: "manual" } }));

async function member(who: Person, role: string, scopes?: Record<string, string>[]) {
  const res = await t.admin("/api/members", { method: "PUT", body: JSON.stringify({ platform: "teams", user_id: who.aad, role, name: who.name, ...(scopes ? { scopes } : {}) }) });
  assert.ok(res.ok, await res.clone().text());
}

async function teamsChannels(): Promise<ChannelInfo[]> {
  const { channels } = (await (await t.admin("/api/channels")).json()) as { channels: ChannelInfo[] };
  return channels.filter((c) => c.platform === "teams");
}

const amount = async () => ((await (await t.admin(`/api/budgets/${BUDGET}`)).json()) as { amount_usd: string }).amount_usd;
/** Proactive messages to a conversation (botbuilder posts them as replies to its continuation activity, never to one the tests sent). */
const sentTo = (conversation: string) => connector.calls.filter((c) => c.method === "POST" && c.conversationId === conversation && !c.activityId?.startsWith("act-"));

async function requestRaise(to: string, reason: string): Promise<string> {
  const card = await say(RITA, "personal", `budget raise ${BUDGET} ${to} ${reason}`);
  const id = /apr\\_[0-9a-f]+/.exec(texts(card))?.[0]?.replace("\\", "");
  assert.ok(id, texts(card));
  return id;
}

before(async () => {
  connector = await startFakeConnector();
  t = await startTestGateway({ TEAMS_AUTH: "off", TOLLGATE_OUTBOX_RETRY_SCHEDULE: "5ms,10ms,20ms,20ms,20ms,20ms,20ms" }, { integrations: [webhook, teamsIntegration(), telegramIntegration()] });
  await Promise.all([member(DANA, "approver"), member(OMAR, "approver"), member(RITA, "requester"), member(VIC, "viewer", [{}]), member(ADA, "admin")]);
  const res = await t.admin("/api/budgets", { method: "POST", body: JSON.stringify({ name: BUDGET, scope: { team: "search" }, amount_usd: "500", period: "month" }) });
  assert.equal(res.status, 201, await res.clone().text());
});

after(async () => {
  await t?.close();
  await connector?.close();
});

describe("Teams", () => {
  test("TEAMS_AUTH=off is refused in production", async () => {
    assert.throws(() => teamsSettings(loadConfig({ TEAMS_AUTH: "off", NODE_ENV: "production" })), /TEAMS_AUTH: expected on in production/);
    assert.throws(() => teamsSettings(loadConfig({ MicrosoftAppId: randomUUID(), MicrosoftAppPassword: "x" })), /MicrosoftAppTenantId/);
    // What `serve` does first: the platforms this config turns on are found, and a bad Teams setting stops it there.
    await assert.rejects(loadIntegrations(integrations, loadConfig({ TEAMS_AUTH: "off", NODE_ENV: "production" })), /TEAMS_AUTH: expected on in production/);
  });

  test("spend draws its breakdown as Teams' own bar chart, with the text bars as its fallback, every label escaped", async () => {
    const key = await t.ingestKey();
    const injected = "**{{DATE(2026-01-01T00:00:00Z)}}** <b>x</b>";
    for (const [team, dollars] of [["search", 3], [injected, 1]] as const) {
      const res = await fetch(`${t.base}/v1/usage`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ id: `teams-chart-${team.length}`, timestamp: new Date().toISOString(), provider: "openai", model: "gpt-4o", input_tokens: dollars * 400_000, team }),
      });
      assert.equal(res.status, 200, await res.text());
    }
    await t.gateway.recorder.flush();
    const card = await say(VIC, "personal", "spend this-month");
    assert.deepEqual(cardProblems(card), [], "valid for Teams (its chart's shape) and for clients without charts (its fallback)");
    const chart = (card.body as { type: string; data?: { x: string; y: number }[]; fallback?: unknown }[]).find((e) => e.type === "Chart.HorizontalBar");
    assert.ok(chart, JSON.stringify(card.body));
    assert.deepEqual(chart.data!.map((d) => d.y), [3, 1]);
    assert.equal(chart.data![0]!.x, "search");
    assert.equal(chart.data![1]!.x, "**{\u200b{DATE(2026-01-01T00:00:00Z)}}** <b>x</b>", "no date function from a team's name");
    const fallback = texts(chart.fallback);
    assert.match(fallback, /\\\*\\\*\{\u200b\{DATE/, "the fallback's text escapes markdown");
    assert.match(fallback, /\$3\.00 \(75 %\)/);
    assert.match(texts(card), /team-search|search-monthly|Budget/, "the budgets in scope are listed");
  });

  test("/api/messages is the bot's, not behind the admin token; commands in a channel (mention stripped) and in a personal chat", async () => {
    const spend = await say(VIC, "channel", "spend this-week");
    assert.deepEqual(cardProblems(spend), []);
    assert.match(texts(spend), /AI spend/);
    const help = await say(VIC, "personal", "help");
    assert.match(texts(help), /budget list/);
    const wrong = await say(VIC, "personal", "spnd");
    assert.match(texts(wrong), /did you mean/);
    const refused = await say(VIC, "channel", "subscribe alerts");
    assert.match(texts(refused), /needs the admin role/);
  });

  test("a Telegram link code, a secret, is never posted to a channel: refused there, even for an admin", async () => {
    const refused = await say(ADA, "channel", "telegram-link --scope team:search");
    assert.match(texts(refused), /No link code made here/);
    assert.doesNotMatch(texts(refused), /\/link [A-Z0-9]/);
    // In the admin's personal chat the answer is theirs alone; Telegram is composed in but has no bot token, and says so.
    const personal = await say(ADA, "personal", "telegram-link --scope team:search");
    assert.match(texts(personal), /Telegram is not configured/);
  });

  test("a gateway without Telegram composed in knows no telegram-link", async () => {
    const alone = await startTestGateway({ TEAMS_AUTH: "off", TOLLGATE_JOBS: "off" }, { database: t.gateway.database, integrations: [teamsIntegration()] });
    try {
      const res = await alone.admin("/api/commands", { method: "POST", body: JSON.stringify({ text: "telegram-link --scope all" }) });
      const answer = (await res.json()) as { reply: { error: boolean }; text: string };
      assert.ok(answer.reply.error);
      assert.match(answer.text, /unknown command "telegram-link"/);
      assert.equal((await alone.admin("/api/telegram/links", { method: "POST", body: "{}" })).status, 404);
    } finally {
      await alone.close();
    }
  });

  test("install binds the conversation: the reference is stored as a channel, and the welcome card says what it gets", async () => {
    const before = connector.calls.length;
    const res = await post(activity(DANA, "channel", { type: "installationUpdate", action: "add" }));
    assert.ok(res.status < 300);
    for (const who of [RITA, DANA]) assert.ok((await post(activity(who, "personal", { type: "installationUpdate", action: "add" }))).status < 300);
    const channels = await teamsChannels();
    const bound = channels.find((c) => c.address.conversation_id === CHANNEL);
    assert.ok(bound, JSON.stringify(channels));
    assert.deepEqual(bound.address, { service_url: connector.serviceUrl, tenant_id: TENANT, conversation_id: CHANNEL });
    assert.deepEqual(bound.subscriptions.kinds.sort(), ["alerts", "approvals"]);
    assert.deepEqual(channels.find((c) => c.address.conversation_id === RITA.chat)?.subscriptions.kinds, ["alerts"]);
    assert.match(texts(cardOf(connector.calls[before]!.body)), /Tollgate is connected here/);
    // Installing again binds nothing new.
    await post(activity(DANA, "channel", { type: "installationUpdate", action: "add" }));
    assert.equal((await teamsChannels()).length, 3);
  });

  test("a raise asked in Teams reaches the approvals channel as a card; a non-approver gets it back refused; approval raises at once, audits, updates the card and tells the requester", async () => {
    const id = await requestRaise("800", "launch week");
    await waitFor("the request card in the channel", () => sentTo(CHANNEL).some((c) => texts(cardOf(c.body)).includes(id.replace("_", "\\_"))));
    const posted = sentTo(CHANNEL).find((c) => texts(cardOf(c.body)).includes(id.replace("_", "\\_")))!;
    const card = cardOf(posted.body);
    assert.deepEqual(cardProblems(card), []);
    assert.deepEqual(card.refresh.action.data, { verb: "refresh", target: id });
    assert.match(texts(card), /\$500\.00 → \$800\.00/);
    assert.match(texts(card), /launch week/);
    assert.match(texts(card), /Rita Requester/);

    const refused = await invoke(VIC, "approve", id);
    assert.equal(refused.status, 200);
    assert.equal(refused.body.statusCode, 200);
    assert.equal(refused.body.type, "application/vnd.microsoft.card.adaptive");
    assert.match(texts(refused.body.value), /Only approvers can decide raises/);
    assert.ok(refused.body.value.actions.length > 0, "still undecided");
    assert.equal(await amount(), "500");

    const approved = await invoke(DANA, "approve", id);
    assert.equal(approved.status, 200);
    assert.equal(approved.body.type, "application/vnd.microsoft.card.adaptive");
    assert.deepEqual(cardProblems(approved.body.value), []);
    assert.match(texts(approved.body.value), /\*\*Approved\*\* by Dana Ruiz, \{\{TIME\(.*\)\}\}, \$500\.00 → \$800\.00/);
    assert.equal(approved.body.value.refresh, undefined);
    assert.equal(await amount(), "800");
    const audit = (await (await t.admin(`/api/audit?entity=approval&entity_id=${id}`)).json()) as { entries?: { action: string; actor: string }[]; items?: { action: string; actor: string }[] };
    const entries = audit.entries ?? audit.items ?? [];
    assert.equal(entries.filter((e) => e.action === "approve").length, 1, JSON.stringify(audit));

    // Everyone sees it: the outbox updates the card in place, and the requester hears back where they asked.
    // The same words as the approver's own card: the decider's name is fixed when they decide.
    await waitFor("the card updated in place", () => connector.calls.some((c) => c.method === "PUT" && c.conversationId === CHANNEL && /\*\*Approved\*\* by Dana Ruiz/.test(texts(c.body))));
    await waitFor("the requester told", () => sentTo(RITA.chat).some((c) => /approved/.test(texts(cardOf(c.body)))));
    const refreshed = await invoke(VIC, "refresh", id);
    assert.match(texts(refreshed.body.value), /\*\*Approved\*\* by Dana Ruiz/);

    // A second decision changes nothing and shows who decided first.
    const again = await invoke(OMAR, "approve", id);
    assert.match(texts(again.body.value), /Nothing changed: already approved by Dana Ruiz at /);
    assert.match(texts(again.body.value), /\*\*Approved\*\* by Dana Ruiz/);
    const rejectLate = await invoke(OMAR, "reject", id, { reject_reason: "too late" });
    assert.match(texts(rejectLate.body.value), /Nothing changed/);
    assert.equal(await amount(), "800");
  });

  test("rejection with a reason from the card; an expired request says so; the Action.Submit fallback updates the card", async () => {
    const id = await requestRaise("900", "more tests");
    const rejected = await invoke(OMAR, "reject", id, { reject_reason: "not this month" });
    assert.match(texts(rejected.body.value), /\*\*Rejected\*\* by Omar Approver/);
    assert.match(texts(rejected.body.value), /not this month/);
    assert.equal(await amount(), "800");
    await waitFor("the requester told of the rejection", () => sentTo(RITA.chat).some((c) => /rejected/.test(texts(cardOf(c.body)))));

    const late = await requestRaise("1000", "expiring");
    await t.gateway.database.db.execute(sql`update approvals set expires_at = now() - interval '1 minute' where id = ${late}`);
    const expired = await invoke(DANA, "approve", late);
    assert.match(texts(expired.body.value), /expired/);
    assert.match(texts(expired.body.value), /\*\*Expired\*\* without a decision/);
    assert.equal(await amount(), "800");

    const third = await requestRaise("1100", "old client");
    const escaped = third.replace("_", "\\_");
    await waitFor("the third request's card", () => [...connector.activities.values()].some((a) => a.conversationId === CHANNEL && texts(a.activity).includes(escaped)));
    const cardId = [...connector.activities.entries()].find(([, a]) => a.conversationId === CHANNEL && texts(a.activity).includes(escaped))![0];
    const submit = activity(DANA, "channel", { value: { verb: "approve", target: third }, replyToId: cardId });
    const before = connector.calls.length;
    assert.ok((await post(submit)).status < 300);
    // The bot updates the card itself (with the decider's member name); the outbox's update of the same card may come first or after.
    const updates = connector.calls.slice(before).filter((c) => c.method === "PUT" && c.activityId === cardId);
    assert.ok(updates.some((u) => /\*\*Approved\*\* by Dana Ruiz/.test(texts(cardOf(u.body)))), "the card updated by the bot itself");
    assert.equal(await amount(), "1100");
  });

  test("delivery: 429 is retried after the connector's Retry-After, 5xx retried, 403 means the bot was removed (gone)", async () => {
    const config = teamsSettings(loadConfig({ TEAMS_AUTH: "off", TOLLGATE_DATA_DIR: "/tmp" }));
    const deliverer = teamsDeliverer(createAdapter(config, createLogger("silent")), config, createLogger("silent"));
    const target = { id: "c1", platform: "teams", name: "x", address: { service_url: connector.serviceUrl, tenant_id: TENANT, conversation_id: "19:other@thread.tacv2" }, secret: null, timezone: "UTC" };
    const alert = sampleAlert();
    const message = { id: 1, dedupeKey: "d", attempt: 1, payload: { alerts: [alert] }, createdAt: new Date() };
    const ctx = () => ({ now: new Date(), signal: AbortSignal.timeout(5000), publicUrl: undefined });
    // The connector's scripted failures go to whichever call comes next: let the gateway's own outbox finish first.
    await waitFor("the outbox to drain", async () => {
      const [row] = await t.gateway.database.rows<{ n: number }>(sql`select count(*)::int as n from notifications where status = 'pending'`);
      return row!.n === 0;
    });
    connector.failNext(429, 1, 7);
    assert.deepEqual(await deliverer.deliver(target, message, ctx()), { kind: "retry", message: "Teams answered 429", retryAfterMs: 7000 });
    connector.failNext(503);
    assert.equal((await deliverer.deliver(target, message, ctx())).kind, "retry");
    connector.failNext(403);
    assert.equal((await deliverer.deliver(target, message, ctx())).kind, "gone");
    const ok = await deliverer.deliver(target, message, ctx());
    assert.equal(ok.kind, "delivered");
  });

  test("through the outbox: a 403 (bot removed from the conversation) disables the channel and says so", async () => {
    const removed = "19:removed@thread.tacv2";
    const install = activity(DANA, "channel", { type: "installationUpdate", action: "add" });
    (install.conversation as { id: string }).id = removed;
    assert.ok((await post(install)).status < 300);
    connector.refuse(removed, 403);
    await requestRaise("1200", "gone");
    await waitFor("the channel disabled", async () => (await teamsChannels()).some((c) => !c.enabled));
    const disabled = (await teamsChannels()).filter((c) => !c.enabled);
    assert.deepEqual(disabled.map((c) => c.address.conversation_id), [removed]);
    assert.match(disabled[0]!.disabled_reason ?? "", /Teams answered 403/);
  });
  test("Teams moves a conversation to another service URL: it keeps its one channel, and proactive messages follow", async () => {
    const moved = await startFakeConnector();
    try {
      const channelsBefore = (await teamsChannels()).length;
      const msg = activity(VIC, "channel", { text: "<at>Tollgate</at> help", entities: [{ type: "mention", mentioned: BOT, text: "<at>Tollgate</at>" }], serviceUrl: moved.serviceUrl });
      assert.ok((await post(msg)).status < 300);
      assert.equal(moved.calls.filter((c) => c.activityId === msg.id).length, 1, "answered at the new service URL");
      const channels = await teamsChannels();
      assert.equal(channels.length, channelsBefore, "no second channel for the same conversation");
      assert.equal(channels.find((c) => c.address.conversation_id === CHANNEL)!.address.service_url, moved.serviceUrl);
      // The raise left waiting by the test before would answer for this one.
      const { approvals } = (await (await t.admin("/api/approvals?status=pending")).json()) as { approvals: { id: string }[] };
      for (const waiting of approvals) await t.admin(`/api/approvals/${waiting.id}/decision`, { method: "POST", body: JSON.stringify({ decision: "reject", by: "admin" }) });
      const id = await requestRaise("1300", "after the move");
      const escaped = id.replace("_", "\\_");
      await waitFor("the request card at the new service URL", () => moved.calls.some((c) => c.conversationId === CHANNEL && texts(c.body).includes(escaped)));
      assert.ok(!sentTo(CHANNEL).some((c) => texts(c.body).includes(escaped)), "nothing sent to the old one");
    } finally {
      await moved.close();
    }
  });
  test("a conversation subscribed to team:ads reads only team:ads: the search budget and spend are not shown", async () => {
    const sub = await say(ADA, "personal", "subscribe team:ads alerts");
    assert.match(texts(sub), /It reads only spend, budgets and alerts within team:ads/);
    const list = await say(ADA, "personal", "budget list");
    assert.doesNotMatch(texts(list), new RegExp(BUDGET));
    assert.match(texts(await say(ADA, "personal", `budget show ${BUDGET}`)), /outside what this conversation reads \(team:ads\)/);
    assert.match(texts(await say(ADA, "personal", "spend this-week team:search")), /reads only team:ads; team:search is outside it/);
    assert.match(texts(await say(ADA, "personal", "budget list")), /No budgets yet/);
    const opened = await say(ADA, "personal", "subscribe all alerts");
    assert.match(texts(opened), /It reads all spend, budgets and alerts/);
    assert.match(texts(await say(ADA, "personal", "budget list")), new RegExp(BUDGET));
  });

  test("a personal chat and a team the app was installed in read what the asker may: no member nothing, a viewer their scopes, a requester all", async () => {
    const SAM: Person = { aad: "aad-sam", name: "Sam Stranger", chat: "a:personal-sam" };
    const VAL: Person = { aad: "aad-val", name: "Val Viewer", chat: "a:personal-val" };
    await member(VAL, "viewer", [{ team: "ads" }]);
    // Anyone may install the app: Sam installs it in his chat, and the team's channel is installed too.
    for (const where of ["personal", "channel"] as const) assert.ok((await post(activity(SAM, where, { type: "installationUpdate", action: "add" }))).status < 300);
    const installed = (await teamsChannels()).filter((c) => c.address.conversation_id === SAM.chat || c.address.conversation_id === CHANNEL);
    assert.equal(installed.length, 2);
    for (const c of installed) assert.deepEqual([c.subscriptions.scopes, c.reads_all], [[], false], "installing opens no reads");
    const nothing = /You read no spend here: this conversation is linked to no scope, and you are not a member with one/;
    for (const where of ["personal", "channel"] as const) {
      assert.match(texts(await say(SAM, where, "spend this-month by user")), nothing, `${where}: no member, no spend`);
      assert.match(texts(await say(SAM, where, "budget list")), nothing);
      assert.match(texts(await say(SAM, where, `budget show ${BUDGET}`)), nothing);
      assert.match(texts(await say(SAM, where, "alerts")), nothing);
      assert.match(texts(await say(VAL, where, "spend this-month")), /AI spend this-month for team:ads/);
      assert.match(texts(await say(VAL, where, "spend this-month team:search")), /You read only team:ads; team:search is outside it/);
      assert.match(texts(await say(VAL, where, `budget show ${BUDGET}`)), /outside what you read \(team:ads\)/);
      assert.match(texts(await say(RITA, where, "budget list")), new RegExp(BUDGET), "a member above viewer reads all");
    }
  });
});
