import { describeScope, type Scope, scopesOverlap } from "../../src/budgets/budget.ts";
import { DIMENSIONS, type Dimension } from "../../src/ledger/event.ts";
import { resolvePeriod } from "../../src/ledger/period.ts";
import { changeText, formatUsd } from "../../src/pricing/money.ts";
import { type Parsed, defineCommand } from "../command.ts";
import { dimension, fail, filter, ok } from "../grammar.ts";
import { budgetReadable, readableFilters } from "../read-scope.ts";
import { refused, reply } from "../reply.ts";

export interface SpendValue {
  verb: "spend";
  period: string;
  by?: Dimension;
  filters: Scope;
  share: boolean;
}

const USAGE = "spend [period] [by team|project|feature|user|model|provider|key] [dim:value ...] [share]";
const count = (n: number) => n.toLocaleString("en-US");
const day = (d: Date, timeZone: string) => d.toLocaleDateString("en-CA", { timeZone });
const known = (period: string) => resolvePeriod(period, { now: new Date(), timeZone: "UTC" });

/**
 * The grammar of `spend`, for every door and for the CLI's `tollgate spend` (with or without
 * `--json`): the period (default this-month), `by DIM`, `DIM:VALUE` filters and `share`.
 */
export function parseSpend(words: readonly string[]): Parsed<SpendValue> {
  let period: string | undefined;
  let by: Dimension | undefined;
  const filters: Scope = {};
  let share = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const lower = word.toLowerCase();
    if (lower === "by") {
      const next = words[++i];
      if (!next) return fail(`"by" needs a dimension`, `by ${DIMENSIONS.join("|")}`);
      const dim = dimension(next);
      if (!dim.ok) return dim;
      by = dim.dim;
    } else if (lower === "share") share = true;
    else if (word.includes(":") && !/^\d{4}-/.test(word)) {
      const f = filter(word);
      if (!f.ok) return f;
      filters[f.dim] = f.value;
    } else if (period === undefined) {
      // "last month" and "this week" are written as two words as often as one.
      const pair = (lower === "last" || lower === "this") && words[i + 1] ? `${lower}-${words[i + 1]!.toLowerCase()}` : undefined;
      const candidate = pair && known(pair).ok ? pair : word;
      if (candidate === pair) i++;
      const checked = known(candidate);
      if (!checked.ok) return fail(checked.error.message, checked.error.expected, checked.error.suggestion);
      period = candidate;
    } else return fail(`unexpected "${word}"; the period is already "${period}"`, USAGE);
  }
  return ok({ verb: "spend", period: period ?? "this-month", ...(by ? { by } : {}), filters, share });
}

/** `spend last month by team team:search share`: spend over a period, by a dimension, within filters. */
export const spend = defineCommand<SpendValue>({
  name: "spend",
  usage: USAGE,
  examples: ["spend this-week", "spend last-month by model team:search", "spend 7d by feature share"],
  role: () => "viewer",
  parse: parseSpend,
  async run(cmd, ctx) {
    const { timezone } = ctx.conversation;
    const resolved = resolvePeriod(cmd.period, { now: ctx.now, timeZone: timezone });
    if (!resolved.ok) return reply({ title: "That period is not one I know", summary: resolved.error.message, notes: [`Expected ${resolved.error.expected}.`], error: true });
    const period = resolved.period;
    const { services } = ctx;
    // Held within what the conversation reads (its channel's scope), by user included.
    const readable = readableFilters(ctx.conversation, cmd.filters);
    if (!readable.ok) return refused("Not readable here", readable.message);
    const filters = readable.filters;
    const report = await services.spend.report({ period, by: cmd.by, filters, top: 8, now: ctx.now });
    const scopeText = Object.keys(filters).length > 0 ? ` for ${describeScope(filters)}` : "";
    const largest = report.groups.reduce((m, g) => (g.cost > m ? g.cost : m), 0n);

    const budgets = (await services.budgets.list()).filter((b) => !b.paused && scopesOverlap(b.scope, filters) && budgetReadable(ctx.conversation, b)).slice(0, 10);
    const standings = (await services.spend.standings(budgets, ctx.now)).sort((a, b) => b.percent - a.percent);

    const notes: string[] = [];
    if (report.unpriced_requests > 0) notes.push(`${count(report.unpriced_requests)} requests used models without a known price and are not in these totals.`);
    return reply({
      title: `AI spend ${period.label}${scopeText}`,
      summary: `${formatUsd(report.total.cost)} over ${count(report.total.requests)} requests; ${changeText(report.total.cost, report.previous.cost)} against the same time last period (${formatUsd(report.previous.cost)}).`,
      facts: [
        { label: "Period", value: `${day(period.start, timezone)} to ${day(new Date(period.end.getTime() - 1), timezone)} (${timezone})` },
        ...standings.slice(0, 5).map((s) => ({
          label: `Budget ${s.budget.name}`,
          value: `${formatUsd(s.spend)} of ${formatUsd(s.budget.amount)} (${s.percent} %, ${s.state})`,
        })),
      ],
      ...(cmd.by && report.groups.length > 0
        ? {
            bars: {
              heading: `By ${cmd.by}`,
              rows: report.groups.map((g) => ({ label: g.key, value: formatUsd(g.cost), share: largest > 0n ? Number((g.cost * 1000n) / largest) : 0 })),
            },
          }
        : {}),
      notes,
      actions: cmd.by ? [] : [{ action: "breakdown", label: "By team", target: cmd.period }],
      visibility: cmd.share ? "shared" : "private",
    });
  },
});
