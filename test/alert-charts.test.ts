import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Telegram } from "telegraf";
import { slackDeliverer } from "../integrations/slack/deliver.ts";
import { createAdapter } from "../integrations/teams/bot.ts";
import { teamsDeliverer } from "../integrations/teams/deliver.ts";
import { teamsSettings } from "../integrations/teams/settings.ts";
import { telegramDeliverer } from "../integrations/telegram/deliver.ts";
import { ChatPacer } from "../integrations/telegram/pacer.ts";
import type { Alert } from "../src/alerts/alert.ts";
import { readPayload } from "../src/alerts/outbox.ts";
import { loadConfig } from "../src/config.ts";
import type { DeliveryTarget } from "../src/integration.ts";
import { createLogger } from "../src/logger.ts";
import { type FakeConnector, startFakeConnector } from "./fakes/bot-connector.ts";
import { type FakeSlack, startFakeSlack } from "./fakes/slack-api.ts";
import { type FakeTelegram, startFakeTelegram } from "./fakes/telegram-api.ts";
import { sampleAlert, sampleChartedAlert, sampleDigest } from "./helpers/sample-alert.ts";

/*
 * Alerts with charts (a digest's trend, a budget's period so far) delivered by each platform's
 * deliverer, the real SDKs talking to the fakes of the platforms' APIs, which check the chart
 * limits each platform documents; and an alert stored before charts existed, delivered as it was.
 */

const logger = createLogger("silent");
const ctx = () => ({ now: new Date(), signal: AbortSignal.timeout(8000), publicUrl: undefined });
const message = (alerts: Alert[]) => ({ id: 1, dedupeKey: "d", attempt: 1, payload: { alerts }, createdAt: new Date() });
const target = (platform: string, address: Record<string, unknown>): DeliveryTarget => ({ id: `c-${platform}`, platform, name: "x", address, secret: null, timezone: "UTC" });

/** An alert as a gateway before charts stored it: version 2, without `movers` or `chart`. */
function storedBeforeCharts(): Alert {
  const { movers: _m, chart: _c, ...old } = sampleAlert({ id: "old:1" });
  const read = readPayload(JSON.parse(JSON.stringify({ alerts: [{ ...old, version: 2 }] })));
  assert.ok(read.ok, read.ok ? "" : read.message);
  assert.equal(read.payload.alerts[0]!.chart, null);
  assert.deepEqual(read.payload.alerts[0]!.movers, []);
  return read.payload.alerts[0]!;
}

describe("Slack", () => {
  let slack: FakeSlack;
  before(async () => {
    slack = await startFakeSlack();
  });
  after(() => slack.close());

  const deliverer = () => slackDeliverer({ SLACK_BOT_TOKEN: slack.botToken, SLACK_API_URL: slack.apiUrl }, logger);
  const lastPost = () => slack.callsOf("chat.postMessage").at(-1)!.args as { blocks: { type: string }[]; text: string };

  test("a digest and a budget alert go with Slack's own line charts, within its limits", async () => {
    const outcome = await deliverer().deliver(target("slack", { channel_id: "C0CHARTS" }), message([sampleDigest(), sampleChartedAlert()]), ctx());
    assert.equal(outcome.kind, "delivered");
    assert.equal(lastPost().blocks.filter((b) => b.type === "data_visualization").length, 2);
  });

  test("a workspace that refuses chart blocks gets the same alert once more with the charts as text, not retried until dead", async () => {
    slack.refuseNativeBlocks(true);
    try {
      const before = slack.callsOf("chat.postMessage").length;
      const outcome = await deliverer().deliver(target("slack", { channel_id: "C0CHARTS" }), message([sampleDigest()]), ctx());
      assert.equal(outcome.kind, "delivered");
      assert.equal(slack.callsOf("chat.postMessage").length, before + 2, "refused once, then sent with text charts");
      const sent = lastPost();
      assert.ok(!sent.blocks.some((b) => b.type === "data_visualization"));
      assert.match(JSON.stringify(sent.blocks), /Mon 9 Nov: Last 7 days \$10\.00, 7 days before \$5\.00/);
    } finally {
      slack.refuseNativeBlocks(false);
    }
  });

  test("an alert stored before charts existed is delivered without one", async () => {
    const outcome = await deliverer().deliver(target("slack", { channel_id: "C0CHARTS" }), message([storedBeforeCharts()]), ctx());
    assert.equal(outcome.kind, "delivered");
    assert.ok(!lastPost().blocks.some((b) => b.type === "data_visualization"));
  });
});

describe("Teams", () => {
  let connector: FakeConnector;
  before(async () => {
    connector = await startFakeConnector();
  });
  after(() => connector.close());

  const deliver = (alerts: Alert[]) => {
    const config = teamsSettings(loadConfig({ TEAMS_AUTH: "off", TOLLGATE_DATA_DIR: "/tmp" }));
    const address = { service_url: connector.serviceUrl, tenant_id: "tenant-1", conversation_id: "19:charts@thread.tacv2" };
    return teamsDeliverer(createAdapter(config, logger), config, logger).deliver(target("teams", address), message(alerts), ctx());
  };
  const charts = (value: unknown): string[] => JSON.stringify(value).match(/"type":"Chart\.[A-Za-z]+"/g) ?? [];

  test("a digest and a budget alert go as a card with two Chart.Line elements, which the connector's chart check accepts", async () => {
    const outcome = await deliver([sampleDigest(), sampleChartedAlert()]);
    assert.equal(outcome.kind, "delivered", JSON.stringify(outcome));
    const sent = connector.calls.filter((c) => c.method === "POST").at(-1)!;
    assert.deepEqual(charts(sent.body), ['"type":"Chart.Line"', '"type":"Chart.Line"']);
  });

  test("an alert stored before charts existed is delivered without one", async () => {
    assert.equal((await deliver([storedBeforeCharts()])).kind, "delivered");
    assert.deepEqual(charts(connector.calls.filter((c) => c.method === "POST").at(-1)!.body), []);
  });
});

describe("Telegram", () => {
  let tg: FakeTelegram;
  const chat = { id: -100777, type: "group" as const, title: "Charts" };
  before(async () => {
    tg = await startFakeTelegram();
    tg.addChat(chat);
  });
  after(() => tg.close());

  const deliver = (alerts: Alert[]) =>
    telegramDeliverer(new Telegram(tg.token, { apiRoot: tg.apiRoot, webhookReply: false }), new ChatPacer({ perChatMs: 10, perGroupPerMinute: 1000, minuteMs: 60_000 }), logger).deliver(
      target("telegram", { chat_id: chat.id }),
      message(alerts),
      ctx(),
    );

  test("the message goes first, then each chart as a PNG photo in reply to it; the text does not repeat the drawn chart", async () => {
    const outcome = await deliver([sampleDigest()]);
    assert.equal(outcome.kind, "delivered");
    const [text, photo] = tg.messagesIn(chat.id).slice(-2);
    assert.ok(text && photo);
    assert.match(text.text, /Top movers by feature\n• search: \+\$27\.50 \(\$12\.50 → \$40\.00\)/);
    assert.ok(!text.text.includes("Mon 9 Nov"), text.text);
    assert.match(photo.photo?.filename ?? "", /\.png$/);
    assert.deepEqual([...(photo.photo?.bytes.subarray(0, 8) ?? [])], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.equal(photo.reply_to, text.message_id);
    assert.equal(photo.text, "Daily spend, team:search");
    assert.deepEqual(outcome.kind === "delivered" && outcome.externalRef, { chat_id: chat.id, message_id: text.message_id });
  });

  test("an alert stored before charts existed is delivered without a photo", async () => {
    const photos = tg.callsOf("sendPhoto").length;
    assert.equal((await deliver([storedBeforeCharts()])).kind, "delivered");
    assert.equal(tg.callsOf("sendPhoto").length, photos);
  });
});
