import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { reply } from "../commands/reply.ts";
import { ChatPacer } from "../integrations/telegram/pacer.ts";
import { LIMITS, alertsMessage, callbackData, escapeClipped, escapeHtml, keyboard, parseCallbackData, raiseQuestion, replyMessage } from "../integrations/telegram/render.ts";
import type { Alert } from "../src/alerts/alert.ts";
import { parseTelegramHtml } from "./fakes/telegram-api.ts";
import { sampleAlert, sampleDigest } from "./helpers/sample-alert.ts";

/*
 * The pure parts of the Telegram integration: the HTML renderer, checked with the fake Bot API's
 * parser (Telegram's HTML rules), and the per-chat pacing rules, on a clock the test turns.
 */

const NASTY = "<b>search</b> & <i>co</i> &amp; </pre>";

/** What a person reads, and the entities, as Telegram would parse the HTML; fails on HTML Telegram refuses. */
const read = (html: string) => parseTelegramHtml(html);

/** The sample alert in April 2026, with a usage value full of HTML; each its own id (the pacing tests tell them apart). */
const alert = (overrides: Partial<Alert> = {}): Alert =>
  sampleAlert({
    id: `firing:${Math.random()}`,
    summary: "$400.00 of $500.00 (80 %) spent on team:search in April 2026.",
    budget: { id: "3f2b8c1e-0c9a-4d5e-9b7a-1c2d3e4f5a6b", name: "search-monthly", scope: { team: "search" }, mode: "hard", period: "month" },
    spend_usd: "400",
    percent: 80,
    period: { start: "2026-04-01T00:00:00.000Z", end: "2026-05-01T00:00:00.000Z" },
    forecast_usd: "612.5",
    top: [
      { dimension: "feature", key: NASTY, spend_usd: "300" },
      { dimension: "feature", key: "autocomplete", spend_usd: "100" },
    ],
    at: "2026-04-20T10:15:00.000Z",
    ...overrides,
  });

describe("escaping", () => {
  test("&, < and > become entities; the text reads back as it was", () => {
    assert.equal(escapeHtml(NASTY), "&lt;b&gt;search&lt;/b&gt; &amp; &lt;i&gt;co&lt;/i&gt; &amp;amp; &lt;/pre&gt;");
    assert.equal(read(escapeHtml(NASTY)).text, NASTY);
  });

  test("clipping never cuts an entity in two, and keeps within the limit", () => {
    const amps = "&".repeat(1000);
    for (const max of [1, 4, 5, 6, 99, 100, 2000, 4999, 5000]) {
      const html = escapeClipped(amps, max);
      assert.ok(html.length <= max, `${html.length} > ${max}`);
      const { text } = read(html);
      assert.match(text, /^&*…?$/);
    }
    assert.equal(escapeClipped("short", 100), "short");
  });

  test("a feature named with tags and & arrives as those characters in bars, tables and facts, never as formatting", () => {
    const r = reply({
      title: `AI spend ${NASTY}`,
      summary: NASTY,
      facts: [{ label: NASTY, value: NASTY }],
      bars: { heading: `By ${NASTY}`, rows: [{ label: NASTY, value: "$5.00", share: 1000 }] },
      table: { columns: ["feature", "spent"], rows: [[NASTY, "$5.00"]] },
      notes: [NASTY],
    });
    const { text, entities } = read(replyMessage(r).html);
    assert.equal(text.split(NASTY).length - 1, 8, text);
    // Only Tollgate's own formatting: bold headings and labels, italic notes, pre tables.
    assert.deepEqual([...new Set(entities.map((e) => e.type))].sort(), ["bold", "italic", "pre"]);
    for (const e of entities.filter((x) => x.type === "bold")) assert.ok(!text.slice(e.offset, e.offset + e.length).startsWith("search"));
  });
});

describe("replies", () => {
  test("tables go in <pre> with aligned columns, bars drawn beside their values", () => {
    const r = reply({
      title: "AI spend this-month",
      bars: {
        heading: "By team",
        rows: [
          { label: "search", value: "$5.00", share: 1000 },
          { label: "ads", value: "$1.00", share: 200 },
        ],
      },
    });
    const { text, entities } = read(replyMessage(r).html);
    const pre = entities.find((e) => e.type === "pre")!;
    const lines = text.slice(pre.offset, pre.offset + pre.length).split("\n");
    assert.equal(lines.length, 2);
    assert.equal(lines[0]!.indexOf("$5.00"), lines[1]!.indexOf("$1.00"), "values line up");
    assert.match(lines[0]!, /^search {2}\$5\.00 {2}█{12}$/);
    assert.match(lines[1]!, /^ads {5}\$1\.00 {2}██▍$/);
  });

  test("a long table keeps its header and first rows, says how many more, and stays within 4,096 characters", () => {
    const rows = Array.from({ length: 500 }, (_, i) => [`budget-${i}`, `team:t${i}`, "$1.00 / $2.00", "50 %", "ok", "soft"]);
    const r = reply({ title: "500 budgets", summary: "s".repeat(3000), facts: Array.from({ length: 40 }, (_, i) => ({ label: `f${i}`, value: "v".repeat(200) })), table: { columns: ["budget", "scope", "spent", "used", "state", "mode"], rows }, notes: ["n".repeat(2000)] });
    const { html } = replyMessage(r);
    assert.ok(html.length <= LIMITS.message, String(html.length));
    const { text } = read(html);
    assert.match(text, /budget +scope +spent/);
    assert.match(text, /budget-0 /);
    const more = /…and (\d+) more/.exec(text.slice(text.indexOf("budget  ")));
    assert.ok(more, text.slice(-300));
    const shown = (text.match(/^budget-\d+ /gm) ?? []).length;
    assert.equal(shown + Number(more[1]), 500, "every row is shown or counted");
  });

  test("errors are marked; buttons carry their targets", () => {
    const r = reply({ title: "Not allowed", summary: "budget set needs the admin role", error: true, actions: [{ action: "breakdown", label: "By team", target: "this-month" }] });
    const message = replyMessage(r);
    assert.match(read(message.html).text, /^⚠️ Not allowed/);
    assert.deepEqual(message.keyboard, [[{ text: "By team", callback_data: "b:this-month" }]]);
  });
});

describe("alerts", () => {
  test("one alert: headline, facts, top contributors escaped, and Mute 24 h / Request a raise / Breakdown by budget id", () => {
    const a = alert();
    const message = alertsMessage([a]);
    const { text } = read(message.html);
    assert.match(text, /search-monthly passed 80 % of \$500\.00/);
    assert.match(text, /Spent: \$400\.00 of \$500\.00 \(80 %\)/);
    assert.match(text, /Forecast: \$612\.50/);
    assert.match(text, /Runs out at this pace: 2026-11-27 09:30 UTC/);
    assert.ok(text.includes(`${NASTY}  $300.00`), text);
    assert.deepEqual(
      message.keyboard.flat().map((b) => b.text),
      ["Request a raise", "Mute 24 h", "Breakdown"],
    );
    for (const b of message.keyboard.flat()) {
      assert.equal(b.callback_data.slice(2), a.budget!.id);
      assert.ok(Buffer.byteLength(b.callback_data) <= 64);
    }
  });

  test("a digest: its movers escaped and exact; its chart written out unless it goes as a photo", () => {
    const digest = sampleDigest(NASTY);
    const { text, entities } = read(alertsMessage([digest]).html);
    assert.ok(text.includes(`Top movers by feature\n• ${NASTY}: +$27.50 ($12.50 → $40.00)`), text);
    assert.ok(text.includes(`Daily spend, team:${NASTY}\nMon 9 Nov: Last 7 days $10.00, 7 days before $5.00`), text);
    assert.ok(entities.some((e) => e.type === "pre"));
    // With the chart sent as a photo beside it, the text does not repeat it.
    const beside = read(alertsMessage([digest], new Set([digest])).html).text;
    assert.ok(!beside.includes("Mon 9 Nov"), beside);
    assert.ok(beside.includes("Top movers by feature"));
  });

  test("a budget name too long for callback data still gets its buttons: they name the budget by id", () => {
    const name = `team-search-${"x".repeat(140)}-monthly`;
    const a = alert({ budget: { ...alert().budget!, name }, actions: alert().actions.map((x) => ({ ...x, target: name })) });
    const buttons = alertsMessage([a]).keyboard.flat();
    assert.equal(buttons.length, 3);
    assert.ok(buttons.every((b) => b.callback_data.endsWith(a.budget!.id)));
    assert.equal(callbackData("mute", name), undefined, "a name that long would not fit");
    assert.deepEqual(keyboard([{ action: "mute", label: "Mute", target: name }]), [], "a button whose data cannot fit is left out");
  });

  test("approval alerts carry Approve and Reject by request id", () => {
    const a = alert({
      kind: "approval_requested",
      title: "telegram:42 asks to raise search-monthly to $800.00",
      actions: [
        { action: "approve", label: "Approve $800.00", target: "apr_0123456789ab" },
        { action: "reject", label: "Reject", target: "apr_0123456789ab" },
      ],
      details: { approval_id: "apr_0123456789ab", requested_by: "telegram:42", reason: "launch <week> & more" },
    });
    const message = alertsMessage([a]);
    assert.deepEqual(message.keyboard, [
      [
        { text: "Approve $800.00", callback_data: "a:apr_0123456789ab" },
        { text: "Reject", callback_data: "x:apr_0123456789ab" },
      ],
    ]);
    assert.match(read(message.html).text, /Reason: launch <week> & more/);
  });

  test("many alerts in one message: as many as fit, then …and N more, within 4,096 characters", () => {
    const many = Array.from({ length: 40 }, (_, i) => alert({ title: `budget-${i} passed 80 %`, budget: { ...alert().budget!, id: `id-${i}`, name: `budget-${i}` } }));
    const message = alertsMessage(many);
    assert.ok(message.html.length <= LIMITS.message, String(message.html.length));
    const { text } = read(message.html);
    const shown = (text.match(/budget-\d+ passed 80 %/g) ?? []).length;
    assert.ok(shown >= 3, `only ${shown} shown`);
    assert.match(text, new RegExp(`…and ${40 - shown} more$`));
    assert.equal(message.keyboard.length, shown, "one row of buttons per alert shown");
    assert.match(message.keyboard[0]![0]!.text, /: budget-0$/, "with several alerts, buttons name their budget");
  });

  test("callback data reads back; data Tollgate never made reads as nothing", () => {
    assert.deepEqual(parseCallbackData("m:3f2b"), { action: "mute", target: "3f2b" });
    assert.deepEqual(parseCallbackData("a:apr_1:2"), { action: "approve", target: "apr_1:2" });
    for (const junk of ["", "m:", "q:x", "nothing"]) assert.equal(parseCallbackData(junk), undefined, junk);
  });

  test("the raise question mentions the person and escapes their name and the budget's", () => {
    const html = raiseQuestion("search-<monthly>", { id: 42, name: "Ana & <Bob>" });
    const { text, entities } = read(html);
    assert.match(text, /^Ana & <Bob>, reply to this message with the new amount for search-<monthly> and why/);
    assert.deepEqual(entities[0], { type: "text_link", offset: 0, length: "Ana & <Bob>".length, url: "tg://user?id=42" });
  });
});

describe("pacing per chat", () => {
  test("a chat gets a message a second at most; other chats are not held up", () => {
    const pacer = new ChatPacer();
    assert.equal(pacer.reserve(1, 0), 0);
    assert.equal(pacer.reserve(1, 0), 1000);
    assert.equal(pacer.reserve(1, 100), 1900);
    assert.equal(pacer.reserve(2, 100), 0, "another chat goes at once");
    assert.equal(pacer.earliest(1, 5000), 5000);
  });

  test("a group gets at most 20 messages in any minute", () => {
    const pacer = new ChatPacer();
    const group = -1001234;
    let now = 0;
    for (let i = 0; i < 20; i++) {
      assert.equal(pacer.reserve(group, now), 0, `message ${i}`);
      now += 1000;
    }
    // The 21st waits until the first leaves the minute.
    assert.equal(pacer.reserve(group, now), 60_000 - now);
    // A private chat has no per-minute cap.
    for (let i = 0; i < 30; i++) assert.equal(pacer.reserve(7, i * 1000), 0);
  });

  test("a 429 holds only that chat for retry_after", () => {
    const pacer = new ChatPacer();
    pacer.hold(1, 7000, 0);
    assert.equal(pacer.earliest(1, 0), 7000);
    assert.equal(pacer.earliest(2, 0), 0);
    assert.equal(pacer.reserve(1, 3000), 4000);
    assert.equal(pacer.earliest(1, 20_000), 20_000);
  });
});
