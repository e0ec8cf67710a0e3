import { SUBSCRIPTION_KINDS, type SubscriptionKind } from "../src/alerts/alert.ts";
import { BUDGET_PERIODS, type BudgetPeriod, type Scope } from "../src/budgets/budget.ts";
import { DIMENSIONS, type Dimension } from "../src/ledger/event.ts";
import { nearest, resolvePeriod } from "../src/ledger/period.ts";
import { decimalUsdToPico } from "../src/pricing/money.ts";
import { type Command, type ParseError, type ParseResult, TOPICS, type Topic } from "./command.ts";

/*
 * The one command grammar of DESIGN.md §5, for every chat platform and the CLI. Forgiving of case,
 * spacing and common aliases; every refusal names what was expected and, when a word is close to a
 * valid one, the nearest valid form.
 */

export const USAGE: Record<Topic, string> = {
  spend: "spend [period] [by team|project|feature|user|model|provider|key] [dim:value ...] [share]",
  budget:
    "budget list | show NAME | set SCOPE AMOUNT PERIOD [soft|hard] | raise NAME AMOUNT [reason...] | approve ID | reject ID [reason...] | pause NAME | resume NAME",
  alerts: "alerts [recent] | mute NAME DURATION | unmute NAME",
  subscribe: "subscribe [SCOPE] [alerts|daily|weekly|approvals]",
  unsubscribe: "unsubscribe",
  "telegram-link": "telegram-link --scope SCOPE [--kinds alerts,daily,weekly,approvals]",
  help: "help [command]",
};

const fail = (message: string, expected: string, topic?: Topic, suggestion?: string): { ok: false; error: ParseError } => ({
  ok: false,
  error: { kind: "parse", message, expected, ...(topic ? { topic } : {}), ...(suggestion ? { suggestion } : {}) },
});
const ok = (command: Command): ParseResult => ({ ok: true, command });
const didYouMean = (s: string | undefined) => (s ? `; did you mean \`${s}\`?` : "");

const DIMENSION_WORDS = new Map<string, Dimension>([
  ...DIMENSIONS.map((d) => [d, d] as const),
  ...DIMENSIONS.map((d) => [`${d}s`, d] as const),
  ["api-key", "key"],
  ["apikey", "key"],
]);
const PERIOD_WORDS = new Map<string, BudgetPeriod>([
  ...BUDGET_PERIODS.map((p) => [p, p] as const),
  ["daily", "day"],
  ["weekly", "week"],
  ["monthly", "month"],
  ["quarterly", "quarter"],
  ["yearly", "year"],
  ["annual", "year"],
  ["annually", "year"],
]);
const KIND_WORDS = new Map<string, SubscriptionKind>([
  ...SUBSCRIPTION_KINDS.map((k) => [k, k] as const),
  ["alert", "alerts"],
  ["approval", "approvals"],
  ["digest", "daily"],
]);
const EVERYTHING = new Set(["all", "everything", "*"]);

function dimension(word: string, topic: Topic): { ok: true; dim: Dimension } | { ok: false; error: ParseError } {
  const dim = DIMENSION_WORDS.get(word.toLowerCase());
  if (dim) return { ok: true, dim };
  const suggestion = nearest(word.toLowerCase(), DIMENSION_WORDS);
  return fail(`"${word}" is not a dimension${didYouMean(suggestion)}`, `one of ${DIMENSIONS.join(", ")}`, topic, suggestion);
}

/** `team:search` → ["team", "search"]; values keep their case, dimensions do not. */
function filter(token: string, topic: Topic): { ok: true; dim: Dimension; value: string } | { ok: false; error: ParseError } {
  const colon = token.indexOf(":");
  const value = token.slice(colon + 1);
  const dim = dimension(token.slice(0, colon), topic);
  if (!dim.ok) return dim;
  if (value === "") return fail(`"${token}" has no value`, `${dim.dim}:VALUE, such as ${dim.dim}:search`, topic);
  return { ok: true, dim: dim.dim, value };
}

/** `team:search,model:gpt-4o` (also joined by `+`), or `all`. */
function scope(token: string, topic: Topic): { ok: true; scope: Scope } | { ok: false; error: ParseError } {
  if (EVERYTHING.has(token.toLowerCase())) return { ok: true, scope: {} };
  const result: Scope = {};
  for (const part of token.split(/[,+]/).filter(Boolean)) {
    if (!part.includes(":")) return fail(`"${part}" is not a scope`, "DIM:VALUE pairs joined by commas (team:search,model:gpt-4o), or all", topic);
    const f = filter(part, topic);
    if (!f.ok) return f;
    if (result[f.dim] !== undefined) return fail(`${f.dim} is given twice in "${token}"`, "each dimension at most once", topic);
    result[f.dim] = f.value;
  }
  return { ok: true, scope: result };
}

/** `$800`, `800usd`, `800 USD` (two words), `1,200.50`, `1.5k` → pico-USD. */
export function parseAmount(words: string[]): { ok: true; amount: bigint; used: number } | { ok: false; error: ParseError } {
  const expected = "an amount of USD such as 800, $800, 800usd or 1.5k";
  const first = words[0];
  if (first === undefined) return fail("the amount is missing", expected);
  let text = first.toLowerCase().replace(/^\$/, "");
  let used = 1;
  if (text.endsWith("usd")) text = text.slice(0, -3);
  else if (words[1]?.toLowerCase() === "usd") used = 2;
  if (/^\d{1,3}(,\d{3})+(\.\d+)?$/.test(text)) text = text.replace(/,/g, "");
  let thousands = false;
  if (text.endsWith("k")) {
    thousands = true;
    text = text.slice(0, -1);
  }
  const pico = /^\d+(\.\d+)?$/.test(text) ? decimalUsdToPico(text) : new Error("not a number");
  if (pico instanceof Error) return fail(`"${first}" is not an amount`, expected);
  const amount = thousands ? pico * 1000n : pico;
  if (amount <= 0n) return fail(`"${first}" is not more than zero`, expected);
  return { ok: true, amount, used };
}

const UNITS: [RegExp, number][] = [
  [/^(m|mins?|minutes?)$/, 60_000],
  [/^(h|hrs?|hours?)$/, 3_600_000],
  [/^(d|days?)$/, 86_400_000],
  [/^(w|wks?|weeks?)$/, 604_800_000],
];
const MAX_MUTE_MS = 90 * 86_400_000;

/** `24h`, `30m`, `2d`, `1w`, or `24 hours` (two words). */
export function parseDuration(words: string[]): { ok: true; ms: number; text: string; used: number } | { ok: false; error: ParseError } {
  const expected = "a duration such as 30m, 24h, 2d or 1w (at most 90 days)";
  const joined = `${words[0] ?? ""}${/^\d+$/.test(words[0] ?? "") && words[1] ? words[1] : ""}`.toLowerCase();
  const m = /^(\d{1,4})([a-z]+)$/.exec(joined);
  const unit = m ? UNITS.find(([re]) => re.test(m[2]!)) : undefined;
  if (!m || !unit) return fail(words[0] ? `"${words[0]}" is not a duration` : "the duration is missing", expected, "alerts");
  const ms = Number(m[1]) * unit[1];
  if (ms <= 0 || ms > MAX_MUTE_MS) return fail(`"${joined}" is not between a minute and 90 days`, expected, "alerts");
  return { ok: true, ms, text: `${m[1]}${m[2]![0]}`, used: words[0] === joined ? 1 : 2 };
}

function parseSpend(words: string[]): ParseResult {
  let period: string | undefined;
  let by: Dimension | undefined;
  const filters: Scope = {};
  let share = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const lower = word.toLowerCase();
    if (lower === "by") {
      const next = words[++i];
      if (!next) return fail(`"by" needs a dimension`, `by ${DIMENSIONS.join("|")}`, "spend");
      const dim = dimension(next, "spend");
      if (!dim.ok) return dim;
      by = dim.dim;
    } else if (lower === "share") share = true;
    else if (word.includes(":") && !/^\d{4}-/.test(word)) {
      const f = filter(word, "spend");
      if (!f.ok) return f;
      filters[f.dim] = f.value;
    } else if (period === undefined) {
      // "last month" and "this week" are written as two words as often as one.
      const pair = (lower === "last" || lower === "this") && words[i + 1] ? `${lower}-${words[i + 1]!.toLowerCase()}` : undefined;
      const candidate = pair && resolvePeriod(pair, { now: new Date(), timeZone: "UTC" }).ok ? pair : word;
      if (candidate === pair) i++;
      const checked = resolvePeriod(candidate, { now: new Date(), timeZone: "UTC" });
      if (!checked.ok) return fail(checked.error.message, checked.error.expected, "spend", checked.error.suggestion);
      period = candidate;
    } else return fail(`unexpected "${word}"; the period is already "${period}"`, USAGE.spend, "spend");
  }
  return ok({ verb: "spend", period: period ?? "this-month", ...(by ? { by } : {}), filters, share });
}

const BUDGET_ACTIONS = ["list", "show", "set", "raise", "approve", "reject", "pause", "resume"] as const;

function parseBudget(words: string[]): ParseResult {
  const [first, ...rest] = words;
  const action = (first ?? "list").toLowerCase();
  const needName = (verb: string) => (rest[0] ? undefined : fail(`budget ${verb} needs the budget's name`, `budget ${verb} NAME`, "budget"));
  const extra = (n: number, form: string) => (rest.length > n ? fail(`unexpected "${rest[n]}"`, form, "budget") : undefined);
  switch (action) {
    case "list":
    case "ls":
      return extra(0, "budget list") ?? ok({ verb: "budget.list" });
    case "show":
    case "pause":
    case "resume": {
      const problem = needName(action) ?? extra(1, `budget ${action} NAME`);
      if (problem) return problem;
      return ok({ verb: `budget.${action}`, name: rest[0]! });
    }
    case "set": {
      const form = "budget set SCOPE AMOUNT PERIOD [soft|hard], such as budget set team:search $500 monthly hard";
      if (rest.length < 3) return fail("budget set needs a scope, an amount and a period", form, "budget");
      const s = scope(rest[0]!, "budget");
      if (!s.ok) return s;
      const amount = parseAmount(rest.slice(1));
      if (!amount.ok) return fail(amount.error.message, amount.error.expected, "budget");
      let at = 1 + amount.used;
      const periodWord = rest[at]?.toLowerCase();
      const period = periodWord ? PERIOD_WORDS.get(periodWord) : undefined;
      if (!period) {
        const suggestion = periodWord ? nearest(periodWord, new Map([...PERIOD_WORDS.keys()].map((w) => [w, w]))) : undefined;
        return fail(periodWord ? `"${rest[at]}" is not a budget period${didYouMean(suggestion)}` : "the period is missing", `one of ${BUDGET_PERIODS.join(", ")} (or daily, weekly, monthly, ...)`, "budget", suggestion);
      }
      at++;
      const modeWord = rest[at]?.toLowerCase();
      if (modeWord !== undefined && modeWord !== "soft" && modeWord !== "hard")
        return fail(`"${rest[at]}" is not a mode`, "soft (alerts only) or hard (alerts and blocks)", "budget");
      if (rest.length > at + 1) return fail(`unexpected "${rest[at + 1]}"`, form, "budget");
      return ok({ verb: "budget.set", scope: s.scope, amount: amount.amount, period, mode: modeWord === "hard" ? "hard" : "soft" });
    }
    case "raise": {
      const form = "budget raise NAME AMOUNT [reason...], such as budget raise search-monthly 800 launch week";
      if (!rest[0]) return fail("budget raise needs the budget's name and the new amount", form, "budget");
      const amount = parseAmount(rest.slice(1));
      if (!amount.ok) return fail(amount.error.message, amount.error.expected, "budget");
      return ok({ verb: "budget.raise", name: rest[0], amount: amount.amount, reason: rest.slice(1 + amount.used).join(" ") });
    }
    case "approve":
      if (!rest[0]) return fail("budget approve needs the request's id", "budget approve ID", "budget");
      return extra(1, "budget approve ID") ?? ok({ verb: "budget.approve", id: rest[0] });
    case "reject":
      if (!rest[0]) return fail("budget reject needs the request's id", "budget reject ID [reason...]", "budget");
      return ok({ verb: "budget.reject", id: rest[0], reason: rest.slice(1).join(" ") });
    default: {
      const suggestion = nearest(action, new Map(BUDGET_ACTIONS.map((a) => [a, a])));
      return fail(`unknown budget action "${first}"${didYouMean(suggestion && `budget ${suggestion}`)}`, USAGE.budget, "budget", suggestion && `budget ${suggestion}`);
    }
  }
}

function parseAlerts(words: string[]): ParseResult {
  const [first, name, ...rest] = words;
  const action = (first ?? "recent").toLowerCase();
  if (action === "recent") return words.length > 1 ? fail(`unexpected "${words[1]}"`, "alerts recent", "alerts") : ok({ verb: "alerts.recent" });
  if (action === "mute") {
    if (!name) return fail("alerts mute needs the budget's name and a duration", "alerts mute NAME DURATION, such as alerts mute search-monthly 24h", "alerts");
    const duration = parseDuration(rest);
    if (!duration.ok) return duration;
    if (rest.length > duration.used) return fail(`unexpected "${rest[duration.used]}"`, "alerts mute NAME DURATION", "alerts");
    return ok({ verb: "alerts.mute", name, durationMs: duration.ms, duration: duration.text });
  }
  if (action === "unmute") {
    if (!name) return fail("alerts unmute needs the budget's name", "alerts unmute NAME", "alerts");
    return rest.length > 0 ? fail(`unexpected "${rest[0]}"`, "alerts unmute NAME", "alerts") : ok({ verb: "alerts.unmute", name });
  }
  const suggestion = nearest(action, new Map(["recent", "mute", "unmute"].map((a) => [a, `alerts ${a}`])));
  return fail(`unknown alerts action "${first}"${didYouMean(suggestion)}`, USAGE.alerts, "alerts", suggestion);
}

function parseSubscribe(words: string[]): ParseResult {
  let s: Scope | undefined;
  const kinds = new Set<SubscriptionKind>();
  for (const word of words) {
    const kind = KIND_WORDS.get(word.toLowerCase());
    if (kind) kinds.add(kind);
    else if (word.includes(":") || EVERYTHING.has(word.toLowerCase())) {
      if (s) return fail(`the scope is given twice ("${word}")`, USAGE.subscribe, "subscribe");
      const parsed = scope(word, "subscribe");
      if (!parsed.ok) return parsed;
      s = parsed.scope;
    } else {
      const suggestion = nearest(word.toLowerCase(), KIND_WORDS);
      return fail(`"${word}" is neither a scope nor something to subscribe to${didYouMean(suggestion)}`, `a scope such as team:search, and any of ${SUBSCRIPTION_KINDS.join(", ")}`, "subscribe", suggestion);
    }
  }
  return ok({ verb: "subscribe", scope: s ?? {}, kinds: kinds.size > 0 ? [...kinds] : ["alerts"] });
}

/** `--scope`, also as `—scope`: what smart punctuation (macOS, phones) makes of two hyphens. */
const optionName = (word: string) => /^(?:--|[—–])([a-z][a-z-]*)$/i.exec(word)?.[1]?.toLowerCase();

const LINK_OPTIONS = new Map([
  ["scope", "--scope"],
  ["kinds", "--kinds"],
]);
const LINK_FORM = "telegram-link --scope SCOPE [--kinds KINDS], such as telegram-link --scope team:search --kinds alerts,daily";
const KINDS_EXPECTED = `any of ${SUBSCRIPTION_KINDS.join(", ")}, joined by commas`;

/** `alerts,daily`: each kind once, in the order given. */
function kindList(text: string): { ok: true; kinds: SubscriptionKind[] } | { ok: false; error: ParseError } {
  const kinds = new Set<SubscriptionKind>();
  for (const word of text.split(",").filter(Boolean)) {
    const kind = KIND_WORDS.get(word.toLowerCase());
    if (!kind) {
      const suggestion = nearest(word.toLowerCase(), KIND_WORDS);
      return fail(`"${word}" is not something a chat can get${didYouMean(suggestion)}`, KINDS_EXPECTED, "telegram-link", suggestion);
    }
    kinds.add(kind);
  }
  return kinds.size > 0 ? { ok: true, kinds: [...kinds] } : fail(`"${text}" names no kind`, KINDS_EXPECTED, "telegram-link");
}

/** `--scope team:search --kinds alerts,daily`, written as the CLI's `tollgate telegram link` takes it (`--scope=...` too). */
function parseTelegramLink(words: string[]): ParseResult {
  let s: Scope | undefined;
  let kinds: SubscriptionKind[] | undefined;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const equals = word.indexOf("=");
    const name = optionName(equals > 0 ? word.slice(0, equals) : word);
    if (name === undefined) {
      const looksLikeScope = word.includes(":") || EVERYTHING.has(word.toLowerCase());
      return looksLikeScope
        ? fail(`"${word}" needs --scope before it`, LINK_FORM, "telegram-link", `telegram-link --scope ${word}`)
        : fail(`unexpected "${word}"`, LINK_FORM, "telegram-link");
    }
    const option = LINK_OPTIONS.get(name);
    if (!option) {
      const suggestion = nearest(name, LINK_OPTIONS);
      return fail(`unknown option "${word}"${didYouMean(suggestion)}`, "--scope SCOPE, and --kinds KINDS if not only alerts", "telegram-link", suggestion);
    }
    const value = equals > 0 ? word.slice(equals + 1) : words[++i];
    const expected = option === "--scope" ? "a scope such as team:search or team:search,model:gpt-4o, or all" : KINDS_EXPECTED;
    if (!value || optionName(value) !== undefined) return fail(`${option} needs a value`, expected, "telegram-link");
    if ((option === "--scope" ? s : kinds) !== undefined) return fail(`${option} is given twice`, LINK_FORM, "telegram-link");
    if (option === "--scope") {
      const parsed = scope(value, "telegram-link");
      if (!parsed.ok) return parsed;
      s = parsed.scope;
    } else {
      const parsed = kindList(value);
      if (!parsed.ok) return parsed;
      kinds = parsed.kinds;
    }
  }
  if (!s) return fail("telegram-link needs --scope: what the linked chat follows", `${LINK_FORM} (--scope all for all spend)`, "telegram-link");
  return ok({ verb: "telegram-link", scope: s, kinds: kinds ?? ["alerts"] });
}

const VERBS = new Map<string, Topic>([...TOPICS.map((t) => [t, t] as const), ["budgets", "budget"], ["alert", "alerts"], ["sub", "subscribe"], ["unsub", "unsubscribe"], ["?", "help"]]);

/**
 * Reads one command. `text` is what followed the slash command or the mention: the platform has
 * already removed `@Tollgate`; a leading `/` and a `@botname` suffix (Telegram groups) are tolerated.
 */
export function parseCommand(text: string): ParseResult {
  const words = text.trim().split(/\s+/).filter(Boolean);
  let head = (words.shift() ?? "help").replace(/^\//, "").replace(/@\S*$/, "").toLowerCase();
  // `telegram link`, as the CLI spells it (`tollgate telegram link`), is `telegram-link`.
  if (head === "telegram" && words[0]?.toLowerCase() === "link") {
    words.shift();
    head = "telegram-link";
  }
  const topic = VERBS.get(head);
  switch (topic) {
    case "spend":
      return parseSpend(words);
    case "budget":
      return parseBudget(words);
    case "alerts":
      return parseAlerts(words);
    case "subscribe":
      return parseSubscribe(words);
    case "unsubscribe":
      return words.length > 0 ? fail(`unexpected "${words[0]}"`, "unsubscribe", "unsubscribe") : ok({ verb: "unsubscribe" });
    case "telegram-link":
      return parseTelegramLink(words);
    case "help": {
      const about = words[0] ? VERBS.get(words[0].replace(/^\//, "").toLowerCase()) : undefined;
      if (words[0] && !about) return fail(`there is no command "${words[0]}"`, `help, or help ${TOPICS.join("|")}`, "help");
      return ok({ verb: "help", ...(about ? { topic: about } : {}) });
    }
    default: {
      const suggestion = nearest(head, VERBS);
      return fail(`unknown command "${head}"${didYouMean(suggestion)}`, `one of ${TOPICS.join(", ")}`, undefined, suggestion);
    }
  }
}
