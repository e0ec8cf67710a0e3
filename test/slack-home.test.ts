import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { type FakeSlack, type Person, appHomeOpened, homeButtonClick, sendAsSlack, sendEventAsSlack, slashCommand, startFakeSlack, viewSubmission } from "./fakes/slack-api.ts";
import { texts } from "./helpers/block-texts.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { waitFor } from "./helpers/wait.ts";

/*
 * The App Home tab: the real @slack/bolt app gets app_home_opened events and Home-tab button
 * presses signed as Slack signs them, and draws the tab with views.publish on the fake Slack, which
 * checks each view as Slack documents it and keeps the last one of each user.
 */

const SIGNING_SECRET = randomBytes(16).toString("hex");
const APPROVER: Person = { userId: "U0APPROVER", userName: "ana" };
const OTHER_APPROVER: Person = { userId: "U0APPROVER2", userName: "otto" };
const REQUESTER: Person = { userId: "U0REQUESTER", userName: "rob" };
const SEARCH_VIEWER: Person = { userId: "U0SEARCHVIEW", userName: "sue" };
const STRANGER: Person = { userId: "U0STRANGER", userName: "stan" };
/** A team named to break out of Block Kit: a tag, mrkdwn's marks, a ping. */
const WEIRD = "<script>*bold* _it_ ~x~ <!here>";

let slack: FakeSlack;
let t: TestGateway;
let seq = 0;

type Block = { type: string; text?: { text: string }; elements?: { type: string; action_id?: string; value?: string; text?: string }[] } & Record<string, unknown>;

const buttonsOf = (blocks: Block[]) => blocks.flatMap((b) => (b.type === "actions" ? b.elements! : []));
const decisionButtons = (blocks: Block[]) => buttonsOf(blocks).filter((b) => /^tollgate:(approve|reject)/.test(b.action_id!));

async function member(who: Person, role: string, scopes?: Record<string, string>[]): Promise<void> {
  const res = await t.admin("/api/members", { method: "PUT", body: JSON.stringify({ platform: "slack", user_id: who.userId, role, ...(scopes ? { scopes } : {}) }) });
  assert.ok(res.ok, await res.clone().text());
}

async function budget(name: string, team: string, amount: string): Promise<void> {
  const res = await t.admin("/api/budgets", { method: "POST", body: JSON.stringify({ name, scope: { team }, amount_usd: amount, period: "month" }) });
  assert.equal(res.status, 201, await res.clone().text());
}

async function budgetAmount(name: string): Promise<string> {
  return ((await (await t.admin(`/api/budgets/${name}`)).json()) as { amount_usd: string }).amount_usd;
}

/** gpt-4o at $2.50 per million input tokens: `dollars` worth of input for `team`. */
async function spend(key: string, dollars: number, team: string): Promise<void> {
  const res = await fetch(`${t.base}/v1/usage`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ id: `h${seq++}`, timestamp: new Date().toISOString(), provider: "openai", model: "gpt-4o", input_tokens: dollars * 400_000, team }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  await t.gateway.recorder.flush();
}

/** Opens `who`'s Home tab as Slack does and waits for the tab to be drawn again; its blocks. */
async function openHome(who: Person): Promise<Block[]> {
  const before = slack.homes.get(who.userId)?.publishes ?? 0;
  const res = await sendEventAsSlack(`${t.base}/slack/events`, appHomeOpened(slack, who.userId), { signingSecret: SIGNING_SECRET });
  assert.equal(res.status, 200, res.body);
  await waitFor(`${who.userId}'s Home tab`, () => (slack.homes.get(who.userId)?.publishes ?? 0) > before);
  return slack.homes.get(who.userId)!.blocks as Block[];
}

/** Presses a button on `who`'s Home tab; the tab as drawn after it. */
async function pressOnHome(who: Person, action: string, value: string): Promise<Block[]> {
  const before = slack.homes.get(who.userId)!.publishes;
  const res = await sendAsSlack(`${t.base}/slack/events`, homeButtonClick(slack, { action_id: `tollgate:${action}`, value }, who), { signingSecret: SIGNING_SECRET });
  assert.equal(res.status, 200, res.body);
  await waitFor(`${who.userId}'s Home tab after ${action}`, () => slack.homes.get(who.userId)!.publishes > before);
  return slack.homes.get(who.userId)!.blocks as Block[];
}

/** Asks for a raise with the slash command, as `who`; the request's id. */
async function requestRaise(who: Person, name: string, amount: string): Promise<string> {
  const res = await sendAsSlack(`${t.base}/slack/events`, slashCommand(slack, "/budget", `raise ${name} ${amount} launch week`, who, "C0GENERAL"), { signingSecret: SIGNING_SECRET });
  assert.equal(res.status, 200, res.body);
  const id = /apr_[0-9a-f]{12}/.exec(texts((res.json() as { blocks: unknown }).blocks))?.[0];
  assert.ok(id, res.body);
  return id;
}

const tableRows = (blocks: Block[]) => (blocks.find((b) => b.type === "data_table") as { rows: { text: string }[][] } | undefined)?.rows.map((r) => r.map((c) => c.text));

before(async () => {
  slack = await startFakeSlack();
  t = await startTestGateway({ SLACK_BOT_TOKEN: slack.botToken, SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_API_URL: slack.apiUrl });
  await Promise.all([
    member(APPROVER, "approver"),
    member(OTHER_APPROVER, "approver"),
    member(REQUESTER, "requester"),
    member(SEARCH_VIEWER, "viewer", [{ team: "search" }]),
  ]);
  const key = await t.ingestKey();
  await spend(key, 3, "search");
  await spend(key, 2, WEIRD);
  await spend(key, 1, "ads");
  await budget("search-monthly", "search", "10");
  await budget("ads-monthly", "ads", "10");
  await budget("weird-monthly", WEIRD, "2");
});

after(async () => {
  await t?.close();
  await slack?.close();
});

describe("the Home tab", () => {
  test("opening it publishes this month's spend by team, the budgets in scope with their state, and the raises waiting", async () => {
    const blocks = await openHome(APPROVER);
    const text = texts(blocks);
    assert.equal(blocks[0]!.type, "header");
    assert.match(text, /You are an approver: you see all AI spend\./);
    assert.match(text, /AI spend this-month/);
    assert.match(text, /\$6\.00 over 3 requests/);
    const chart = blocks.find((b) => b.type === "data_visualization") as unknown as { chart: { axis_config: { categories: string[] } } };
    assert.deepEqual(chart.chart.axis_config.categories.slice(0, 3).sort(), ["ads", "search", "‹script›*bold* _it_…"].sort());
    const rows = tableRows(blocks)!;
    assert.deepEqual(rows[0], ["Budget", "Spent", "Amount", "%", "State", "Runs out"]);
    assert.deepEqual(
      rows.slice(1).map((r) => [r[0], r[1], r[2], r[4]]),
      [
        ["weird-monthly", "$2.00", "$2.00", "over"],
        ["search-monthly", "$3.00", "$10.00", "ok"],
        ["ads-monthly", "$1.00", "$10.00", "ok"],
      ],
    );
    assert.match(text, /\*Raises waiting for you\*\nNone just now\./);
    // The buttons alerts carry, for each budget listed: Request raise (an approver may ask) and Breakdown.
    assert.deepEqual(
      buttonsOf(blocks).map((b) => [b.action_id, b.value]),
      ["weird-monthly", "search-monthly", "ads-monthly"].flatMap((name, i) => [
        [`tollgate:request_raise${i > 0 ? `:${i}` : ""}`, name],
        [`tollgate:breakdown${i > 0 ? `:${i}` : ""}`, name],
      ]),
    );
  });

  test("the Messages tab draws nothing; an unsigned event is refused", async () => {
    const before = slack.callsOf("views.publish").length;
    const messages = await sendEventAsSlack(`${t.base}/slack/events`, appHomeOpened(slack, APPROVER.userId, "messages"), { signingSecret: SIGNING_SECRET });
    assert.equal(messages.status, 200);
    const forged = await sendEventAsSlack(`${t.base}/slack/events`, appHomeOpened(slack, APPROVER.userId), { signingSecret: "another-secret-0123456789" });
    assert.equal(forged.status, 401);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(slack.callsOf("views.publish").length, before);
  });

  test("a viewer scoped to team:search sees only that team; a person given nothing sees no spend", async () => {
    const text = texts(await openHome(SEARCH_VIEWER));
    assert.match(text, /You are a viewer: you see team:search\./);
    assert.match(text, /AI spend this-month for team:search/);
    assert.match(text, /\$3\.00 over 1 requests/);
    assert.doesNotMatch(text, /ads|script|weird/);
    const own = slack.homes.get(SEARCH_VIEWER.userId)!.blocks as Block[];
    assert.deepEqual(tableRows(own)?.slice(1).map((r) => r[0]), ["search-monthly"]);
    // A viewer may not ask for raises: Breakdown only.
    assert.deepEqual(buttonsOf(own).map((b) => [b.action_id, b.value]), [["tollgate:breakdown", "search-monthly"]]);
    const breakdown = texts(await pressOnHome(SEARCH_VIEWER, "breakdown", "search-monthly"));
    assert.match(breakdown, /AI spend this-month for team:search[\s\S]*AI spend this-month for team:search/, "the answer on top, the tab below");
    const outside = texts(await pressOnHome(SEARCH_VIEWER, "breakdown", "ads-monthly"));
    assert.match(outside, /Not readable here/);
    assert.doesNotMatch(outside, /\$1\.00/);

    const nothing = texts(await openHome(STRANGER));
    assert.match(nothing, /You are a viewer with no scopes: you see no spend yet/);
    assert.doesNotMatch(nothing, /\$|search|ads/);
    // A press from a tab that reads nothing is refused, not answered with everything.
    const pressed = texts(await pressOnHome(STRANGER, "breakdown", "this-month"));
    assert.match(pressed, /Nothing to see yet/);
    assert.doesNotMatch(pressed, /\$/);
  });

  test("values from usage data are escaped: no tag, ping or mrkdwn mark gets through", async () => {
    const blocks = slack.homes.get(APPROVER.userId)!.blocks;
    const raw = JSON.stringify(blocks);
    assert.ok(!raw.includes("<script>") && !raw.includes("<!here>"), raw);
    const mrkdwn = blocks.flatMap((b) => [(b as Block).text, ...((b as { fields?: unknown[] }).fields ?? []), ...((b as Block).elements ?? [])]).filter((x): x is { type: string; text: string } => (x as { type?: string })?.type === "mrkdwn");
    const bars = mrkdwn.map((m) => m.text).find((m) => m.includes("script"))!;
    assert.match(bars, /&lt;script&gt;∗bold∗ ˍitˍ ∼x∼ &lt;!here&gt;: \$2\.00 \(33 %\)/);
    for (const m of mrkdwn) assert.doesNotMatch(m.text, /\*bold\*|_it_|~x~/, m.text);
  });

  test("an approver approves from the tab: the budget is raised and the tab drawn again; four eyes keep their own raise from them", async () => {
    const requested = await requestRaise(REQUESTER, "search-monthly", "20");
    const own = await requestRaise(APPROVER, "ads-monthly", "15");

    // The requester sees their request waiting, with no buttons: only an approver decides it.
    const requesterHome = await openHome(REQUESTER);
    assert.match(texts(requesterHome), /asks to raise search-monthly to \$20\.00/);
    assert.match(texts(requesterHome), /You asked for this raise: another approver or an admin decides it\./);
    assert.deepEqual(decisionButtons(requesterHome), []);

    const home = await openHome(APPROVER);
    const text = texts(home);
    assert.match(text, /asks to raise search-monthly to \$20\.00/);
    assert.match(text, /asks to raise ads-monthly to \$15\.00/);
    // The same buttons as the request in the approvals channel, for the raise they may decide only.
    assert.deepEqual(
      decisionButtons(home).map((b) => [b.action_id, b.value]),
      [
        ["tollgate:approve", requested],
        ["tollgate:reject", requested],
      ],
    );

    // Pressed anyway (an old tab, a forged click): four eyes refuse, and the tab says so.
    const refused = texts(await pressOnHome(APPROVER, "approve", own));
    assert.match(refused, /Nothing was decided/);
    assert.match(refused, /slack:U0APPROVER asked for this raise; another approver or an admin decides it/);
    assert.equal(await budgetAmount("ads-monthly"), "10");

    const approved = await pressOnHome(APPROVER, "approve", requested);
    assert.match(texts(approved), new RegExp(`Request ${requested} approved`));
    assert.match(texts(approved), /search-monthly: \$10\.00 → \$20\.00/);
    assert.equal(await budgetAmount("search-monthly"), "20");
    // Drawn again after the decision: the raise is no longer waiting, the budget shows its new amount.
    assert.doesNotMatch(texts(approved), /asks to raise search-monthly/);
    assert.ok(tableRows(approved)!.some((r) => r[0] === "search-monthly" && r[2] === "$20.00"));

    // The other approver decides the approver's own raise from their tab.
    await openHome(OTHER_APPROVER);
    const decided = texts(await pressOnHome(OTHER_APPROVER, "approve", own));
    assert.match(decided, new RegExp(`Request ${own} approved`));
    assert.equal(await budgetAmount("ads-monthly"), "15");
  });

  test("Request raise from the tab opens the form; the submission draws the tab again with the request", async () => {
    await openHome(REQUESTER);
    const opened = slack.callsOf("views.open").length;
    const before = slack.homes.get(REQUESTER.userId)!.publishes;
    const press = await sendAsSlack(`${t.base}/slack/events`, homeButtonClick(slack, { action_id: "tollgate:request_raise", value: "weird-monthly" }, REQUESTER), { signingSecret: SIGNING_SECRET });
    assert.equal(press.status, 200);
    await waitFor("the form", () => slack.callsOf("views.open").length === opened + 1);
    const view = slack.callsOf("views.open").at(-1)!.args.view as { private_metadata: string } & Record<string, unknown>;
    assert.deepEqual(JSON.parse(view.private_metadata), { budget: "weird-monthly", team_id: "T0TOLLGATE" });
    const submitted = await sendAsSlack(`${t.base}/slack/events`, viewSubmission(view, { amount: "$5", reason: "more traffic" }, REQUESTER), { signingSecret: SIGNING_SECRET });
    assert.equal(submitted.status, 200, submitted.body);
    await waitFor("the tab drawn again", () => slack.homes.get(REQUESTER.userId)!.publishes > before);
    const text = texts(slack.homes.get(REQUESTER.userId)!.blocks);
    assert.match(text, /Raise requested for weird-monthly/);
    assert.match(text, /asks to raise weird-monthly to \$5\.00/);
  });

  test("a Slack that refuses the chart blocks in a view gets the same tab once more, with text bars", async () => {
    slack.refuseNativeBlocks(true);
    try {
      const calls = slack.callsOf("views.publish").length;
      const blocks = await openHome(APPROVER);
      assert.equal(slack.callsOf("views.publish").length, calls + 2, "refused once, then published with text");
      assert.ok(!blocks.some((b) => b.type === "data_visualization" || b.type === "data_table"));
      assert.match(texts(blocks), /`█+ *` {2}\$3\.00 \(50 %\) {2}search/);
    } finally {
      slack.refuseNativeBlocks(false);
    }
  });
});

describe("the fake Slack's views.publish, as Slack documents it", () => {
  const publish = (args: Record<string, unknown>) =>
    fetch(`${slack.apiUrl}views.publish`, { method: "POST", headers: { authorization: `Bearer ${slack.botToken}`, "content-type": "application/json" }, body: JSON.stringify(args) }).then(
      (r) => r.json() as Promise<{ ok: boolean; error?: string; response_metadata?: { messages: string[] } }>,
    );
  const section = { type: "section", text: { type: "mrkdwn", text: "hi" } };

  test("needs a user, a home view, and at most 100 blocks of valid shapes", async () => {
    assert.equal((await publish({ view: { type: "home", blocks: [section] } })).error, "invalid_arguments");
    assert.equal((await publish({ user_id: "U0X", view: { type: "modal", blocks: [section] } })).error, "invalid_arguments");
    const tooMany = await publish({ user_id: "U0X", view: { type: "home", blocks: Array(101).fill(section) } });
    assert.deepEqual(tooMany.response_metadata?.messages, ["view.blocks has 101 blocks; at most 100"]);
    const bad = await publish({ user_id: "U0X", view: { type: "home", blocks: [{ type: "section" }] } });
    assert.equal(bad.error, "invalid_arguments");
    assert.equal((await publish({ user_id: "U0X", view: { type: "home", blocks: Array(100).fill(section) } })).ok, true);
  });
});
