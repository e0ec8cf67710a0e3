import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AlertsValue } from "../commands/builtin/alerts.ts";
import type { BudgetValue } from "../commands/builtin/budget.ts";
import type { HelpValue } from "../commands/builtin/help.ts";
import { type SpendValue, spend } from "../commands/builtin/spend.ts";
import type { SubscribeValue } from "../commands/builtin/subscribe.ts";
import type { TelegramLinkValue } from "../integrations/telegram/link-command.ts";
import { createRegistry } from "../commands/registry.ts";
import { renderText } from "../commands/render-text.ts";
import { reply } from "../commands/reply.ts";
import { gatewayRegistry } from "./helpers/registry.ts";

type Value = SpendValue | BudgetValue | AlertsValue | SubscribeValue | { verb: "unsubscribe" } | TelegramLinkValue | HelpValue;

const registry = gatewayRegistry();

const USD = 1_000_000_000_000n;
const H = 3_600_000;

/** Input → the exact command it parses to. */
const VALID: [string, Value][] = [
  ["spend", { verb: "spend", period: "this-month", filters: {}, share: false }],
  ["spend this-week", { verb: "spend", period: "this-week", filters: {}, share: false }],
  ["/spend this-week", { verb: "spend", period: "this-week", filters: {}, share: false }],
  ["/spend@TollgateBot today", { verb: "spend", period: "today", filters: {}, share: false }],
  ["SPEND This-Week", { verb: "spend", period: "This-Week", filters: {}, share: false }],
  ["  spend    week  ", { verb: "spend", period: "week", filters: {}, share: false }],
  ["spend mtd", { verb: "spend", period: "mtd", filters: {}, share: false }],
  ["spend 7d", { verb: "spend", period: "7d", filters: {}, share: false }],
  ["spend last month", { verb: "spend", period: "last-month", filters: {}, share: false }],
  ["spend this week by team", { verb: "spend", period: "this-week", by: "team", filters: {}, share: false }],
  ["spend last-month by model team:search", { verb: "spend", period: "last-month", by: "model", filters: { team: "search" }, share: false }],
  ["spend by teams", { verb: "spend", period: "this-month", by: "team", filters: {}, share: false }],
  ["spend by api-key", { verb: "spend", period: "this-month", by: "key", filters: {}, share: false }],
  ["spend 2026-10", { verb: "spend", period: "2026-10", filters: {}, share: false }],
  ["spend 2026-10-01..2026-10-15 by feature", { verb: "spend", period: "2026-10-01..2026-10-15", by: "feature", filters: {}, share: false }],
  ["spend today Team:Search model:gpt-4o", { verb: "spend", period: "today", filters: { team: "Search", model: "gpt-4o" }, share: false }],
  ["spend yesterday share", { verb: "spend", period: "yesterday", filters: {}, share: true }],
  ["spend user:ana@example.com last-30d", { verb: "spend", period: "last-30d", filters: { user: "ana@example.com" }, share: false }],
  ["spend feature:a:b", { verb: "spend", period: "this-month", filters: { feature: "a:b" }, share: false }],
  ["spend this-quarter by provider", { verb: "spend", period: "this-quarter", by: "provider", filters: {}, share: false }],
  ["budget", { verb: "budget.list" }],
  ["budget list", { verb: "budget.list" }],
  ["budgets ls", { verb: "budget.list" }],
  ["budget show search-monthly", { verb: "budget.show", name: "search-monthly" }],
  ["budget set team:search $500 monthly hard", { verb: "budget.set", scope: { team: "search" }, amount: 500n * USD, period: "month", mode: "hard" }],
  ["budget set team:search 500 month", { verb: "budget.set", scope: { team: "search" }, amount: 500n * USD, period: "month", mode: "soft" }],
  ["budget set team:search,model:gpt-4o 50usd daily", { verb: "budget.set", scope: { team: "search", model: "gpt-4o" }, amount: 50n * USD, period: "day", mode: "soft" }],
  ["budget set feature:summarize+model:gpt-4o 50 USD day soft", { verb: "budget.set", scope: { feature: "summarize", model: "gpt-4o" }, amount: 50n * USD, period: "day", mode: "soft" }],
  ["budget set all $1,200.50 quarterly", { verb: "budget.set", scope: {}, amount: 120050n * (USD / 100n), period: "quarter", mode: "soft" }],
  ["budget set everything 1.5k yearly HARD", { verb: "budget.set", scope: {}, amount: 1500n * USD, period: "year", mode: "hard" }],
  ["budget set key:k1 0.25 weekly", { verb: "budget.set", scope: { key: "k1" }, amount: USD / 4n, period: "week", mode: "soft" }],
  ["budget raise search-monthly 800 launch week", { verb: "budget.raise", name: "search-monthly", amount: 800n * USD, reason: "launch week" }],
  ["budget raise search-monthly $800", { verb: "budget.raise", name: "search-monthly", amount: 800n * USD, reason: "" }],
  ["budget raise search-monthly 800usd for the launch", { verb: "budget.raise", name: "search-monthly", amount: 800n * USD, reason: "for the launch" }],
  ["budget approve 3f2a", { verb: "budget.approve", id: "3f2a" }],
  ["budget approve 3f2a override Ana is away", { verb: "budget.approve", id: "3f2a", override: "Ana is away" }],
  ["budget reject 3f2a too early", { verb: "budget.reject", id: "3f2a", reason: "too early" }],
  ["budget reject 3f2a", { verb: "budget.reject", id: "3f2a", reason: "" }],
  ["budget pause search-monthly", { verb: "budget.pause", name: "search-monthly" }],
  ["budget resume search-monthly", { verb: "budget.resume", name: "search-monthly" }],
  ["alerts", { verb: "alerts.recent" }],
  ["alerts recent", { verb: "alerts.recent" }],
  ["alert mute search-monthly 24h", { verb: "alerts.mute", name: "search-monthly", durationMs: 24 * H, duration: "24h" }],
  ["alerts mute search-monthly 24 hours", { verb: "alerts.mute", name: "search-monthly", durationMs: 24 * H, duration: "24h" }],
  ["alerts mute search-monthly 30m", { verb: "alerts.mute", name: "search-monthly", durationMs: H / 2, duration: "30m" }],
  ["alerts mute search-monthly 2d", { verb: "alerts.mute", name: "search-monthly", durationMs: 48 * H, duration: "2d" }],
  ["alerts mute search-monthly 1w", { verb: "alerts.mute", name: "search-monthly", durationMs: 168 * H, duration: "1w" }],
  ["alerts unmute search-monthly", { verb: "alerts.unmute", name: "search-monthly" }],
  ["subscribe", { verb: "subscribe", kinds: ["alerts"] }],
  ["subscribe all alerts", { verb: "subscribe", scope: "all", kinds: ["alerts"] }],
  ["subscribe team:search alerts", { verb: "subscribe", scope: { team: "search" }, kinds: ["alerts"] }],
  ["subscribe approvals", { verb: "subscribe", kinds: ["approvals"] }],
  ["subscribe weekly daily", { verb: "subscribe", kinds: ["weekly", "daily"] }],
  ["sub team:search alert digest", { verb: "subscribe", scope: { team: "search" }, kinds: ["alerts", "daily"] }],
  ["unsubscribe", { verb: "unsubscribe" }],
  ["telegram-link --scope team:search", { verb: "telegram-link", scope: { team: "search" }, kinds: ["alerts"] }],
  ["telegram-link --scope team:search --kinds alerts,daily", { verb: "telegram-link", scope: { team: "search" }, kinds: ["alerts", "daily"] }],
  ["Telegram Link --kinds weekly --Scope=Team:Search,model:gpt-4o", { verb: "telegram-link", scope: { team: "Search", model: "gpt-4o" }, kinds: ["weekly"] }],
  ["telegram-link —scope all —kinds digest,alert,daily", { verb: "telegram-link", scope: {}, kinds: ["daily", "alerts"] }],
  ["help telegram-link", { verb: "help", topic: "telegram-link" }],
  ["help", { verb: "help" }],
  ["", { verb: "help" }],
  ["help spend", { verb: "help", topic: "spend" }],
  ["help /budget", { verb: "help", topic: "budget" }],
  ["?", { verb: "help" }],
];

/** Input → the error's message, and the suggestion when there is a nearest valid form. */
const INVALID: [string, RegExp, string?][] = [
  ["spnd this-week", /unknown command "spnd"; did you mean `spend`\?/, "spend"],
  ["frobnicate", /unknown command "frobnicate"/],
  ["spend las-mnth", /unknown period "las-mnth"; did you mean `last-month`\?/, "last-month"],
  ["spend this-wek", /did you mean `this-week`\?/, "this-week"],
  ["spend 2026-13", /"2026-13" is not a month/],
  ["spend 2026-02-30..2026-03-01", /"2026-02-30" is not a date/],
  ["spend by", /"by" needs a dimension/],
  ["spend by tema", /"tema" is not a dimension; did you mean `team`\?/, "team"],
  ["spend tema:search", /"tema" is not a dimension; did you mean `team`\?/, "team"],
  ["spend team:", /"team:" has no value/],
  ["spend today yesterday", /unexpected "yesterday"; the period is already "today"/],
  ["budget sett team:search 500 monthly", /unknown budget action "sett"; did you mean `budget set`\?/, "budget set"],
  ["budget show", /budget show needs the budget's name/],
  ["budget show a b", /unexpected "b"/],
  ["budget set team:search 500", /budget set needs a scope, an amount and a period/],
  ["budget set search 500 monthly", /"search" is not a scope/],
  ["budget set team:search -5 monthly", /"-5" is not an amount/],
  ["budget set team:search 0 monthly", /"0" is not more than zero/],
  ["budget set team:search abc monthly", /"abc" is not an amount/],
  ["budget set team:search 500 montly", /"montly" is not a budget period; did you mean `monthly`\?/, "monthly"],
  ["budget set team:search 500 monthly medium", /"medium" is not a mode/],
  ["budget set team:a,team:b 500 monthly", /team is given twice/],
  ["budget set team:search 500 monthly hard now", /unexpected "now"/],
  ["budget set team:search 0.0000000000001 monthly", /is not an amount/],
  ["budget raise", /budget raise needs the budget's name and the new amount/],
  ["budget raise search-monthly", /the amount is missing/],
  ["budget raise search-monthly lots", /"lots" is not an amount/],
  ["budget approve", /budget approve needs the request's id/],
  ["budget approve 3f2a override", /budget approve ID override needs the reason you decide your own request/],
  ["budget reject", /budget reject needs the request's id/],
  ["alerts mute", /alerts mute needs the budget's name and a duration/],
  ["alerts mute search-monthly", /the duration is missing/],
  ["alerts mute search-monthly forever", /"forever" is not a duration/],
  ["alerts mute search-monthly 100d", /not between a minute and 90 days/],
  ["alerts mute search-monthly 0h", /not between a minute and 90 days/],
  ["alerts unmute", /alerts unmute needs the budget's name/],
  ["alerts mutte x 1h", /unknown alerts action "mutte"; did you mean `alerts mute`\?/, "alerts mute"],
  ["alerts recent now", /unexpected "now"/],
  ["subscribe team:search alrets", /"alrets" is neither a scope nor something to subscribe to; did you mean `alerts`\?/, "alerts"],
  ["subscribe team:a team:b", /the scope is given twice/],
  ["unsubscribe now", /unexpected "now"/],
  ["help nothing", /there is no command "nothing"/],
  ["telegram-lnik --scope team:search", /unknown command "telegram-lnik"; did you mean `telegram-link`\?/, "telegram-link"],
  ["telegram-link", /telegram-link needs --scope: what the linked chat follows/],
  ["telegram-link --kinds alerts", /telegram-link needs --scope/],
  ["telegram-link --scope", /--scope needs a value/],
  ["telegram-link --scope --kinds alerts", /--scope needs a value/],
  ["telegram-link --scope search", /"search" is not a scope/],
  ["telegram-link --scope tem:search", /"tem" is not a dimension; did you mean `team`\?/, "team"],
  ["telegram-link --scop team:search", /unknown option "--scop"; did you mean `--scope`\?/, "--scope"],
  ["telegram-link --scope team:search --kinds alrets", /"alrets" is not something a chat can get; did you mean `alerts`\?/, "alerts"],
  ["telegram-link --scope team:search --kinds ,", /"," names no kind/],
  ["telegram-link --scope team:a --scope team:b", /--scope is given twice/],
  ["telegram-link team:search", /"team:search" needs --scope before it/, "telegram-link --scope team:search"],
  ["telegram-link --scope team:search alerts", /unexpected "alerts"/],
];

describe("command grammar", () => {
  test(`${VALID.length} valid inputs parse to exactly the command meant`, () => {
    for (const [input, expected] of VALID) {
      const result = registry.parse(input);
      assert.ok(result.ok, `${input}: ${!result.ok ? result.error.message : ""}`);
      assert.deepEqual(result.value.value, expected, input);
    }
  });

  test(`${INVALID.length} invalid inputs are refused with what was expected and the nearest valid form`, () => {
    for (const [input, message, suggestion] of INVALID) {
      const result = registry.parse(input);
      assert.ok(!result.ok, `${input} should not parse`);
      assert.match(result.error.message, message, input);
      assert.ok(result.error.expected.length > 0, `${input}: says what was expected`);
      assert.equal(result.error.suggestion, suggestion, `${input}: suggestion`);
    }
  });

  test("the table covers at least 60 inputs", () => {
    assert.ok(VALID.length + INVALID.length >= 60);
  });
});

describe("command registry", () => {
  test("each command says the role it needs; help lists the gateway's commands, an integration's after the built-in ones, help last", () => {
    const role = (text: string) => {
      const parsed = registry.parse(text);
      assert.ok(parsed.ok, text);
      return parsed.value.role;
    };
    assert.equal(role("spend"), "viewer");
    assert.equal(role("budget show x"), "viewer");
    assert.equal(role("budget raise x 800 why"), "requester");
    assert.equal(role("alerts mute x 1h"), "requester");
    assert.equal(role("budget approve 3f2a"), "approver");
    assert.equal(role("budget set all 5 daily"), "admin");
    assert.equal(role("subscribe"), "admin");
    assert.equal(role("telegram-link --scope all"), "admin");
    assert.deepEqual(
      registry.commands.map((c) => c.name),
      ["spend", "budget", "alerts", "subscribe", "unsubscribe", "telegram-link", "help"],
    );
    assert.deepEqual(createRegistry().commands.map((c) => c.name), ["spend", "budget", "alerts", "subscribe", "unsubscribe", "help"]);
    const without = createRegistry().parse("telegram-link --scope all");
    assert.ok(!without.ok && /unknown command "telegram-link"/.test(without.error.message));
  });

  test("two commands answering to one word are refused when the registry is made", () => {
    assert.throws(() => createRegistry([{ ...spend, name: "budgets", aliases: [] }]), /two commands answer to "budgets"/);
  });

  test("the terminal's text shows what a chat shows, without the buttons", () => {
    const text = renderText(
      reply({ title: "AI spend today", summary: "$1.00 over 2 requests", facts: [{ label: "Period", value: "today" }], actions: [{ action: "breakdown", label: "By team", target: "today" }] }),
    );
    assert.equal(text, "AI spend today\n$1.00 over 2 requests\n\nPeriod:  today");
  });
});
