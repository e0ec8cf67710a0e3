import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { slackIntegration } from "../integrations/slack/index.ts";
import { telegramIntegration } from "../integrations/telegram/index.ts";
import { webhook } from "../integrations/webhook/index.ts";
import type { ChannelInfo } from "../src/alerts/channels.ts";
import { type FakeSlack, type Person, buttonClick, sendAsSlack, slashCommand, startFakeSlack, viewSubmission } from "./fakes/slack-api.ts";
import { FAKE_BOT_USERNAME, postUpdate, startFakeTelegram } from "./fakes/telegram-api.ts";
import { texts } from "./helpers/block-texts.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { waitFor } from "./helpers/wait.ts";

/*
 * The real @slack/bolt app mounted on the gateway, driven as Slack drives it (signed slash
 * commands, button clicks, form submissions) and talking to a fake Slack Web API that records
 * every call. Alerts go out through the outbox to the same fake.
 */

const SIGNING_SECRET = randomBytes(16).toString("hex");
const ADMIN: Person = { userId: "U0ADMIN", userName: "ada" };
const APPROVER: Person = { userId: "U0APPROVER", userName: "ana" };
const REQUESTER: Person = { userId: "U0REQUESTER", userName: "rob" };
const VIEWER: Person = { userId: "U0VIEWER", userName: "vic" };
const ALERTS_CHANNEL = "C0ALERTS";
const APPROVALS_CHANNEL = "C0APPROVALS";
const INJECTED = "<!channel> <https://evil.example|click>";

let slack: FakeSlack;
let t: TestGateway;
let seq = 0;

const env = () => ({ SLACK_BOT_TOKEN: slack.botToken, SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_API_URL: slack.apiUrl });

async function command(name: string, text: string, who: Person, channel = "C0GENERAL", opts: { retryNum?: number } = {}, base = t.base, responseId?: string) {
  return sendAsSlack(`${base}/slack/events`, slashCommand(slack, name, text, who, channel, responseId), { signingSecret: SIGNING_SECRET, ...opts });
}

type Answer = { response_type: string; text: string; blocks: Record<string, unknown>[] };

/**
 * What a slash command was answered with (by the gateway at `base`, the shared one unless given):
 * its acknowledgement, or, when that was empty (an answer with charts always follows up), the
 * last response posted to its response_url.
 */
async function ask(name: string, text: string, who: Person = VIEWER, channel?: string, base?: string) {
  const id = `ask-${seq++}`;
  const res = await command(name, text, who, channel, {}, base, id);
  assert.equal(res.status, 200, res.body);
  if (res.body !== "") return res.json() as Answer;
  await waitFor(`the answer to ${name} ${text}`, () => slack.responses.some((r) => r.id === id));
  return slack.responses.filter((r) => r.id === id).at(-1)!.body as Answer;
}

/** gpt-4o at $2.50 per million input tokens: `dollars` worth of input. */
async function spend(key: string, dollars: number, attribution: Record<string, string>): Promise<void> {
  const res = await fetch(`${t.base}/v1/usage`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ id: `s${seq++}`, timestamp: new Date().toISOString(), provider: "openai", model: "gpt-4o", input_tokens: dollars * 400_000, ...attribution }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  await t.gateway.recorder.flush();
}

/** The outbox rows of Slack channels, oldest first. */
async function slackRows() {
  return t.gateway.database.rows<{ attempts: number; status: string }>(
    sql`select n.attempts, n.status from notifications n join channels c on c.id = n.channel_id where c.platform = 'slack' order by n.id`,
  );
}

async function member(who: Person, role: string, scopes?: Record<string, string>[]): Promise<void> {
  const res = await t.admin("/api/members", { method: "PUT", body: JSON.stringify({ platform: "slack", user_id: who.userId, role, ...(scopes ? { scopes } : {}) }) });
  assert.ok(res.ok, await res.clone().text());
}

async function slackChannel(channelId: string): Promise<ChannelInfo | undefined> {
  const { channels } = (await (await t.admin("/api/channels")).json()) as { channels: ChannelInfo[] };
  return channels.find((c) => c.platform === "slack" && c.address.channel_id === channelId);
}

async function budgetAmount(name: string): Promise<string> {
  return ((await (await t.admin(`/api/budgets/${name}`)).json()) as { amount_usd: string }).amount_usd;
}

const posted = (channel: string) => slack.callsOf("chat.postMessage").filter((c) => c.args.channel === channel);
const buttonsOf = (blocks: unknown) =>
  (blocks as { type: string; elements?: { type: string; action_id: string; value: string }[] }[]).flatMap((b) => (b.type === "actions" ? b.elements! : []));

before(async () => {
  slack = await startFakeSlack();
  t = await startTestGateway(env());
  // VIEWER reads all spend where a conversation has no scope of its own (a viewer reads their member scopes).
  await Promise.all([member(ADMIN, "admin"), member(APPROVER, "approver"), member(REQUESTER, "requester"), member(VIEWER, "viewer", [{}])]);
  const key = await t.ingestKey();
  await spend(key, 3, { team: "search", project: "web", feature: "autocomplete" });
  await spend(key, 2, { team: "search", project: "web", feature: INJECTED });
  await spend(key, 1, { team: "ads", project: "bidder", feature: "ranking" });
});

after(async () => {
  await t?.close();
  await slack?.close();
});

describe("Slack requests are Slack's", () => {
  test("a bad signature, and a timestamp more than five minutes old or ahead, get 401; within five minutes is fine", async () => {
    const now = Math.floor(Date.now() / 1000);
    const form = slashCommand(slack, "/spend", "this-week", VIEWER);
    const url = `${t.base}/slack/events`;
    assert.equal((await sendAsSlack(url, form, { signingSecret: SIGNING_SECRET, signature: `v0=${"0".repeat(64)}` })).status, 401);
    assert.equal((await sendAsSlack(url, form, { signingSecret: "another-secret-0123456789" })).status, 401);
    assert.equal((await sendAsSlack(url, form, { signingSecret: SIGNING_SECRET, timestamp: now - 330 })).status, 401);
    assert.equal((await sendAsSlack(url, form, { signingSecret: SIGNING_SECRET, timestamp: now + 330 })).status, 401);
    assert.equal((await sendAsSlack(url, form, { signingSecret: SIGNING_SECRET, timestamp: now - 270 })).status, 200);
    assert.equal((await sendAsSlack(url, form, { signingSecret: SIGNING_SECRET, timestamp: now + 270 })).status, 200);
  });

  test("the signing secret is required with the bot token", async () => {
    await assert.rejects(startTestGateway({ SLACK_BOT_TOKEN: slack.botToken }), /SLACK_SIGNING_SECRET: expected the app's signing secret/);
  });

  test("without Slack settings there is no Slack endpoint", async () => {
    const plain = await startTestGateway({}, { database: t.gateway.database });
    try {
      assert.equal((await fetch(`${plain.base}/slack/events`, { method: "POST" })).status, 404);
    } finally {
      await plain.close();
    }
  });
});

describe("slash commands", () => {
  const PERIODS = ["today", "yesterday", "this-week", "last-week", "this-month", "last-month", "this-quarter", "last-quarter", "this-year", "last-7d", "last-30d", "2026-10", "2026-10-01..2026-10-15", "week", "mtd", "7d"];

  test("/spend answers for every period, privately, in Block Kit", async () => {
    for (const period of PERIODS) {
      const answer = await ask("/spend", period);
      assert.equal(answer.response_type, "ephemeral", period);
      assert.equal(answer.blocks[0]!.type, "header", period);
      assert.match(texts(answer.blocks), /^AI spend /, period);
      assert.match(answer.text, /over \d+ requests/, period);
    }
    const month = await ask("/spend", "this-month");
    assert.match(texts(month.blocks), /\$6\.00 over 3 requests/);
  });

  test("`share` answers in the channel; `by` draws bars; filters slice", async () => {
    const shared = await ask("/spend", "this-month by team share");
    assert.equal(shared.response_type, "in_channel");
    const text = texts(shared.blocks);
    assert.match(text, /\*By team\*\nsearch: \$5\.00 \(83 %\)\nads: \$1\.00 \(17 %\)/);
    // The bars are Slack's own chart, within its limits (the fake refuses any message beyond them).
    const chart = shared.blocks.find((b) => b.type === "data_visualization") as { title: string; chart: { type: string; axis_config: { categories: string[] }; series: { data: { value: number }[] }[] } };
    assert.equal(chart.chart.type, "bar");
    assert.deepEqual(chart.chart.axis_config.categories, ["search", "ads"]);
    assert.deepEqual(chart.chart.series[0]!.data.map((d) => d.value), [5, 1]);
    const sliced = await ask("/spend", "last month by model team:search");
    assert.match(texts(sliced.blocks), /AI spend last-month for team:search/);
    // Slack sends & < > as entities; the filter is what was typed, and the header shows it as typed.
    const entity = await ask("/spend", "this-month team:R&amp;D");
    assert.equal((entity.blocks[0]!.text as { text: string }).text, "AI spend this-month for team:R&D");
  });

  test("a feature named <!channel> arrives escaped, never as a ping or a link", async () => {
    const answer = await ask("/spend", "this-month by feature");
    const raw = JSON.stringify(answer);
    assert.ok(!raw.includes("<!channel>"), raw);
    // In the chart, whose labels are plain text, the feature is there with look-alike brackets.
    assert.match(raw, /"label":"‹!channel› ‹https:\/…"/);
    assert.ok(!raw.includes("<https://evil"), raw);
    assert.match(texts(answer.blocks), /&lt;!channel&gt; &lt;https:\/\/evil\.example\|click&gt;/);
    for (const block of answer.blocks) if (block.type === "section" && block.text) assert.equal((block.text as { verbatim?: boolean }).verbatim, true);
  });

  test("/budget, /alerts and /tollgate answer; unknown words and typos get the helpful error", async () => {
    assert.match(texts((await ask("/budget", "list")).blocks), /No budgets yet|budget/);
    assert.match(texts((await ask("/alerts", "")).blocks), /alerts/i);
    const helpText = texts((await ask("/tollgate", "help")).blocks);
    assert.match(helpText, /spend \[period\]/);
    assert.match(texts((await ask("/tollgate", "")).blocks), /Tollgate: AI spend and budgets/);

    const typo = await ask("/spend", "last-mnth");
    assert.equal(typo.response_type, "ephemeral");
    assert.match(texts(typo.blocks), /did you mean `last-month`\?/);
    const unknown = await ask("/tollgate", "spned this-week");
    assert.match(texts(unknown.blocks), /unknown command "spned"; did you mean `spend`\?/);
    const shareTypo = await ask("/spend", "this-week share by tema");
    assert.equal(shareTypo.response_type, "ephemeral", "a refusal is never shared");
    assert.match(texts(shareTypo.blocks), /"tema" is not a dimension; did you mean `team`\?/);
    const budgetTypo = await ask("/budget", "rasie search 800");
    assert.match(texts(budgetTypo.blocks), /did you mean `budget raise`\?/);
  });

  test("roles: viewers look, only admins change budgets or subscribe", async () => {
    const refused = await ask("/budget", "set team:search $10 monthly", VIEWER);
    assert.match(texts(refused.blocks), /budget set needs the admin role; you are a viewer/);
    const alsoRefused = await ask("/tollgate", "subscribe team:search alerts", APPROVER, ALERTS_CHANNEL);
    assert.match(texts(alsoRefused.blocks), /subscribe needs the admin role; you are a approver/);
    assert.equal(await slackChannel(ALERTS_CHANNEL), undefined);

    const set = await ask("/budget", "set team:search,project:web $4 monthly", ADMIN);
    assert.match(texts(set.blocks), /Budget team-search-project-web-monthly/);
    assert.equal(await budgetAmount("team-search-project-web-monthly"), "4");
  });

  test("/tollgate subscribe binds the channel to a scope and kinds, stored as a Slack channel", async () => {
    const sub = await ask("/tollgate", "subscribe team:search alerts", ADMIN, ALERTS_CHANNEL);
    assert.equal(sub.response_type, "in_channel");
    assert.match(texts(sub.blocks), /This conversation now gets alerts for team:search/);
    await ask("/tollgate", "subscribe team:search alerts", ADMIN, ALERTS_CHANNEL);
    await ask("/tollgate", "subscribe approvals", ADMIN, APPROVALS_CHANNEL);
    await ask("/tollgate", "subscribe weekly", ADMIN, APPROVALS_CHANNEL);
    const alerts = await slackChannel(ALERTS_CHANNEL);
    assert.deepEqual(alerts?.address, { team_id: "T0TOLLGATE", channel_id: ALERTS_CHANNEL });
    assert.deepEqual(alerts?.subscriptions, { scopes: [{ team: "search" }], kinds: ["alerts"] });
    assert.equal(alerts?.name, "#general");
    assert.deepEqual((await slackChannel(APPROVALS_CHANNEL))?.subscriptions, { scopes: [], kinds: ["approvals", "weekly"] });
    const slackChannels = ((await (await t.admin("/api/channels")).json()) as { channels: ChannelInfo[] }).channels.filter((c) => c.platform === "slack");
    assert.equal(slackChannels.length, 2, "subscribing twice binds one channel");
  });

  test("a channel subscribed to team:search reads only team:search; the confirmation says so", async () => {
    const sub = await ask("/tollgate", "subscribe team:search alerts", ADMIN, ALERTS_CHANNEL);
    assert.match(texts(sub.blocks), /It reads only spend, budgets and alerts within team:search/);
    const byTeam = await ask("/spend", "this-month by team", VIEWER, ALERTS_CHANNEL);
    assert.match(texts(byTeam.blocks), /AI spend this-month for team:search/);
    assert.match(texts(byTeam.blocks), /\$5\.00 over 2 requests/);
    assert.doesNotMatch(texts(byTeam.blocks), /ads/);
    const ads = await ask("/spend", "this-month team:ads by user", VIEWER, ALERTS_CHANNEL);
    assert.match(texts(ads.blocks), /reads only team:search; team:ads is outside it/);
    const unbound = await ask("/spend", "this-month by team", VIEWER, APPROVALS_CHANNEL);
    assert.match(texts(unbound.blocks), /\$6\.00 over 3 requests/, "a channel subscribed with no scope reads what the asker may: all, for this viewer");
  });

  test("where a conversation has no scope of its own (a DM, a channel subscribed with none), each asker reads what their member entry allows", async () => {
    const STRANGER: Person = { userId: "U0STRANGER", userName: "sam" };
    const ADS_VIEWER: Person = { userId: "U0ADSVIEWER", userName: "val" };
    await member(ADS_VIEWER, "viewer", [{ team: "ads" }]);
    const nothing = /You read no spend here: this conversation is linked to no scope, and you are not a member with one/;
    for (const [where, channel] of [["a DM", "D0STRANGER"], ["a channel subscribed with no scope", APPROVALS_CHANNEL]] as const) {
      assert.match(texts((await ask("/spend", "this-month by user", STRANGER, channel)).blocks), nothing, `${where}: no member, no spend`);
      assert.match(texts((await ask("/budget", "list", STRANGER, channel)).blocks), nothing, `${where}: nor budgets`);
      assert.match(texts((await ask("/alerts", "", STRANGER, channel)).blocks), nothing, `${where}: nor alerts`);
      const own = await ask("/spend", "this-month by team", ADS_VIEWER, channel);
      assert.match(texts(own.blocks), /AI spend this-month for team:ads/);
      assert.match(texts(own.blocks), /\$1\.00 over 1 request/);
      assert.doesNotMatch(texts(own.blocks), /search/);
      assert.match(texts((await ask("/spend", "this-month team:search", ADS_VIEWER, channel)).blocks), /You read only team:ads; team:search is outside it/);
      assert.match(texts((await ask("/spend", "this-month", REQUESTER, "D0REQUESTER")).blocks), /\$6\.00 over 3 requests/, "a member above viewer reads all spend");
    }
    // Opened to all spend by an admin, the channel reads everything for everyone in it.
    const opened = await ask("/tollgate", "subscribe all approvals", ADMIN, APPROVALS_CHANNEL);
    assert.match(texts(opened.blocks), /It reads all spend, budgets and alerts \(opened to all of it\)/);
    assert.equal((await slackChannel(APPROVALS_CHANNEL))?.reads_all, true);
    assert.match(texts((await ask("/spend", "this-month", STRANGER, APPROVALS_CHANNEL)).blocks), /\$6\.00 over 3 requests/);
    assert.match(texts((await ask("/spend", "this-month", STRANGER, "D0STRANGER")).blocks), nothing, "their DM still reads nothing");
  });
});

describe("the default /spend answer", () => {
  type Cell = { type: string; text: string };
  const tableOf = (a: Answer) => (a.blocks.find((b) => b.type === "data_table") as { rows: Cell[][] } | undefined)?.rows.map((r) => r.map((c) => c.text));

  test("names the top teams with their share and the budgets in scope, drawn with Slack's chart and table blocks", async () => {
    await ask("/budget", "set team:ads $4 monthly", ADMIN);
    const answer = await ask("/spend", "this-month");
    assert.equal(answer.response_type, "ephemeral");
    assert.match(answer.text, /AI spend this-month: \$6\.00 over 3 requests/, "the notification text says it without the blocks");
    assert.match(texts(answer.blocks), /\*By team\*\nsearch: \$5\.00 \(83 %\)\nads: \$1\.00 \(17 %\)/);
    const chart = answer.blocks.find((b) => b.type === "data_visualization") as { chart: { axis_config: { categories: string[] } } };
    assert.deepEqual(chart.chart.axis_config.categories, ["search", "ads"]);
    const rows = tableOf(answer);
    assert.deepEqual(rows?.[0], ["Budget", "Spent", "Amount", "%", "State", "Runs out"]);
    const ads = rows?.find((r) => r[0] === "team-ads-monthly");
    assert.deepEqual(ads?.slice(0, 5), ["team-ads-monthly", "$1.00", "$4.00", "25 %", "ok"]);
    assert.doesNotMatch(texts(answer.blocks), /without a known price/, "no unpriced warning without unpriced usage");
    assert.equal(slack.refusedResponses.length, 0);
  });

  test("a Slack that refuses the chart blocks gets the same answer once more, with text bars and a text table", async () => {
    slack.refuseNativeBlocks(true);
    try {
      const refusedBefore = slack.refusedResponses.length;
      const answer = await ask("/spend", "this-month");
      assert.equal(slack.refusedResponses.length - refusedBefore, 1, "refused once, then sent without the native blocks: never retried as it was");
      assert.equal(answer.blocks.some((b) => b.type === "data_visualization" || b.type === "data_table"), false);
      const text = texts(answer.blocks);
      assert.match(text, /█+.*\$5\.00 \(83 %\) {2}search/);
      assert.match(text, /team-ads-monthly\s+\$1\.00\s+\$4\.00\s+25 %\s+ok/);
    } finally {
      slack.refuseNativeBlocks(false);
    }
  });
});

describe("alerts, buttons and the raise form", () => {
  const BUDGET = "search-web";
  let key: string;
  let breach: { channel: string; ts: string; blocks: unknown };

  before(async () => {
    key = await t.ingestKey();
    const res = await t.admin("/api/budgets", { method: "POST", body: JSON.stringify({ name: BUDGET, scope: { team: "search", project: "web" }, amount_usd: "6", period: "month" }) });
    assert.equal(res.status, 201, await res.clone().text());
  });

  test("a breach reaches the subscribed channel as Block Kit, after Slack's 429 and its Retry-After", async () => {
    slack.rateLimit("chat.postMessage", 1);
    await spend(key, 2, { team: "search", project: "web", feature: INJECTED });
    const delivered = async () =>
      (
        await t.gateway.database.rows<{ attempts: number; status: string; external_ref: { channel: string; ts: string } }>(
          sql`select attempts, status, external_ref from notifications where status = 'delivered' and payload::text like ${`%${BUDGET} passed 100 \\%%`}`,
        )
      )[0];
    await waitFor("the breach alert delivered to Slack", async () => (await delivered()) !== undefined);
    // Whichever message went first (the breach, or an anomaly alert raised by the same spend) met the 429 and waited.
    await waitFor("every Slack message delivered", async () => (await slackRows()).every((r) => r.status === "delivered"));
    const rows = await slackRows();
    assert.deepEqual(rows.map((r) => r.attempts).sort(), [...Array(rows.length - 1).fill(1), 2]);
    assert.equal(posted(ALERTS_CHANNEL).length, rows.length + 1, "one refused with 429, each then posted once");
    const row = await delivered();
    const message = slack.messages.get(`${ALERTS_CHANNEL} ${row!.external_ref.ts}`)!;
    breach = { channel: ALERTS_CHANNEL, ts: message.ts, blocks: message.blocks };
    const text = texts(message.blocks);
    assert.match(text, /\$7\.00 of \$6\.00 \(116 %\)/);
    // The budget's period so far, as Slack's own line chart (the fake checks Slack's chart limits).
    const chart = (message.blocks as { type: string; chart?: { type: string; series: { name: string; data: { value: number }[] }[] } }[]).find((b) => b.type === "data_visualization");
    assert.equal(chart?.chart?.type, "line");
    assert.deepEqual(chart.chart.series.map((x) => x.name), ["Spent", "Budget"]);
    assert.equal(chart.chart.series[0]!.data.at(-1)!.value, 7);
    assert.ok(!JSON.stringify(message).includes("<!channel>"), "the injected feature name is escaped");
    assert.match(text, /• &lt;!channel&gt; &lt;https:\/\/evil\.example\|click&gt;: \$4\.00/);
    assert.deepEqual(
      buttonsOf(message.blocks).map((b) => [b.action_id, b.value]),
      [
        ["tollgate:request_raise", BUDGET],
        ["tollgate:mute", BUDGET],
        ["tollgate:breakdown", BUDGET],
      ],
    );
  });

  async function click(action: string, value: string, who: Person, on = breach, retryNum?: number) {
    const responseId = `r${seq++}`;
    const res = await sendAsSlack(`${t.base}/slack/events`, buttonClick(slack, { action_id: `tollgate:${action}`, value }, who, { channelId: on.channel, ts: on.ts }, responseId), {
      signingSecret: SIGNING_SECRET,
      retryNum,
    });
    assert.equal(res.status, 200, res.body);
    return responseId;
  }

  async function responseTo(id: string): Promise<{ text: string; response_type: unknown; replace_original: unknown }> {
    await waitFor(`the answer to ${id}`, () => slack.responses.some((r) => r.id === id));
    const body = slack.responses.find((r) => r.id === id)!.body;
    return { text: texts(body.blocks), response_type: body.response_type, replace_original: body.replace_original };
  }

  test("Breakdown answers the clicker privately with the budget's spend by its next dimension", async () => {
    const answer = await responseTo(await click("breakdown", BUDGET, VIEWER));
    assert.equal(answer.response_type, "ephemeral");
    assert.equal(answer.replace_original, false);
    assert.match(answer.text, /AI spend this-month for team:search project:web/);
    assert.match(answer.text, /\*By feature\*/);
  });

  test("Request raise: a viewer is refused; a requester gets the form, and a bad amount is refused in it", async () => {
    const refused = await responseTo(await click("request_raise", BUDGET, VIEWER));
    assert.match(refused.text, /budget raise needs the requester role; you are a viewer/);
    assert.equal(slack.callsOf("views.open").length, 0);

    await click("request_raise", BUDGET, REQUESTER);
    await waitFor("the form", () => slack.callsOf("views.open").length === 1);
    const view = slack.callsOf("views.open")[0]!.args.view as Record<string, unknown>;
    assert.equal(view.callback_id, "tollgate:raise");
    const submit = (values: Record<string, string>) =>
      sendAsSlack(`${t.base}/slack/events`, viewSubmission(view, values, REQUESTER), { signingSecret: SIGNING_SECRET }).then((r) => ({ status: r.status, body: r.body ? r.json() : {} }));

    const notANumber = await submit({ amount: "lots", reason: "launch" });
    assert.deepEqual(notANumber.body, { response_action: "errors", errors: { amount: '"lots" is not an amount: expected an amount of USD such as 800, $800, 800usd or 1.5k.' } });
    const lower = await submit({ amount: "$5", reason: "launch" });
    assert.deepEqual(lower.body, { response_action: "errors", errors: { amount: "must be above the budget's current amount of $6.00 (6)" } });

    const filed = await submit({ amount: "$800", reason: "launch week" });
    assert.equal(filed.status, 200);
    assert.deepEqual(filed.body, {});
    const again = await submit({ amount: "$900", reason: "launch week" });
    assert.match((again.body as { errors: { amount: string } }).errors.amount, /already waiting for a decision/);
    await waitFor("the confirmation", () => slack.callsOf("chat.postEphemeral").length === 1);
    const confirmation = slack.callsOf("chat.postEphemeral")[0]!;
    assert.equal(confirmation.args.user, REQUESTER.userId);
    assert.match(texts(confirmation.args.blocks), /Raise requested for search-web/);
  });

  test("approvers see the request with Approve and Reject; a non-approver is refused; a double click decides once", async () => {
    await waitFor("the request in the approvals channel", () => posted(APPROVALS_CHANNEL).length === 1);
    const request = posted(APPROVALS_CHANNEL)[0]!;
    const buttons = buttonsOf(request.args.blocks);
    assert.deepEqual(
      buttons.map((b) => b.action_id),
      ["tollgate:approve", "tollgate:reject"],
    );
    assert.match(texts(request.args.blocks), /\*Requested by\*\n<@U0REQUESTER>/);
    const approvalId = buttons[0]!.value;
    const { ts } = [...slack.messages.values()].find((m) => m.channel === APPROVALS_CHANNEL)!;
    const message = { channel: APPROVALS_CHANNEL, ts, blocks: request.args.blocks };

    const refused = await responseTo(await click("approve", approvalId, REQUESTER, message));
    assert.match(refused.text, /budget approve needs the approver role; you are a requester/);
    assert.equal(await budgetAmount(BUDGET), "6");

    const first = click("approve", approvalId, APPROVER, message);
    const second = click("approve", approvalId, APPROVER, message, 1);
    const answers = await Promise.all([responseTo(await first), responseTo(await second)]);
    assert.deepEqual(answers.map((a) => a.text.match(/approved|already approved/)?.[0]).sort(), ["already approved", "approved"]);
    assert.equal(await budgetAmount(BUDGET), "800");
    const decisions = await t.gateway.database.rows<{ n: number }>(sql`select count(*)::int as n from audit_log where entity = 'approval' and action = 'approve'`);
    assert.equal(decisions[0]!.n, 1);

    await waitFor("the request updated in place", () => slack.messages.get(`${APPROVALS_CHANNEL} ${message.ts}`)!.updates > 0);
    const updated = slack.messages.get(`${APPROVALS_CHANNEL} ${message.ts}`)!;
    assert.match(texts(updated.blocks), /:white_check_mark: \*Approved\* by <@U0APPROVER> at <!date\^\d+\^\{time\}\|[^>]+>: \$6\.00 → \$800\.00/);
    assert.deepEqual(buttonsOf(updated.blocks), [], "no buttons left to press");
    assert.equal(posted(APPROVALS_CHANNEL).length, 1, "updated, not posted again");
  });

  test("where the raise was asked for, the breach message follows it: approved, then back under budget", async () => {
    const key = `${breach.channel} ${breach.ts}`;
    await waitFor("the breach message back under budget", () => texts(slack.messages.get(key)!.blocks).includes("back under budget"));
    const message = slack.messages.get(key)!;
    assert.ok(message.updates >= 2, `updated ${message.updates} times`);
    assert.match(texts(message.blocks), /search-web is back under budget/);
    const later = posted(ALERTS_CHANNEL).filter((c) => /approved by|back under budget/.test(texts(c.args.blocks)));
    assert.equal(later.length, 0, "the outcome updated the breach rather than adding messages");
    await waitFor("every slack message delivered", async () => (await slackRows()).every((r) => r.status === "delivered"));
  });

  test("Reject decides too, and updates the request in place", async () => {
    const requested = await ask("/budget", `raise ${BUDGET} 900 more traffic`, REQUESTER, ALERTS_CHANNEL);
    assert.match(texts(requested.blocks), /Raise requested for search-web/);
    await waitFor("the second request", () => posted(APPROVALS_CHANNEL).length === 2);
    const request = posted(APPROVALS_CHANNEL)[1]!;
    const approvalId = buttonsOf(request.args.blocks)[1]!.value;
    const ts = [...slack.messages.values()].filter((m) => m.channel === APPROVALS_CHANNEL).at(-1)!.ts;
    const answer = await responseTo(await click("reject", approvalId, ADMIN, { channel: APPROVALS_CHANNEL, ts, blocks: request.args.blocks }));
    assert.match(answer.text, /rejected/);
    await waitFor("the rejection in place", () => /\*Rejected\* by <@U0ADMIN>/.test(texts(slack.messages.get(`${APPROVALS_CHANNEL} ${ts}`)!.blocks)));
    assert.equal(await budgetAmount(BUDGET), "800");
  });

  test("Mute 24 h mutes the budget in that channel only", async () => {
    const refused = await responseTo(await click("mute", BUDGET, VIEWER));
    assert.match(refused.text, /alerts mute needs the requester role/);
    const answer = await responseTo(await click("mute", BUDGET, REQUESTER));
    assert.match(answer.text, /search-web muted here for 24h/);
    const channel = await slackChannel(ALERTS_CHANNEL);
    const { mutes } = (await (await t.admin(`/api/channels/${channel!.id}/mutes`)).json()) as { mutes: { budget: { name: string }; until: string; muted_by: string }[] };
    assert.equal(mutes.length, 1);
    assert.equal(mutes[0]!.budget.name, BUDGET);
    assert.equal(mutes[0]!.muted_by, `slack:${REQUESTER.userId}`);
    const hours = (Date.parse(mutes[0]!.until) - Date.now()) / 3_600_000;
    assert.ok(hours > 23.9 && hours <= 24, `${hours} hours`);
    assert.equal((await click("mute", BUDGET, REQUESTER, { channel: "C0ELSEWHERE", ts: "1.000001", blocks: [] }).then(responseTo)).text.includes("gets no alerts"), true);
  });

  test("unsubscribe removes the channel", async () => {
    await ask("/tollgate", "unsubscribe", ADMIN, ALERTS_CHANNEL);
    assert.equal(await slackChannel(ALERTS_CHANNEL), undefined);
  });
});

describe("a slow answer", () => {
  test("is acknowledged at once and followed up through response_url", async () => {
    const slow = await startTestGateway({ ...env(), TOLLGATE_JOBS: "off" }, { database: t.gateway.database, integrations: [webhook, slackIntegration({ answerWithinMs: 0 })] });
    try {
      const form = slashCommand(slack, "/spend", "this-month by team share", VIEWER, "C0GENERAL", "slow-1");
      const res = await sendAsSlack(`${slow.base}/slack/events`, form, { signingSecret: SIGNING_SECRET });
      assert.equal(res.status, 200);
      assert.equal(res.body, "");
      await waitFor("the follow-up", () => slack.responses.some((r) => r.id === "slow-1"));
      const body = slack.responses.find((r) => r.id === "slow-1")!.body;
      assert.equal(body.response_type, "in_channel");
      assert.match(texts(body.blocks), /AI spend this-month/);
    } finally {
      await slow.close();
    }
  });
});

describe("/tollgate telegram-link", () => {
  const codes = async () => (await t.gateway.database.rows<{ n: number }>(sql`select count(*)::int as n from telegram_links`))[0]!.n;

  test("only an admin makes a code; a bad scope or kind is answered with what was expected; nothing is made", async () => {
    const before = await codes();
    const refused = await ask("/tollgate", "telegram-link --scope team:search", APPROVER);
    assert.equal(refused.response_type, "ephemeral");
    assert.match(texts(refused.blocks), /telegram-link needs the admin role; you are a approver/);
    const badScope = texts((await ask("/tollgate", "telegram-link --scope tem:search --kinds alerts", ADMIN)).blocks);
    assert.match(badScope, /"tem" is not a dimension; did you mean `team`\?/);
    assert.match(badScope, /Expected one of team, project, feature, user, model, provider, key\./);
    const badKind = texts((await ask("/tollgate", "telegram-link --scope team:search --kinds alrets", ADMIN)).blocks);
    assert.match(badKind, /"alrets" is not something a chat can get; did you mean `alerts`\?/);
    assert.match(badKind, /Expected any of alerts, approvals, daily, weekly, joined by commas\./);
    assert.equal(await codes(), before);
  });

  test("on a gateway without Telegram, the admin is told it is not configured, and no code is made", async () => {
    const before = await codes();
    const answer = await ask("/tollgate", "telegram-link --scope team:search", ADMIN);
    assert.equal(answer.response_type, "ephemeral");
    assert.match(texts(answer.blocks), /^:warning: \*No link code made\*\nTelegram is not configured on this gateway: set TELEGRAM_BOT_TOKEN/);
    const api = await t.admin("/api/telegram/links", { method: "POST", body: JSON.stringify({ scope: { team: "search" } }) });
    assert.equal(api.status, 409);
    assert.match(((await api.json()) as { detail: string }).detail, /^Telegram is not configured on this gateway/);
    assert.equal(await codes(), before);
  });

  test("an admin's code is answered to them alone, with its expiry and deep link, and links a Telegram chat", async () => {
    const tg = await startFakeTelegram();
    const secret = randomBytes(24).toString("base64url");
    const telegramEnv = { TELEGRAM_BOT_TOKEN: tg.token, TELEGRAM_WEBHOOK_SECRET: secret, TELEGRAM_API_ROOT: tg.apiRoot, TOLLGATE_JOBS: "off" };
    const fast = { perChatMs: 20, perGroupPerMinute: 20, minuteMs: 60_000 };
    const both = await startTestGateway({ ...env(), ...telegramEnv }, { database: t.gateway.database, integrations: [webhook, slackIntegration(), telegramIntegration({ pace: fast })] });
    try {
      const asked = Date.now();
      const answer = await ask("/tollgate", "telegram-link --scope team:search --kinds alerts", ADMIN, "C0GENERAL", both.base);
      assert.equal(answer.response_type, "ephemeral");
      const text = texts(answer.blocks);
      const code = /send \/link ([0-9A-HJKMNP-TV-Z]{16})$/m.exec(text)?.[1];
      assert.ok(code, text);
      assert.match(text, /^Telegram link code\nIn the Telegram chat that should get alerts for team:search/);
      assert.match(text, new RegExp(`\\*Code\\*\n${code}`));
      assert.match(text, new RegExp(`\\*Or open\\*\nhttps://t\\.me/${FAKE_BOT_USERNAME}\\?start=${code}`));
      const until = /\*Valid until\*\n(\d{4}-\d\d-\d\d \d\d:\d\d) UTC \(15 minutes\), for one chat/.exec(text)?.[1];
      assert.ok(until, text);
      const minutes = (Date.parse(`${until.replace(" ", "T")}Z`) - asked) / 60_000;
      assert.ok(minutes > 13.9 && minutes <= 15, `${minutes} minutes`);
      assert.ok(!JSON.stringify(slack.calls).includes(code), "the code never reached the channel through the Web API");

      const chat = tg.addChat({ id: -1_000_777, type: "supergroup", title: "Search from Slack" });
      const update = tg.command(chat, { id: 5001, is_bot: false, first_name: "Ada" }, `/link@${FAKE_BOT_USERNAME} ${code}`);
      assert.equal((await postUpdate(`${both.base}/telegram/webhook`, update, secret)).status, 200);
      const answered = () => tg.messagesIn(chat.id).find((m) => m.reply_to === update.message.message_id);
      await waitFor("the chat's answer", () => answered() !== undefined);
      assert.match(answered()!.text, /^Linked to Tollgate\n+This chat now gets alerts for team:search\./);
      const { channels } = (await (await t.admin("/api/channels")).json()) as { channels: ChannelInfo[] };
      const linked = channels.find((c) => c.platform === "telegram" && c.address.chat_id === chat.id);
      assert.deepEqual(linked?.subscriptions, { scopes: [{ team: "search" }], kinds: ["alerts"] });
      const [used] = await t.gateway.database.rows<{ created_by: string; used_by_chat: number }>(
        sql`select created_by, used_by_chat::int as used_by_chat from telegram_links where used_at is not null`,
      );
      assert.deepEqual(used, { created_by: `slack:${ADMIN.userId}`, used_by_chat: chat.id });
      // The shared gateway delivers no Telegram: the chat's alerts would wait for ever in its outbox.
      assert.equal((await t.admin(`/api/channels/${linked!.id}`, { method: "DELETE" })).status, 200);
    } finally {
      await both.close();
      await tg.close();
    }
  });
});
