import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import { reply } from "../commands/reply.ts";
import { clip, fitLines } from "../commands/truncate.ts";
import { type DataVisualizationBlock, LIMITS, alertsMessage, chartBlock, escapeMrkdwn, raiseModal, replyMessage } from "../integrations/slack/blocks.ts";
import { homeView } from "../integrations/slack/home.ts";
import { Chart } from "../src/charts/chart.ts";
import type { Alert } from "../src/alerts/alert.ts";
import { VIEW_BLOCKS, blockProblems } from "./fakes/slack-api.ts";
import { gatewayRegistry } from "./helpers/registry.ts";
import { sampleAlert, sampleChartedAlert, sampleDigest } from "./helpers/sample-alert.ts";

/** Every string of a value, deep: what could reach Slack's parser. */
function strings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === "object") return Object.values(value).flatMap(strings);
  return [];
}

/** The text of every mrkdwn object, deep. */
function mrkdwnTexts(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(mrkdwnTexts);
  if (!value || typeof value !== "object") return [];
  const o = value as Record<string, unknown>;
  return [...(o.type === "mrkdwn" && typeof o.text === "string" ? [o.text] : []), ...Object.values(o).flatMap(mrkdwnTexts)];
}

/** Slack control sequences: `<!channel>`, `<!here>`, `<@U123>`, `<#C123>`, `<https://…|…>`. */
const CONTROL = /<[!@#]|<https?:/;

const INJECTIONS = ["<!channel>", "<!here|here>", "<@U0BOSS>", "<#C0SECRET>", "<https://evil.example|Click me>", "a & b > c"];

/** The sample alert, with a usage value that would be a control sequence if it were not escaped. */
const threshold = (overrides: Partial<Alert> = {}): Alert =>
  sampleAlert({
    top: [
      { dimension: "feature", key: "autocomplete", spend_usd: "300" },
      { dimension: "feature", key: "<!channel>", spend_usd: "112.5" },
    ],
    ...overrides,
  });

describe("mrkdwn escaping", () => {
  test("&, < and > become entities, in that order", () => {
    assert.equal(escapeMrkdwn("<!channel> & <@U1>"), "&lt;!channel&gt; &amp; &lt;@U1&gt;");
    assert.equal(escapeMrkdwn("&lt;"), "&amp;lt;");
  });

  test("mrkdwn's marks at a word's edge become look-alikes; inside a word they stay, so ids can be typed back", () => {
    assert.equal(escapeMrkdwn("*bold* _it_ ~x~"), "∗bold∗ ˍitˍ ∼x∼");
    assert.equal(escapeMrkdwn("apr_3f9a1c2e4b7d team_search a*b"), "apr_3f9a1c2e4b7d team_search a*b");
    assert.equal(escapeMrkdwn("_"), "ˍ");
  });

  test("no value from usage data reaches a reply as a control sequence", () => {
    const r = reply({
      title: `AI spend for ${INJECTIONS[0]}`,
      summary: INJECTIONS.join(" "),
      facts: INJECTIONS.map((v, i) => ({ label: `Budget ${v}`, value: `${v} ${i}` })),
      bars: { heading: "By feature", rows: INJECTIONS.map((label) => ({ label, value: "$1.00", share: 500 })) },
      table: { columns: ["budget", "scope"], rows: INJECTIONS.map((v) => [v, `feature:${v}`]) },
      notes: INJECTIONS,
      actions: [{ action: "breakdown", label: "By team", target: "this-week" }],
    });
    const message = replyMessage(r);
    // plain_text (headers, buttons) is shown as typed; only mrkdwn and the notification text are parsed.
    for (const s of [message.text, ...mrkdwnTexts(message.blocks)]) assert.doesNotMatch(s, CONTROL, s);
    assert.match(message.text, /&lt;!channel&gt;/);
    // Slack links nothing on its own in our text: mentions and URLs only come from explicit <…> sequences.
    for (const block of message.blocks) {
      const texts = [(block as { text?: { type: string; verbatim?: boolean } }).text, ...((block as { fields?: { type: string; verbatim?: boolean }[] }).fields ?? [])];
      for (const t of texts) if (t?.type === "mrkdwn") assert.equal(t.verbatim, true);
    }
    assert.deepEqual(blockProblems(message.blocks), []);
  });

  test("a backtick run cannot end the table's code block", () => {
    const message = replyMessage(reply({ title: "Budgets", table: { columns: ["budget"], rows: [["```</code>"], ["x"]] } }));
    const table = message.blocks.find((b) => b.type === "section" && (b as { text: { text: string } }).text.text.startsWith("```")) as { text: { text: string } };
    assert.equal(table.text.text.match(/```/g)?.length, 2);
    assert.match(table.text.text, /ˋˋˋ&lt;\/code&gt;/);
  });

  test("alerts: contributors, reasons and names are escaped; only actor fields become mentions", () => {
    const message = alertsMessage([
      threshold(),
      threshold({
        id: "approval:apr_1:requested",
        kind: "approval_requested",
        title: "slack:U0ROB asks to raise search-monthly to $800.00",
        details: { approval_id: "apr_1", requested_by: "slack:U0ROB", reason: "launch <!here> slack:U0BOSS", from_usd: "500", to_usd: "800" },
        actions: [
          { action: "approve", label: "Approve $800.00", target: "apr_1" },
          { action: "reject", label: "Reject", target: "apr_1" },
        ],
      }),
    ]);
    const all = strings(message.blocks).join("\n");
    assert.match(all, /• &lt;!channel&gt;: \$112\.50/);
    assert.match(all, /\*Requested by\*\n<@U0ROB>/);
    assert.match(all, /\*Reason\*\nlaunch &lt;!here&gt; slack:U0BOSS/);
    assert.doesNotMatch(all, /<@U0BOSS>|<!here>|<!channel>/);
    assert.deepEqual(blockProblems(message.blocks), []);
  });
});

describe("Reply as Block Kit", () => {
  test("a spend reply: header, summary, fields, bars, notes and a button", () => {
    const message = replyMessage(
      reply({
        title: "AI spend this-week",
        summary: "$1,234.56 over 9,876 requests; +12.3 % against the same time last period ($1,099.00).",
        facts: [{ label: "Period", value: "2026-11-16 to 2026-11-22 (UTC)" }],
        bars: {
          heading: "By team",
          rows: [
            { label: "search", value: "$900.00", share: 1000 },
            { label: "ads", value: "$334.56", share: 372 },
          ],
        },
        notes: ["3 requests used models without a known price and are not in these totals."],
        actions: [{ action: "breakdown", label: "By team", target: "this-week" }],
        visibility: "shared",
      }),
    );
    assert.deepEqual(
      message.blocks.map((b) => b.type),
      ["header", "section", "section", "section", "context", "actions"],
    );
    assert.deepEqual(message.blocks[0], { type: "header", text: { type: "plain_text", text: "AI spend this-week", emoji: false } });
    assert.deepEqual((message.blocks[2] as { fields: unknown }).fields, [{ type: "mrkdwn", text: "*Period*\n2026-11-16 to 2026-11-22 (UTC)", verbatim: true }]);
    assert.equal(
      (message.blocks[3] as { text: { text: string } }).text.text,
      "*By team*\n`████████████████`  $900.00  search\n`██████          `  $334.56  ads",
    );
    assert.deepEqual((message.blocks[5] as { elements: unknown }).elements, [
      { type: "button", action_id: "tollgate:breakdown", text: { type: "plain_text", text: "By team", emoji: false }, value: "this-week" },
    ]);
    assert.equal(message.text, "AI spend this-week: $1,234.56 over 9,876 requests; +12.3 % against the same time last period ($1,099.00).");
  });

  test("every chart kind is a data_visualization Slack takes: a stacked one as bars side by side", () => {
    const base = { title: "Daily spend by team", categories: ["2026-12-01", "2026-12-02"], unit: "usd" as const };
    const types = (["bar", "line", "stacked", "pie", "donut"] as const).map((kind) => {
      const series = kind === "pie" || kind === "donut" ? [{ name: "spend", values: ["1.5", "2"] }] : [{ name: "search", values: ["1.5", "2"] }, { name: "other", values: ["0.25", "0"] }];
      const block = chartBlock(Chart.parse({ ...base, kind, series }));
      assert.deepEqual(blockProblems([block]), [], kind);
      return block.chart.type;
    });
    assert.deepEqual(types, ["bar", "line", "bar", "pie", "pie"]);
    const stacked = chartBlock(Chart.parse({ ...base, kind: "stacked", series: [{ name: "search", values: ["1.5", "2"] }, { name: "other", values: ["0.25", "0"] }] }));
    assert.deepEqual(stacked.chart, {
      type: "bar",
      series: [
        { name: "search", data: [{ label: "2026-12-01", value: 1.5 }, { label: "2026-12-02", value: 2 }] },
        { name: "other", data: [{ label: "2026-12-01", value: 0.25 }, { label: "2026-12-02", value: 0 }] },
      ],
      axis_config: { categories: ["2026-12-01", "2026-12-02"], y_label: "USD" },
    });
  });

  test("a refusal reads as a warning, not a headline", () => {
    const message = replyMessage(reply({ title: "I did not understand that", summary: 'unknown command "spned"; did you mean `spend`?', notes: ["Expected one of spend, budget."], error: true }));
    assert.deepEqual(message.blocks[0], { type: "section", text: { type: "mrkdwn", text: ":warning: *I did not understand that*", verbatim: true } });
    assert.equal((message.blocks[1] as { text: { text: string } }).text.text, 'unknown command "spned"; did you mean `spend`?');
  });

  test("Block Kit limits are kept by cutting with “and N more”", () => {
    const many = Array.from({ length: 400 }, (_, i) => `feature-${i}-${"x".repeat(30)}`);
    const message = replyMessage(
      reply({
        title: "T".repeat(400),
        summary: "s".repeat(5000),
        facts: many.slice(0, 30).map((v) => ({ label: v, value: "v".repeat(3000) })),
        bars: { heading: "By feature", rows: many.map((label) => ({ label, value: "$1.00", share: 10 })) },
        table: { columns: ["a", "b"], rows: many.map((v) => [v, v]) },
        notes: many.slice(0, 14),
        actions: Array.from({ length: 30 }, (_, i) => ({ action: "breakdown" as const, label: "L".repeat(100), target: `t${i}` })),
      }),
    );
    assert.deepEqual(blockProblems(message.blocks), []);
    type Loose = { text: { text: string }; fields: { text: string }[]; elements: { text: string | { text: string }; action_id: string }[] };
    const [header, summary, facts, bars, table, notes, actions] = message.blocks as unknown as Loose[];
    assert.equal(header!.text.text.length, LIMITS.headerText);
    assert.equal(summary!.text.text.length, LIMITS.sectionText);
    const fields = facts!.fields;
    assert.equal(fields.length, 10);
    assert.equal(fields[9]!.text, "…and 21 more");
    assert.ok(fields.every((f) => f.text.length <= LIMITS.fieldText));
    const barText = bars!.text.text;
    assert.ok(barText.length <= LIMITS.sectionText);
    assert.match(barText, /\n…and \d+ more$/);
    const tableText = table!.text.text;
    assert.ok(tableText.length <= LIMITS.sectionText);
    assert.match(tableText, /\n…and \d+ more\n```$/);
    assert.equal(notes!.elements.length, 10);
    assert.equal(notes!.elements[9]!.text, "…and 5 more");
    const buttons = actions!.elements as { text: { text: string }; action_id: string }[];
    assert.equal(buttons.length, LIMITS.actions);
    assert.ok(buttons.every((b) => b.text.text.length === LIMITS.buttonText));
    assert.equal(new Set(buttons.map((b) => b.action_id)).size, buttons.length, "action ids are unique within the block");
  });

  test("a message of many alerts stays within 50 blocks, keeping the count of those left out", () => {
    const alerts = Array.from({ length: 20 }, (_, i) => threshold({ id: `f${i}`, title: `budget-${i} passed 80 %` }));
    const message = alertsMessage(alerts);
    assert.deepEqual(blockProblems(message.blocks), []);
    assert.ok(message.blocks.length <= LIMITS.blocks);
    const shown = message.blocks.filter((b) => b.type === "header").length;
    assert.equal(shown, 7, "whole alerts, as many as fit");
    const last = mrkdwnTexts(message.blocks.at(-1)).join("");
    assert.match(last, /^…and 13 more: budget-7 passed 80 %; budget-8 passed 80 %; .*budget-19 passed 80 %$/);
    assert.equal(message.text, "budget-0 passed 80 % (and 19 more): $412.50 of $500.00 (82 %) spent on team:search in this-month; the period ends 1 Dec 2026, 00:00 UTC.");
  });
});

describe("the Home tab as Block Kit", () => {
  const chart: Chart = { kind: "bar", title: "Spend by team", categories: ["search", "ads"], series: [{ name: "Spend", values: ["3", "1"] }], unit: "usd" };
  const spendReply = (scope: string) =>
    reply({ title: `AI spend this-month for ${scope}`, bars: { heading: "By feature", rows: [{ label: "a", value: "$1.00", share: 1000 }] }, charts: [chart], table: { columns: ["Budget"], rows: [["b"]] } });
  const at = new Date("2026-11-23T14:02:00.000Z");

  test("a tab of many raises keeps to 100 blocks and two charts, counting the raises left out", () => {
    const raises = Array.from({ length: 14 }, (_, i) => ({ request: sampleAlert({ id: `approval:${i}`, title: `rob asks to raise b${i}` }), decidable: true }));
    const home = { about: "You are an approver: you see all AI spend.", spend: [spendReply("team:search"), spendReply("team:ads"), spendReply("team:web")], notes: [], raises, moreRaises: 4 };
    const view = homeView(home, { at, notice: spendReply("team:search") });
    assert.equal(view.type, "home");
    assert.ok(view.blocks.length <= VIEW_BLOCKS, `${view.blocks.length} blocks`);
    assert.deepEqual(blockProblems(view.blocks, "view.blocks", VIEW_BLOCKS), []);
    assert.equal(view.blocks.filter((b) => b.type === "data_visualization").length, 2);
    const shown = view.blocks.filter((b) => b.type === "header" && /asks to raise/.test((b as { text: { text: string } }).text.text)).length;
    assert.ok(shown > 0 && shown < 14, `${shown} raises shown`);
    assert.match(JSON.stringify(view.blocks.at(-1)), new RegExp(`…and ${14 - shown + 4} more raises`));
    const text = homeView(home, { at, native: false });
    assert.equal(text.blocks.filter((b) => b.type === "data_visualization" || b.type === "data_table").length, 0);
  });

  test("a tab that could not be read shows the notice alone", () => {
    const view = homeView(undefined, { at, notice: reply({ title: "Something went wrong", error: true }) });
    assert.equal(view.blocks.length, 1);
    assert.match(JSON.stringify(view.blocks), /Something went wrong/);
  });
});

describe("Alert as Block Kit", () => {
  test("a breach: what, how much, until when, who spends it, and the three buttons", () => {
    const message = alertsMessage([threshold()]);
    assert.deepEqual(
      message.blocks.map((b) => b.type),
      ["header", "section", "section", "section", "context", "actions"],
    );
    const fields = (message.blocks[2] as { fields: { text: string }[] }).fields.map((f) => f.text);
    assert.deepEqual(fields, [
      "*Spent*\n$412.50 of $500.00 (82 %)",
      "*Forecast*\n$610.25",
      "*Budget*\nsearch-monthly (hard, per month)",
      "*Scope*\nteam:search",
      "*Period ends*\n<!date^1796083200^{date_short_pretty} at {time}|2026-12-01T00:00:00.000Z>",
      "*Runs out at this pace*\n<!date^1795771800^{date_short_pretty} at {time}|2026-11-27T09:30:00.000Z>",
    ]);
    assert.equal((message.blocks[3] as { text: { text: string } }).text.text, "*Top features*\n• autocomplete: $300.00\n• &lt;!channel&gt;: $112.50");
    const buttons = (message.blocks[5] as unknown as { elements: Record<string, unknown>[] }).elements;
    assert.deepEqual(
      buttons.map((b) => [b.action_id, b.value, b.style]),
      [
        ["tollgate:request_raise", "search-monthly", "primary"],
        ["tollgate:mute", "search-monthly", undefined],
        ["tollgate:breakdown", "search-monthly", undefined],
      ],
    );
    assert.match(JSON.stringify(buttons[1]!.confirm), /No alerts about search-monthly in this channel for 24 hours/);
  });

  test("a digest: its daily trend as a native line chart, its movers exact, usage names inert in the chart and escaped in text", () => {
    const name = "<!channel> & <https://evil.example|x>";
    const message = alertsMessage([sampleDigest(name)]);
    assert.deepEqual(blockProblems(message.blocks), []);
    const charts = message.blocks.filter((b) => b.type === "data_visualization") as DataVisualizationBlock[];
    assert.equal(charts.length, 1);
    const chart = charts[0]!.chart as { type: string; series: { name: string; data: { label: string; value: number }[] }[]; axis_config: { categories: string[] } };
    assert.equal(chart.type, "line");
    assert.deepEqual(chart.series.map((x) => x.name), ["Last 7 days", "7 days before"]);
    assert.deepEqual(chart.axis_config.categories, ["Mon 9 Nov", "Tue 10 Nov", "Wed 11 Nov", "Thu 12 Nov", "Fri 13 Nov", "Sat 14 Nov", "Sun 15 Nov"]);
    assert.deepEqual(chart.series[0]!.data.map((d) => d.value), [10, 10, 12.5, 7.5, 10, 10, 10]);
    assert.ok(charts[0]!.title.length <= 50 && !/[<>]/.test(charts[0]!.title), charts[0]!.title);
    const all = strings(message.blocks).join("\n");
    assert.match(all, /\*Top movers by feature\*\n• &lt;!channel&gt; &amp; &lt;https:\/\/evil\.example\|x&gt;: \+\$27\.50 \(\$12\.50 → \$40\.00\)/);
    // Chart strings are plain text to Slack: no `<` to start a control sequence; mrkdwn has only entities.
    assert.ok(strings(charts).every((x) => !x.includes("<")), JSON.stringify(charts));
    assert.doesNotMatch(mrkdwnTexts(message.blocks).join("\n"), /<!channel>|<https/);
  });

  test("charts: Slack's own blocks for two a message, text for the rest and when native blocks are off", () => {
    const three = [sampleChartedAlert({ id: "a" }), sampleChartedAlert({ id: "b" }), sampleDigest("ads")];
    const message = alertsMessage(three);
    assert.deepEqual(blockProblems(message.blocks), []);
    assert.equal(message.blocks.filter((b) => b.type === "data_visualization").length, 2);
    const texts = mrkdwnTexts(message.blocks).join("\n");
    assert.match(texts, /\*Daily spend, team:ads\*\n```\nMon 9 Nov: Last 7 days \$10\.00, 7 days before \$5\.00\n/);
    // A 20-bucket budget chart is within Slack's 20 categories as it is.
    const budget = message.blocks.find((b) => b.type === "data_visualization") as DataVisualizationBlock;
    assert.equal((budget.chart as { axis_config: { categories: string[] } }).axis_config.categories.length, 20);
    assert.deepEqual((budget.chart as { series: { name: string }[] }).series.map((x) => x.name), ["Spent", "Budget"]);

    const plainText = alertsMessage(three, { native: false });
    assert.deepEqual(plainText.blocks.filter((b) => b.type === "data_visualization"), []);
    assert.match(mrkdwnTexts(plainText.blocks).join("\n"), /\*search-monthly: this-month so far\*\n```\n1 Nov: Spent \$20\.63, Budget \$500\.00\n/);
    assert.deepEqual(blockProblems(plainText.blocks), []);
  });

  test("a decided raise says who decided, when, and the change; nothing is left to press", () => {
    const decided = alertsMessage([
      threshold({
        id: "approval:apr_1:approved",
        kind: "approval_decided",
        title: "Raise of search-monthly to $800.00 approved by slack:U0ANA",
        summary: "search-monthly is now $800.00 a month (was $500.00).",
        spend_usd: null,
        percent: null,
        period: null,
        forecast_usd: null,
        top: [],
        actions: [],
        details: { approval_id: "apr_1", status: "approved", decided_by: "slack:U0ANA", requested_by: "cli:rob", from_usd: "500", to_usd: "800", reason: "launch" },
      }),
    ]);
    const text = strings(decided.blocks).join("\n");
    assert.match(text, /:white_check_mark: \*Approved\* by <@U0ANA> at <!date\^1795442520\^\{time\}\|2026-11-23T14:02:00\.000Z>: \$500\.00 → \$800\.00/);
    assert.match(text, /\*Requested by\*\ncli:rob/);
    assert.ok(!decided.blocks.some((b) => b.type === "actions"));
  });

  test("the raise form asks for the amount and the reason", () => {
    const view = raiseModal("search-monthly", '{"budget":"search-monthly"}');
    assert.equal(view.callback_id, "tollgate:raise");
    assert.ok(view.title.text.length <= 24);
    assert.deepEqual(
      view.blocks.map((b) => (b as { block_id?: string }).block_id),
      [undefined, "amount", "reason"],
    );
    assert.deepEqual(blockProblems(view.blocks), []);
  });
});

describe("truncation helpers", () => {
  test("clip keeps surrogate pairs whole", () => {
    assert.equal(clip("abcdef", 4), "abc…");
    assert.equal(clip("ab😀cd", 4), "ab…");
    assert.equal(clip("abc", 3), "abc");
  });

  test("fitLines keeps what fits and counts the rest", () => {
    assert.equal(fitLines(["a", "b", "c"], 10), "a\nb\nc");
    assert.equal(fitLines(["aaaa", "bbbb", "cccc", "dddd"], 16), "aaaa\n…and 3 more");
    assert.equal(fitLines(["aaaa", "bbbb", "cccc", "dddd"], 19), "aaaa\nbbbb\ncccc\ndddd");
    assert.equal(fitLines(["x".repeat(50)], 10), `${"x".repeat(9)}…`);
    for (let max = 12; max < 60; max++) assert.ok(fitLines(["aaaa", "bbbb", "cccc", "dddd", "eeee"], max).length <= max, String(max));
  });
});

describe("manifest/slack.yml", () => {
  test("every command, the interactivity and the events point at /slack/events; every command's usage hint parses; the Home tab is on", () => {
    const manifest = parseYaml(readFileSync(new URL("../manifest/slack.yml", import.meta.url), "utf8")) as {
      features: { slash_commands: { command: string; url: string; usage_hint: string }[]; app_home: { home_tab_enabled: boolean } };
      settings: { interactivity: { is_enabled: boolean; request_url: string }; event_subscriptions: { request_url: string; bot_events: string[] } };
      oauth_config: { scopes: { bot: string[] } };
    };
    const commands = manifest.features.slash_commands;
    assert.deepEqual(
      commands.map((c) => c.command),
      ["/spend", "/budget", "/alerts", "/tollgate"],
    );
    for (const c of [...commands.map((c) => c.url), manifest.settings.interactivity.request_url, manifest.settings.event_subscriptions.request_url])
      assert.match(c, /^https:\/\/tollgate\.example\.com\/slack\/events$/);
    assert.equal(manifest.settings.interactivity.is_enabled, true);
    // The Home tab is drawn when it is opened.
    assert.equal(manifest.features.app_home.home_tab_enabled, true);
    assert.deepEqual(manifest.settings.event_subscriptions.bot_events, ["app_home_opened"]);
    assert.deepEqual(manifest.oauth_config.scopes.bot, ["commands", "chat:write", "chat:write.public"]);
    for (const c of commands) {
      const head = c.command === "/tollgate" ? "" : `${c.command.slice(1)} `;
      const first = c.usage_hint.split(" | ")[0]!.replace(/\[|\]/g, "");
      assert.ok(gatewayRegistry().parse(`${head}${first}`).ok, `${c.command} ${first}`);
    }
  });
});
