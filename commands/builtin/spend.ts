import { describeScope, type Scope, scopesOverlap } from "../../src/budgets/budget.ts";
import type { Standing } from "../../src/budgets/status.ts";
import { type Chart, usdValue } from "../../src/charts/chart.ts";
import { DIMENSIONS, type Dimension } from "../../src/ledger/event.ts";
import { type Period, resolvePeriod } from "../../src/ledger/period.ts";
import { NONE_KEY, OTHER_KEY, type SpendReport } from "../../src/ledger/spend.ts";
import { changeText, formatUsd } from "../../src/pricing/money.ts";
import type { Services } from "../../src/services.ts";
import { type Parsed, defineCommand } from "../command.ts";
import type { CommandContext } from "../context.ts";
import { dimension, fail, filter, ok } from "../grammar.ts";
import { type Reads, budgetReadable, readableFilters, readsOf } from "../read-scope.ts";
import { type ReplyInput, refused, reply } from "../reply.ts";

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

/** Groups the default answer names; the rest are summed as "other". */
const TOP_DEFAULT = 5;
/** Groups an answer `by` a dimension names. */
const TOP_BY = 8;
/** Budgets an answer lists, fullest first. */
export const BUDGETS_SHOWN = 5;

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

/**
 * The dimensions the default answer tries, most useful first: teams own budgets, so spend by team;
 * within one team (a filter, or a channel scoped to it), that team's features, else its models.
 * Dimensions a filter fixes to one value are skipped: they would show one bar.
 */
export function defaultDimensions(filters: Scope): Dimension[] {
  const order: Dimension[] = filters.team === undefined ? ["team", "feature", "model"] : ["feature", "model"];
  return order.filter((d) => filters[d] === undefined);
}

/** Whether a breakdown says anything: some spend under a named value, not all of it "(none)". */
const tells = (report: SpendReport) => report.groups.some((g) => g.key !== NONE_KEY && g.key !== OTHER_KEY && g.cost > 0n);

/**
 * The spend report by the first of `dims` that tells something; the last one's when none does
 * (its groups may all be "(none)", but the totals are the same in each).
 */
async function breakdown(services: Services, query: { period: Period; filters: Scope; now: Date }, dims: readonly Dimension[], top: number) {
  let last: { by: Dimension | undefined; report: SpendReport } | undefined;
  for (const by of dims) {
    const report = await services.spend.report({ ...query, by, top });
    if (tells(report)) return { by, report };
    last = { by, report };
  }
  return last ?? { by: undefined, report: await services.spend.report({ ...query, top }) };
}

/** Whole percent of `whole` that `part` is, rounded half up. */
const percentOf = (part: bigint, whole: bigint) => (whole > 0n ? Number((part * 100n + whole / 2n) / whole) : 0);

/** The breakdown as bars (share of the whole, bars relative to the largest) and as a chart. */
function breakdownParts(by: Dimension, report: SpendReport, period: Period): Pick<ReplyInput, "bars" | "charts"> {
  const groups = report.groups.filter((g) => g.cost > 0n || g.key !== OTHER_KEY);
  if (groups.length === 0) return {};
  const largest = groups.reduce((m, g) => (g.cost > m ? g.cost : m), 0n);
  const chart: Chart = {
    kind: "bar",
    title: `Spend by ${by}, ${period.label}`,
    categories: groups.map((g) => g.key),
    series: [{ name: "Spend", values: groups.map((g) => usdValue(g.cost)) }],
    unit: "usd",
  };
  return {
    bars: {
      heading: `By ${by}`,
      rows: groups.map((g) => ({
        label: g.key,
        value: `${formatUsd(g.cost)} (${percentOf(g.cost, report.total.cost)} %)`,
        share: largest > 0n ? Number((g.cost * 1000n) / largest) : 0,
      })),
    },
    charts: [chart],
  };
}

/** When a budget runs out at the recent pace: a date in the period, "reached", or "—" when it will not. */
function runOutText(s: Standing, timeZone: string): string {
  if (s.spend >= s.budget.amount) return "reached";
  return s.runOut ? day(s.runOut, timeZone) : "—";
}

/** The budgets in scope, fullest first: spent of amount, percent, state and when each runs out. */
function budgetTable(standings: Standing[], timeZone: string): ReplyInput["table"] {
  if (standings.length === 0) return undefined;
  return {
    columns: ["Budget", "Spent", "Amount", "%", "State", "Runs out"],
    rows: standings.slice(0, BUDGETS_SHOWN).map((s) => [s.budget.name, formatUsd(s.spend), formatUsd(s.budget.amount), `${s.percent} %`, s.state, runOutText(s, timeZone)]),
  };
}

/** The budgets a spend answer within `filters` lists (running, overlapping them, readable here), fullest first. */
export async function budgetsInScope(ctx: CommandContext, filters: Scope, reads: Reads): Promise<Standing[]> {
  const budgets = (await ctx.services.budgets.list()).filter((b) => !b.paused && scopesOverlap(b.scope, filters) && budgetReadable(reads, b));
  return (await ctx.services.spend.standings(budgets, ctx.now)).sort((a, b) => b.percent - a.percent || a.budget.name.localeCompare(b.budget.name));
}

/**
 * `spend last month by team team:search share`: spend over a period, by a dimension, within
 * filters. Without `by`, the answer people ask for first: the total and its change, the top five
 * of the most telling dimension with their shares, and the budgets in scope.
 */
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
    // Held within what the asker reads here (the channel's scope, or their own), by user included;
    // a channel scoped to one team gets that team's features or models by default.
    const reads = await readsOf(ctx);
    const readable = readableFilters(reads, cmd.filters);
    if (!readable.ok) return refused("Not readable here", readable.message);
    const filters = readable.filters;
    const query = { period, filters, now: ctx.now };
    const { by, report } = cmd.by ? await breakdown(services, query, [cmd.by], TOP_BY) : await breakdown(services, query, defaultDimensions(filters), TOP_DEFAULT);
    const scopeText = Object.keys(filters).length > 0 ? ` for ${describeScope(filters)}` : "";

    const standings = await budgetsInScope(ctx, filters, reads);

    const notes: string[] = [];
    if (report.unpriced_requests > 0) notes.push(`${count(report.unpriced_requests)} requests used models without a known price and are not in these totals.`);
    if (standings.length > BUDGETS_SHOWN) notes.push(`${standings.length - BUDGETS_SHOWN} more budgets in scope: budget list shows them all.`);
    return reply({
      title: `AI spend ${period.label}${scopeText}`,
      summary: `${formatUsd(report.total.cost)} over ${count(report.total.requests)} requests; ${changeText(report.total.cost, report.previous.cost)} against the same time last period (${formatUsd(report.previous.cost)}).`,
      facts: [{ label: "Period", value: `${day(period.start, timezone)} to ${day(new Date(period.end.getTime() - 1), timezone)} (${timezone})` }],
      ...(by ? breakdownParts(by, report, period) : {}),
      table: budgetTable(standings, timezone),
      notes,
      visibility: cmd.share ? "shared" : "private",
    });
  },
});
