import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { telegramIntegration } from "../integrations/telegram/index.ts";
import { webhook } from "../integrations/webhook/index.ts";
import type { ChannelInfo } from "../src/alerts/channels.ts";
import { FAKE_BOT_USERNAME, type FakeTelegram, type SentMessage, type TelegramChat, type TelegramUser, type Update, postUpdate, startFakeTelegram } from "./fakes/telegram-api.ts";
import { runCli } from "./helpers/cli.ts";
import { ADMIN_TOKEN, type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { waitFor } from "./helpers/wait.ts";

/*
 * The real telegraf bot mounted on the gateway, driven as Telegram drives it (updates posted to
 * the webhook with its secret, or handed out by getUpdates), talking to a fake Bot API that
 * records every call and refuses what Telegram refuses. Alerts go out through the outbox to the
 * same fake.
 */

const SECRET = randomBytes(24).toString("base64url");
const MANIFEST = JSON.parse(readFileSync(new URL("../manifest/telegram-commands.json", import.meta.url), "utf8")) as unknown[];
/** Telegram's limits, shortened so the test does not wait out whole seconds between answers. */
const FAST = { perChatMs: 20, perGroupPerMinute: 20, minuteMs: 60_000 };
const FEATURE = "<b>bold</b> & co";
const BUDGET = "search-web";

const person = (id: number, first_name: string, username?: string): TelegramUser => ({ id, is_bot: false, first_name, ...(username ? { username } : {}) });
const ADMIN = person(1001, "Ada", "ada");
const APPROVER = person(1002, "Ana", "ana");
const REQUESTER = person(1003, "Rob", "rob");
const VIEWER = person(1004, "Vic");

let tg: FakeTelegram;
let t: TestGateway;
let seq = 0;

const env = (extra: Record<string, string> = {}) => ({ TELEGRAM_BOT_TOKEN: tg.token, TELEGRAM_WEBHOOK_SECRET: SECRET, TELEGRAM_API_ROOT: tg.apiRoot, ...extra });
const post = (update: Update, secret: string | undefined = SECRET, base = t.base) => postUpdate(`${base}/telegram/webhook`, update, secret);

let chatIds = 0;
const group = (title: string): TelegramChat => tg.addChat({ id: -1_000_000 - ++chatIds, type: "supergroup", title });
const privateChat = (who: TelegramUser): TelegramChat => tg.addChat({ id: who.id, type: "private", first_name: who.first_name });

/** The bot's answer to a message: the message it sent in reply to it. */
/** The bot's text answer to an update (a chart photo, which comes first, is not it). */
const answerTo = (update: Update) => tg.messagesIn(update.message.chat.id).find((m) => m.reply_to === update.message.message_id && !m.photo);
/** The chart photo sent with the answer to an update. */
const photoTo = (update: Update) => tg.messagesIn(update.message.chat.id).find((m) => m.reply_to === update.message.message_id && m.photo);

/** Posts an update and waits for the bot's answer to it. */
async function ask(update: Update, base = t.base): Promise<SentMessage> {
  const res = await post(update, SECRET, base);
  assert.equal(res.status, 200, await res.text());
  await waitFor(`an answer to "${update.message.text}"`, () => answerTo(update) !== undefined);
  return answerTo(update)!;
}

const command = (chat: TelegramChat, from: TelegramUser, text: string) => ask(tg.command(chat, from, text));

/**
 * Shows an update got no answer: a later one in the same chat is answered. The earlier one's
 * handling started first and, having nothing to look up, would have answered by then.
 */
async function noAnswer(update: Update): Promise<void> {
  await command(update.message.chat, VIEWER, "/help");
  assert.equal(answerTo(update), undefined, `"${update.message.text}" was answered`);
}

async function newCode(body: unknown = { scope: { team: "search" }, kinds: ["alerts"] }): Promise<{ code: string; expires_at: string; deep_link: string | null }> {
  const res = await t.admin("/api/telegram/links", { method: "POST", body: JSON.stringify(body) });
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()) as { code: string; expires_at: string; deep_link: string | null };
}

async function link(chat: TelegramChat, who: TelegramUser = ADMIN, body?: unknown): Promise<SentMessage> {
  const { code } = await newCode(body);
  const answer = await command(chat, who, `/link${chat.type === "private" ? "" : `@${FAKE_BOT_USERNAME}`} ${code}`);
  assert.match(answer.text, /^Linked to Tollgate/, answer.text);
  return answer;
}

async function telegramChannel(chatId: number): Promise<ChannelInfo | undefined> {
  const { channels } = (await (await t.admin("/api/channels")).json()) as { channels: ChannelInfo[] };
  return channels.find((c) => c.platform === "telegram" && c.address.chat_id === chatId);
}

async function member(who: TelegramUser, role: string, scopes?: Record<string, string>[]): Promise<void> {
  const res = await t.admin("/api/members", { method: "PUT", body: JSON.stringify({ platform: "telegram", user_id: String(who.id), role, ...(scopes ? { scopes } : {}) }) });
  assert.ok(res.ok, await res.clone().text());
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

let key: string;

before(async () => {
  tg = await startFakeTelegram();
  t = await startTestGateway(env(), { integrations: [webhook, telegramIntegration({ pace: FAST })] });
  await Promise.all([member(ADMIN, "admin"), member(APPROVER, "approver"), member(REQUESTER, "requester")]);
  key = await t.ingestKey();
  await spend(key, 3, { team: "search", project: "web", feature: "autocomplete" });
  await spend(key, 1, { team: "search", project: "web", feature: FEATURE });
  await spend(key, 1, { team: "ads", project: "bidder", feature: "ranking" });
});

after(async () => {
  await t?.close();
  await tg?.close();
});

describe("the webhook", () => {
  test("at start the command list is registered with setMyCommands, as the manifest has it", async () => {
    await waitFor("setMyCommands", () => tg.callsOf("setMyCommands").length > 0);
    assert.deepEqual(tg.callsOf("setMyCommands")[0]!.params.commands, MANIFEST);
  });

  test("a missing or wrong secret gets 403 and the update is neither recorded nor processed", async () => {
    const chat = privateChat(person(2001, "Mallory"));
    for (const secret of [undefined, "", "wrong-secret-0123456789", `${SECRET}x`]) {
      const update = tg.command(chat, VIEWER, "/help");
      const res = await postUpdate(`${t.base}/telegram/webhook`, update, secret);
      assert.equal(res.status, 403);
      const recorded = await t.gateway.database.rows(sql`select 1 from telegram_updates where update_id = ${update.update_id}`);
      assert.equal(recorded.length, 0);
      await noAnswer(update);
    }
  });

  test("a duplicate update_id (Telegram retrying) is acknowledged and processed once", async () => {
    const chat = privateChat(person(2002, "Dup"));
    const update = tg.command(chat, VIEWER, "/spend this-month");
    assert.equal((await post(update)).status, 200);
    assert.equal((await post(update)).status, 200);
    await waitFor("the answer", () => answerTo(update) !== undefined);
    await command(chat, VIEWER, "/help");
    assert.equal(tg.messagesIn(chat.id).filter((m) => m.reply_to === update.message.message_id).length, 1);
  });

  test("a body that is not an update gets 400", async () => {
    const res = await fetch(`${t.base}/telegram/webhook`, { method: "POST", headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": SECRET }, body: '{"message":{}}' });
    assert.equal(res.status, 400);
  });

  test("webhook mode needs the secret; polling mode does not", async () => {
    await assert.rejects(startTestGateway({ TELEGRAM_BOT_TOKEN: tg.token }), /TELEGRAM_WEBHOOK_SECRET: expected .*required when TELEGRAM_BOT_TOKEN is set in webhook mode/);
    await assert.rejects(startTestGateway({ TELEGRAM_BOT_TOKEN: "not-a-token" }), /TELEGRAM_BOT_TOKEN: expected a bot token from @BotFather/);
    const polling = await startTestGateway({ ...env({ TELEGRAM_MODE: "polling", TOLLGATE_JOBS: "off" }), TELEGRAM_WEBHOOK_SECRET: "" }, { database: t.gateway.database });
    try {
      assert.equal((await post(tg.command(privateChat(VIEWER), VIEWER, "/help"), SECRET, polling.base)).status, 404, "no webhook route in polling mode");
    } finally {
      await polling.close();
    }
  });
});

describe("linking", () => {
  test("an unlinked chat gets only an explanation of how to link: no spend, no budgets", async () => {
    const chat = group("Strangers");
    for (const text of ["/spend this-month", "/budget list", "/alerts", "/help", `/spend@${FAKE_BOT_USERNAME} by team`, "/start"]) {
      const answer = await command(chat, ADMIN, text);
      assert.match(answer.text, /^This chat is not linked to Tollgate/, text);
      assert.match(answer.text, /tollgate telegram link --scope team:search/);
      assert.doesNotMatch(answer.text, /\$/, text);
    }
  });

  test("the admin API makes a one-time code valid 15 minutes, with the bot's deep link; bad input is named", async () => {
    const before = Date.now();
    const created = await newCode({ scope: { team: "search" }, kinds: ["alerts"] });
    assert.match(created.code, /^[0-9A-HJKMNP-TV-Z]{16}$/);
    const ttl = Date.parse(created.expires_at) - before;
    assert.ok(ttl > 14 * 60_000 && ttl <= 15 * 60_000 + 5000, String(ttl));
    assert.equal(created.deep_link, `https://t.me/${FAKE_BOT_USERNAME}?start=${created.code}`);
    const stored = await t.gateway.database.rows<{ code_hash: string }>(sql`select code_hash from telegram_links`);
    assert.ok(stored.every((r) => r.code_hash !== created.code && /^[0-9a-f]{64}$/.test(r.code_hash)), "only hashes are stored");

    const bad = async (body: unknown) => {
      const res = await t.admin("/api/telegram/links", { method: "POST", body: JSON.stringify(body) });
      assert.equal(res.status, 400);
      return ((await res.json()) as { errors: { path: string; message: string }[] }).errors;
    };
    assert.deepEqual(await bad({ scope: { tem: "search" } }), [{ path: "scope.tem", message: "not a dimension; one of team, project, feature, user, model, provider, key" }]);
    assert.deepEqual(await bad({ scope: {}, kinds: ["alert"] }), [{ path: "kinds[0]", message: "one of alerts, approvals, daily, weekly" }]);
    assert.equal((await bad({ kinds: ["alerts"] }))[0]!.path, "scope");
    assert.equal((await bad({ scope: {}, colour: "red" }))[0]!.message.includes("colour"), true);
    const anonymous = await fetch(`${t.base}/api/telegram/links`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(anonymous.status, 401);
  });

  test("/start CODE binds the chat as a channel; the code cannot be used again; an expired or unknown one is refused", async () => {
    const chat = privateChat(REQUESTER);
    const { code } = await newCode({ scope: { team: "search" }, kinds: ["alerts", "daily"] });
    const linked = await command(chat, REQUESTER, `/start ${code}`);
    assert.match(linked.text, /This chat now gets alerts, daily for team:search/);
    const channel = await telegramChannel(chat.id);
    assert.deepEqual(channel?.address, { chat_id: chat.id });
    assert.deepEqual(channel?.subscriptions, { scopes: [{ team: "search" }], kinds: ["alerts", "daily"] });
    assert.equal(channel?.name, "Telegram: Rob");

    const other = group("Other team");
    assert.match((await command(other, ADMIN, `/link ${code}`)).text, /already been used/);
    assert.equal(await telegramChannel(other.id), undefined);

    const stale = await newCode();
    await t.gateway.database.rows(sql`update telegram_links set expires_at = now() - interval '1 minute' where used_at is null`);
    assert.match((await command(other, ADMIN, `/link ${stale.code}`)).text, /has expired/);
    assert.match((await command(other, ADMIN, "/link 0000000000000000")).text, /not one Tollgate made/);
    assert.match((await command(other, ADMIN, "/link")).text, /not linked to Tollgate/);
    assert.equal(await telegramChannel(other.id), undefined);

    // Typed back in lower case, with a space, it still works.
    const fresh = await newCode();
    const spaced = `${fresh.code.slice(0, 8).toLowerCase()} ${fresh.code.slice(8)}`;
    assert.match((await command(other, ADMIN, `/link ${spaced}`)).text, /^Linked to Tollgate/);
  });

  test("/unlink needs a chat admin; then the chat is closed again", async () => {
    const chat = group("Short-lived");
    await link(chat);
    tg.setMemberStatus(chat.id, VIEWER.id, "member");
    assert.match((await command(chat, VIEWER, "/unlink")).text, /Only the chat's admins can unlink it/);
    assert.ok(await telegramChannel(chat.id));
    tg.setMemberStatus(chat.id, VIEWER.id, "administrator");
    assert.match((await command(chat, VIEWER, "/unlink")).text, /^Unlinked/);
    assert.equal(await telegramChannel(chat.id), undefined);
    assert.match((await command(chat, VIEWER, "/spend")).text, /^This chat is not linked/);
  });
});

describe("a linked chat reads only its scope", () => {
  test("spend, by user, budgets and alerts stay within team:search; --scope all opens a chat to everything", async () => {
    for (const [name, team] of [["scope-search", "search"], ["scope-ads", "ads"]] as const)
      await t.admin("/api/budgets", { method: "POST", body: JSON.stringify({ name, scope: { team }, amount_usd: "100", period: "month" }) });
    const search = group("Search scoped");
    const linked = await link(search);
    assert.match(linked.text, /It reads only spend, budgets and alerts within team:search/);

    const total = await command(search, VIEWER, "/spend this-month by team");
    assert.match(total.text, /\$4\.00 over 2 requests/, total.text);
    assert.doesNotMatch(total.text, /ads/);
    const other = await command(search, VIEWER, "/spend this-month team:ads");
    assert.match(other.text, /Not readable here[\s\S]*reads only team:search; team:ads is outside it/);
    assert.doesNotMatch(other.text, /\$1\.00/);
    assert.match((await command(search, VIEWER, "/spend this-month project:web")).text, /for team:search project:web/);
    const budgets = await command(search, VIEWER, "/budget list");
    assert.match(budgets.text, /scope-search/);
    assert.doesNotMatch(budgets.text, /scope-ads/);
    assert.match((await command(search, VIEWER, "/budget show scope-ads")).text, /scope-ads is outside what this conversation reads \(team:search\)/);

    const everything = group("Finance");
    const open = await link(everything, ADMIN, { scope: {}, kinds: ["alerts"] });
    assert.match(open.text, /It reads all spend, budgets and alerts/);
    assert.match((await command(everything, VIEWER, "/spend this-month")).text, /\$5\.00 over 3 requests/);
    assert.match((await command(everything, VIEWER, "/budget list")).text, /scope-ads/);
    assert.equal((await telegramChannel(everything.id))?.reads_all, true, "opened to all, for everyone in it");
  });

  test("a chat bound with no scope and not opened to all (linked before that was recorded) reads what each asker may", async () => {
    const chat = group("Old link");
    await link(chat, ADMIN, { scope: {}, kinds: ["alerts"] });
    await t.gateway.database.db.execute(sql`update channels set reads_all = false where platform = 'telegram' and address->>'chat_id' = ${String(chat.id)}`);
    const ADS_VIEWER = person(1005, "Val");
    await member(ADS_VIEWER, "viewer", [{ team: "ads" }]);
    const nobody = await command(chat, VIEWER, "/spend this-month by user");
    assert.match(nobody.text, /You read no spend here: this conversation is linked to no scope, and you are not a member with one/);
    assert.doesNotMatch(nobody.text, /\$/);
    assert.match((await command(chat, VIEWER, "/budget list")).text, /You read no spend here/);
    const own = await command(chat, ADS_VIEWER, "/spend this-month");
    assert.match(own.text, /for team:ads/);
    assert.match(own.text, /\$1\.00 over 1 request/);
    assert.match((await command(chat, ADS_VIEWER, "/budget show scope-search")).text, /scope-search is outside what you read \(team:ads\)/);
    assert.match((await command(chat, REQUESTER, "/spend this-month")).text, /\$5\.00 over 3 requests/, "a member above viewer reads all");
  });
});

describe("commands in linked chats", () => {
  let oncall: TelegramChat;
  before(async () => {
    oncall = group("Search on-call");
    await link(oncall);
  });

  test("/spend@botname in a group answers with bars in <pre>; the feature named <b>bold</b> & co arrives escaped", async () => {
    const answer = await command(oncall, VIEWER, `/spend@${FAKE_BOT_USERNAME} this-month by feature`);
    assert.match(answer.text, /^AI spend this-month for team:search/);
    assert.match(answer.text, /\$4\.00 over 2 requests/, "the chat is linked to team:search: ads' $1 is not its to read");
    assert.ok(answer.text.includes(`${FEATURE}  $1.00`), answer.text);
    assert.ok(answer.html.includes("&lt;b&gt;bold&lt;/b&gt; &amp; co"), answer.html);
    assert.ok(answer.entities.some((e) => e.type === "pre" && answer.text.slice(e.offset, e.offset + e.length).includes("█")));
    assert.ok(!answer.entities.some((e) => e.type === "bold" && answer.text.slice(e.offset, e.offset + e.length) === "bold"));
  });

  test("/spend sends its chart as a PNG photo (a multipart upload) captioned with its title, then the text with the top features of the chat's team", async () => {
    const update = tg.command(oncall, VIEWER, "/spend this-month");
    const answer = await ask(update);
    const photo = photoTo(update);
    assert.ok(photo?.photo, `a photo came with the answer: ${JSON.stringify(tg.callsOf("sendPhoto").map((c) => Object.keys(c.params)))}`);
    assert.match(photo.photo.filename, /\.png$/);
    assert.deepEqual([...photo.photo.bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    // The chat reads team:search only, so its default breakdown is that team's features.
    assert.equal(photo.text, "Spend by feature, this-month");
    assert.ok(photo.message_id < answer.message_id, "the photo first, the text just after");
    assert.match(answer.text, /By feature\n/);
    assert.match(answer.text, /autocomplete\s+\$3\.00 \(75 %\)/);
    assert.ok(!answer.text.includes("ads"), "ads' spend is not the chat's to read");
  });

  test("a command addressed to another bot is left alone", async () => {
    await noAnswer(tg.command(oncall, VIEWER, "/spend@some_other_bot this-month"));
  });

  test("/budget, /alerts and /help answer; typos get the nearest valid form", async () => {
    assert.match((await command(oncall, VIEWER, "/budget list")).text, /No budgets yet|budget/);
    assert.match((await command(oncall, VIEWER, "/alerts")).text, /alerts/i);
    assert.match((await command(oncall, VIEWER, "/help spend")).text, /^How to use spend/);
    assert.match((await command(oncall, VIEWER, "/spned this-week")).text, /unknown command "spned"; did you mean `spend`\?/);
    assert.match((await command(oncall, VIEWER, "/spend last-mnth")).text, /did you mean `last-month`\?/);
  });

  test("roles come from the member mapping by Telegram user id", async () => {
    assert.match((await command(oncall, VIEWER, "/budget set team:search $10 monthly")).text, /budget set needs the admin role; you are a viewer/);
    const set = await command(oncall, ADMIN, "/budget set team:search $100 monthly");
    assert.match(set.text, /^Budget team-search-monthly/);
    assert.deepEqual(
      set.reply_markup?.inline_keyboard.flat().map((b: { text: string }) => b.text),
      ["Request raise", "Breakdown"],
    );
  });

  test("telegram link makes an admin's code in their private chat only: in a group everyone would read the secret", async () => {
    const codes = async () => (await t.gateway.database.rows<{ n: number }>(sql`select count(*)::int as n from telegram_links`))[0]!.n;
    const before = await codes();
    assert.match((await command(oncall, ADMIN, "/telegram link --scope team:search")).text, /^⚠️ No link code made here\n+A link code is a secret and everyone in this conversation would read it/);
    assert.match((await command(oncall, VIEWER, "/telegram link --scope team:search")).text, /telegram-link needs the admin role; you are a viewer/);
    assert.equal(await codes(), before, "no code was made");

    const own = privateChat(ADMIN);
    await link(own, ADMIN);
    const answer = await ask(tg.text(own, ADMIN, "telegram-link --scope team:ads --kinds daily"));
    const code = /send \/link ([0-9A-HJKMNP-TV-Z]{16})$/m.exec(answer.text)?.[1];
    assert.ok(code, answer.text);
    assert.ok(answer.text.includes(`https://t.me/${FAKE_BOT_USERNAME}?start=${code}`), answer.text);
    assert.match((await command(group("Ads digest"), VIEWER, `/link ${code}`)).text, /This chat now gets daily for team:ads/);
  });

  test("in a private chat a command reads without its slash", async () => {
    const chat = privateChat(APPROVER);
    await link(chat, APPROVER);
    assert.match((await ask(tg.text(chat, APPROVER, "spend this-month by team"))).text, /^AI spend this-month/);
  });
});

describe("alerts and their buttons", () => {
  let oncall: TelegramChat;
  let breach: SentMessage;
  const press = async (who: TelegramUser, data: string, on = breach) => {
    const update = tg.press(on, who, data);
    assert.equal((await post(update)).status, 200);
    await waitFor("the press answered", () => tg.answerOf(update) !== undefined);
    return { update, answer: tg.answerOf(update)!.params as { text: string; show_alert: boolean } };
  };
  const budgetId = async () => ((await (await t.admin(`/api/budgets/${BUDGET}`)).json()) as { id: string }).id;

  let approvers: TelegramChat;

  before(async () => {
    oncall = group("Search alerts");
    await link(oncall);
    approvers = group("Approvers");
    await link(approvers, ADMIN, { scope: {}, kinds: ["approvals"] });
    const res = await t.admin("/api/budgets", { method: "POST", body: JSON.stringify({ name: BUDGET, scope: { team: "search", project: "web" }, amount_usd: "6", period: "month" }) });
    assert.equal(res.status, 201, await res.clone().text());
    // $4.00 of $6.00 is already past 50 %: that alert goes out first.
    await waitFor("the 50 % alert", () => tg.messagesIn(oncall.id).some((m) => m.text.includes(`${BUDGET} passed 50 %`)));
  });

  test("a breach reaches the linked chat with Mute 24 h, Request a raise and Breakdown, each chat waiting only for its own 429", async () => {
    const quiet = privateChat(person(3001, "Quiet"));
    await link(quiet, ADMIN);
    tg.rateLimit("sendMessage", 1, { chatId: oncall.id });
    await spend(key, 2, { team: "search", project: "web", feature: FEATURE });
    const isBreach = (m: SentMessage) => m.text.includes(`${BUDGET} passed 100 %`);
    await waitFor("the breach in both chats", () => tg.messagesIn(oncall.id).some(isBreach) && tg.messagesIn(quiet.id).some(isBreach));
    breach = tg.messagesIn(oncall.id).find(isBreach)!;

    const sends = tg.callsOf("sendMessage").filter((c) => String(c.params.text).includes(`${BUDGET} passed 100 %`));
    const toOncall = sends.filter((c) => c.params.chat_id === oncall.id);
    assert.equal(toOncall.length, 2, "refused with 429, sent again after retry_after");
    assert.ok(sends.findIndex((c) => c.params.chat_id === quiet.id) < sends.indexOf(toOncall[1]!), "the other chat did not wait for it");
    const breachRow = async () =>
      (
        await t.gateway.database.rows<{ attempts: number; status: string }>(
          sql`select n.attempts, n.status from notifications n join channels c on c.id = n.channel_id
              where c.address = ${JSON.stringify({ chat_id: oncall.id })}::jsonb and n.payload::text like ${`%${BUDGET} passed 100 \\%%`}`,
        )
      )[0];
    await waitFor("the breach's outbox row settled", async () => (await breachRow())?.status === "delivered");
    const row = await breachRow();
    assert.equal(row?.attempts, 2);

    assert.match(breach.text, /Spent: \$6\.00 of \$6\.00 \(100 %\)/);
    assert.ok(breach.text.includes(`${FEATURE}  $`), breach.text);
    const id = await budgetId();
    assert.deepEqual(breach.reply_markup?.inline_keyboard, [
      [
        { text: "Request a raise", callback_data: `r:${id}` },
        { text: "Mute 24 h", callback_data: `m:${id}` },
        { text: "Breakdown", callback_data: `b:${id}` },
      ],
    ]);
  });

  test("Mute acts at once for a requester, is refused to a viewer, and a retried press is answered once", async () => {
    const id = await budgetId();
    const refused = await press(VIEWER, `m:${id}`);
    assert.equal(refused.answer.show_alert, true);
    assert.match(refused.answer.text, /alerts mute needs the requester role/);

    const pressed = await press(REQUESTER, `m:${id}`);
    assert.equal(pressed.answer.show_alert, false);
    assert.match(pressed.answer.text, new RegExp(`^${BUDGET} muted here for 24h`));
    assert.equal((await post(pressed.update)).status, 200, "Telegram retrying the same update");
    await waitFor("the mute told in the chat", () => tg.messagesIn(oncall.id).some((m) => m.reply_to === breach.message_id && /muted here for 24h/.test(m.text)));
    const { mutes } = (await (await t.admin("/api/mutes")).json()) as { mutes: { channel_id: string; budget: { name: string } }[] };
    const channel = await telegramChannel(oncall.id);
    assert.deepEqual(mutes.filter((m) => m.channel_id === channel!.id).map((m) => m.budget.name), [BUDGET]);
    await command(oncall, VIEWER, "/help");
    assert.equal(tg.callsOf("answerCallbackQuery").filter((c) => c.params.callback_query_id === pressed.update.callback_query.id).length, 1);
  });

  test("Breakdown answers with the budget's spend split by the dimension that best splits it", async () => {
    const { answer } = await press(VIEWER, `b:${await budgetId()}`);
    assert.match(answer.text, /^AI spend this-month/);
    await waitFor("the breakdown", () => tg.messagesIn(oncall.id).some((m) => m.reply_to === breach.message_id && /^AI spend this-month/.test(m.text)));
  });

  test("Request a raise asks with ForceReply; only the presser's reply files it, once", async () => {
    const id = await budgetId();
    const { answer } = await press(REQUESTER, `r:${id}`);
    assert.match(answer.text, /Reply to my question/);
    await waitFor("the question", () => tg.messagesIn(oncall.id).some((m) => m.reply_markup?.force_reply === true));
    const question = tg.messagesIn(oncall.id).find((m) => m.reply_markup?.force_reply === true)!;
    assert.match(question.text, new RegExp(`^@rob, reply to this message with the new amount for ${BUDGET} and why`));
    assert.deepEqual(question.entities[0], { type: "text_link", offset: 0, length: 4, url: `tg://user?id=${REQUESTER.id}` });
    assert.equal(question.reply_markup?.selective, true);

    assert.match((await ask(tg.text(oncall, APPROVER, "900 mine", question))).text, /for whoever pressed Request raise/);
    assert.match((await ask(tg.text(oncall, REQUESTER, "lots please", question))).text, /"lots" is not an amount/);
    assert.match((await ask(tg.text(oncall, REQUESTER, "800", question))).text, /Say why after the amount/);
    const filed = await ask(tg.text(oncall, REQUESTER, "$800 launch week <doubles> & more", question));
    assert.match(filed.text, new RegExp(`^Raise requested for ${BUDGET}`));
    assert.match(filed.text, /Reason: launch week <doubles> & more/);
    assert.match((await ask(tg.text(oncall, REQUESTER, "900 again", question))).text, /answered already/);

    const { approvals } = (await (await t.admin("/api/approvals?status=pending")).json()) as { approvals: { budget: string; to_usd: string; requested_by: string; reason: string }[] };
    const mine = approvals.filter((a) => a.budget === BUDGET);
    assert.equal(mine.length, 1);
    assert.equal(mine[0]!.requested_by, `telegram:${REQUESTER.id}`);
    assert.equal(mine[0]!.reason, "launch week <doubles> & more");
  });

  test("approvers decide with Approve, once however often it is pressed; the breach is edited to say so", async () => {
    const isRequest = (m: SentMessage) => m.reply_markup?.inline_keyboard?.[0]?.[0]?.callback_data?.startsWith("a:");
    await waitFor("the request in the approvers' chat", () => tg.messagesIn(approvers.id).some(isRequest));
    const request = tg.messagesIn(approvers.id).find(isRequest)!;
    // Named as Telegram names them: the member has no name of its own.
    assert.match(request.text, new RegExp(`^🙋 @${REQUESTER.username} asks to raise ${BUDGET} to \\$800\\.00`));
    const approve = request.reply_markup!.inline_keyboard[0][0].callback_data as string;

    assert.match((await press(REQUESTER, approve, request)).answer.text, /budget approve needs the approver role/);
    const approved = await press(APPROVER, approve, request);
    assert.match(approved.answer.text, /^Request apr_\w+ approved$/);
    const again = await press(APPROVER, approve, request);
    assert.equal(again.answer.show_alert, true);
    assert.match(again.answer.text, /already approved/);
    assert.equal(((await (await t.admin(`/api/budgets/${BUDGET}`)).json()) as { amount_usd: string }).amount_usd, "800");

    // Where it was asked, the breach itself now tells the outcome; approvers see their request edited too.
    await waitFor("the breach edited", () => tg.messagesIn(oncall.id).some((m) => m.message_id === breach.message_id && m.edits > 0));
    assert.match(tg.messagesIn(oncall.id).find((m) => m.message_id === breach.message_id)!.text, new RegExp(`✅ Approved by @${APPROVER.username}: \\$6\\.00 → \\$800\\.00`));
    await waitFor("the request edited", () => request.edits > 0);
  });

  test("a viewer pressing Request a raise is told the role it needs; buttons in an unlinked chat explain linking", async () => {
    const refused = await press(VIEWER, `r:${await budgetId()}`);
    assert.equal(refused.answer.show_alert, true);
    assert.match(refused.answer.text, /budget raise needs the requester role/);
    const stranger = group("Forwarded to");
    const elsewhere = await press(ADMIN, `m:${await budgetId()}`, { ...breach, chat: stranger });
    assert.equal(elsewhere.answer.show_alert, true);
    assert.match(elsewhere.answer.text, /This chat is not linked to Tollgate/);
    const junk = await press(ADMIN, "z:nothing");
    assert.match(junk.answer.text, /does nothing any more/);
  });

  test("a chat the bot was removed from is disabled, not retried forever", async () => {
    const gone = group("Gone");
    await link(gone, ADMIN, { scope: { team: "search", project: "gone" }, kinds: ["alerts"] });
    tg.removeBot(gone.id);
    const res = await t.admin("/api/budgets", { method: "POST", body: JSON.stringify({ name: "search-gone", scope: { team: "search", project: "gone" }, amount_usd: "1", period: "month" }) });
    assert.equal(res.status, 201, await res.clone().text());
    await spend(key, 2, { team: "search", project: "gone" });
    await waitFor("the channel disabled", async () => (await telegramChannel(gone.id))?.enabled === false);
    assert.match((await telegramChannel(gone.id))!.disabled_reason ?? "", /bot was kicked/);
  });
});

describe("polling mode and the CLI", () => {
  test("long polling answers updates, and a restarted gateway does not process an update twice", async () => {
    const chat = privateChat(person(4001, "Poller"));
    const first = tg.command(chat, VIEWER, "/help");
    const polling = { ...env({ TELEGRAM_MODE: "polling" }), TELEGRAM_WEBHOOK_SECRET: "" };
    const a = await startTestGateway(polling, { database: t.gateway.database, integrations: [telegramIntegration({ pace: FAST })] });
    try {
      tg.queue(first);
      await waitFor("the polled update answered", () => answerTo(first) !== undefined);
      assert.match(answerTo(first)!.text, /^This chat is not linked/);
    } finally {
      await a.close();
    }
    // A new process polls from the start and is handed the same update again.
    const b = await startTestGateway(polling, { database: t.gateway.database, integrations: [telegramIntegration({ pace: FAST })] });
    try {
      const next = tg.command(chat, VIEWER, "/spend");
      tg.queue(first);
      tg.queue(next);
      await waitFor("the next update answered", () => answerTo(next) !== undefined);
      assert.equal(tg.messagesIn(chat.id).filter((m) => m.reply_to === first.message.message_id).length, 1);
    } finally {
      await b.close();
    }
  });

  test("tollgate telegram set-webhook registers the URL with the secret and the allowed updates; link prints a code", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tollgate-cli-"));
    try {
      const cliEnv = { ...env(), TOLLGATE_URL: t.base, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN };
      const run = (...args: string[]) => runCli(dataDir, ["telegram", ...args], cliEnv);
      const [set, plain, linked, missing] = await Promise.all([
        run("set-webhook", "--url", "https://tollgate.example/telegram/webhook"),
        run("set-webhook", "--url", "http://tollgate.example/telegram/webhook"),
        run("link", "--scope", "team:search", "--kinds", "alerts,daily"),
        run("link"),
      ]);
      assert.equal(set.code, 0, set.stderr);
      assert.deepEqual(tg.callsOf("setWebhook").map((c) => c.params), [
        { url: "https://tollgate.example/telegram/webhook", secret_token: SECRET, allowed_updates: ["message", "callback_query"] },
      ]);
      assert.ok(!set.stdout.includes(SECRET) && !set.stdout.includes(tg.token), "secrets are never printed");
      assert.equal(plain.code, 2);
      assert.match(plain.stderr, /Telegram only posts to https/);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /--scope team:search/);

      assert.equal(linked.code, 0, linked.stderr);
      const code = /code: (\S+)/.exec(linked.stdout)![1]!;
      assert.match(linked.stdout, new RegExp(`/link ${code}`));
      assert.match(linked.stdout, new RegExp(`https://t.me/${FAKE_BOT_USERNAME}\\?start=${code}`));
      const chat = group("From the CLI");
      assert.match((await command(chat, ADMIN, `/link ${code}`)).text, /This chat now gets alerts, daily for team:search/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
