import { SUBSCRIPTION_KINDS, type SubscriptionKind } from "../src/alerts/alert.ts";
import { BUDGET_PERIODS, type BudgetPeriod, type Scope } from "../src/budgets/budget.ts";
import { DIMENSIONS, type Dimension } from "../src/ledger/event.ts";
import { nearest } from "../src/ledger/period.ts";
import { decimalUsdToPico } from "../src/pricing/money.ts";
import type { ParseError, Parsed } from "./command.ts";

/*
 * The words every command's grammar is made of (DESIGN.md §5): dimensions, scopes, amounts,
 * durations, periods of budgets, kinds of messages, `--options`. Forgiving of case, spacing and
 * common aliases; every refusal names what was expected and, when a word is close to a valid one,
 * the nearest valid form. Each command (commands/builtin/*) composes its own grammar from them.
 */

export const fail = (message: string, expected: string, suggestion?: string): { ok: false; error: ParseError } => ({
  ok: false,
  error: { kind: "parse", message, expected, ...(suggestion ? { suggestion } : {}) },
});
export const ok = <V>(value: V): Parsed<V> => ({ ok: true, value });
export const didYouMean = (s: string | undefined) => (s ? `; did you mean \`${s}\`?` : "");

/** Refuses the first word past `n`: `form` is what the command takes. */
export const extra = (words: readonly string[], n: number, form: string) => (words.length > n ? fail(`unexpected "${words[n]}"`, form) : undefined);

const DIMENSION_WORDS = new Map<string, Dimension>([
  ...DIMENSIONS.map((d) => [d, d] as const),
  ...DIMENSIONS.map((d) => [`${d}s`, d] as const),
  ["api-key", "key"],
  ["apikey", "key"],
]);
export const PERIOD_WORDS = new Map<string, BudgetPeriod>([
  ...BUDGET_PERIODS.map((p) => [p, p] as const),
  ["daily", "day"],
  ["weekly", "week"],
  ["monthly", "month"],
  ["quarterly", "quarter"],
  ["yearly", "year"],
  ["annual", "year"],
  ["annually", "year"],
]);
export const KIND_WORDS = new Map<string, SubscriptionKind>([
  ...SUBSCRIPTION_KINDS.map((k) => [k, k] as const),
  ["alert", "alerts"],
  ["approval", "approvals"],
  ["digest", "daily"],
]);
const EVERYTHING = new Set(["all", "everything", "*"]);
export const isEverything = (word: string) => EVERYTHING.has(word.toLowerCase());

export function dimension(word: string): { ok: true; dim: Dimension } | { ok: false; error: ParseError } {
  const dim = DIMENSION_WORDS.get(word.toLowerCase());
  if (dim) return { ok: true, dim };
  const suggestion = nearest(word.toLowerCase(), DIMENSION_WORDS);
  return fail(`"${word}" is not a dimension${didYouMean(suggestion)}`, `one of ${DIMENSIONS.join(", ")}`, suggestion);
}

/** `team:search` → ["team", "search"]; values keep their case, dimensions do not. */
export function filter(token: string): { ok: true; dim: Dimension; value: string } | { ok: false; error: ParseError } {
  const colon = token.indexOf(":");
  const value = token.slice(colon + 1);
  const dim = dimension(token.slice(0, colon));
  if (!dim.ok) return dim;
  if (value === "") return fail(`"${token}" has no value`, `${dim.dim}:VALUE, such as ${dim.dim}:search`);
  return { ok: true, dim: dim.dim, value };
}

/** `team:search,model:gpt-4o` (also joined by `+`), or `all`. */
export function scope(token: string): { ok: true; scope: Scope } | { ok: false; error: ParseError } {
  if (isEverything(token)) return { ok: true, scope: {} };
  const result: Scope = {};
  for (const part of token.split(/[,+]/).filter(Boolean)) {
    if (!part.includes(":")) return fail(`"${part}" is not a scope`, "DIM:VALUE pairs joined by commas (team:search,model:gpt-4o), or all");
    const f = filter(part);
    if (!f.ok) return f;
    if (result[f.dim] !== undefined) return fail(`${f.dim} is given twice in "${token}"`, "each dimension at most once");
    result[f.dim] = f.value;
  }
  return { ok: true, scope: result };
}

/** `$800`, `800usd`, `800 USD` (two words), `1,200.50`, `1.5k` → pico-USD. */
export function parseAmount(words: readonly string[]): { ok: true; amount: bigint; used: number } | { ok: false; error: ParseError } {
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
export function parseDuration(words: readonly string[]): { ok: true; ms: number; text: string; used: number } | { ok: false; error: ParseError } {
  const expected = "a duration such as 30m, 24h, 2d or 1w (at most 90 days)";
  const joined = `${words[0] ?? ""}${/^\d+$/.test(words[0] ?? "") && words[1] ? words[1] : ""}`.toLowerCase();
  const m = /^(\d{1,4})([a-z]+)$/.exec(joined);
  const unit = m ? UNITS.find(([re]) => re.test(m[2]!)) : undefined;
  if (!m || !unit) return fail(words[0] ? `"${words[0]}" is not a duration` : "the duration is missing", expected);
  const ms = Number(m[1]) * unit[1];
  if (ms <= 0 || ms > MAX_MUTE_MS) return fail(`"${joined}" is not between a minute and 90 days`, expected);
  return { ok: true, ms, text: `${m[1]}${m[2]![0]}`, used: words[0] === joined ? 1 : 2 };
}

export const KINDS_EXPECTED = `any of ${SUBSCRIPTION_KINDS.join(", ")}, joined by commas`;

/** `alerts,daily`: each kind once, in the order given. */
export function kindList(text: string): { ok: true; kinds: SubscriptionKind[] } | { ok: false; error: ParseError } {
  const kinds = new Set<SubscriptionKind>();
  for (const word of text.split(",").filter(Boolean)) {
    const kind = KIND_WORDS.get(word.toLowerCase());
    if (!kind) {
      const suggestion = nearest(word.toLowerCase(), KIND_WORDS);
      return fail(`"${word}" is not something a chat can get${didYouMean(suggestion)}`, KINDS_EXPECTED, suggestion);
    }
    kinds.add(kind);
  }
  return kinds.size > 0 ? { ok: true, kinds: [...kinds] } : fail(`"${text}" names no kind`, KINDS_EXPECTED);
}

/** `--scope`, also as `—scope`: what smart punctuation (macOS, phones) makes of two hyphens. */
export const optionName = (word: string) => /^(?:--|[—–])([a-z][a-z-]*)$/i.exec(word)?.[1]?.toLowerCase();

/**
 * `--name VALUE` and `--name=VALUE` pairs, each option at most once, as the CLI writes them.
 * `positional` says what a word that is no option is (a refusal); `known` maps names to how they are written.
 */
export function options(
  words: readonly string[],
  known: Map<string, string>,
  form: string,
  positional: (word: string) => { ok: false; error: ParseError },
): { ok: true; values: Map<string, string> } | { ok: false; error: ParseError } {
  const values = new Map<string, string>();
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const equals = word.indexOf("=");
    const name = optionName(equals > 0 ? word.slice(0, equals) : word);
    if (name === undefined) return positional(word);
    const option = known.get(name);
    if (!option) {
      const suggestion = nearest(name, known);
      return fail(`unknown option "${word}"${didYouMean(suggestion)}`, [...known.values()].join(", "), suggestion);
    }
    const value = equals > 0 ? word.slice(equals + 1) : words[++i];
    if (!value || optionName(value) !== undefined) return fail(`${option} needs a value`, form);
    if (values.has(option)) return fail(`${option} is given twice`, form);
    values.set(option, value);
  }
  return { ok: true, values };
}
