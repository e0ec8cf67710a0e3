import { describeScope, scopesOverlap } from "../../src/budgets/budget.ts";
import { resolvePeriod } from "../../src/ledger/period.ts";
import { querySpend } from "../../src/ledger/spend.ts";
import { changeText, formatUsd } from "../../src/pricing/money.ts";
import type { Command } from "../command.ts";
import type { CommandContext } from "../context.ts";
import { type Reply, reply } from "../reply.ts";

type SpendCommand = Extract<Command, { verb: "spend" }>;

const count = (n: number) => n.toLocaleString("en-US");
const day = (d: Date, timeZone: string) => d.toLocaleDateString("en-CA", { timeZone });

export async function spend(cmd: SpendCommand, ctx: CommandContext): Promise<Reply> {
  const { timezone } = ctx.conversation;
  const resolved = resolvePeriod(cmd.period, { now: ctx.now, timeZone: timezone });
  if (!resolved.ok) return reply({ title: "That period is not one I know", summary: resolved.error.message, notes: [`Expected ${resolved.error.expected}.`], error: true });
  const period = resolved.period;
  const report = await querySpend(ctx.services.database, { period, by: cmd.by, filters: cmd.filters, top: 8, now: ctx.now });
  const scopeText = Object.keys(cmd.filters).length > 0 ? ` for ${describeScope(cmd.filters)}` : "";
  const largest = report.groups.reduce((m, g) => (g.cost > m ? g.cost : m), 0n);

  const budgets = (await ctx.services.budgets.list()).filter((b) => !b.paused && scopesOverlap(b.scope, cmd.filters)).slice(0, 10);
  const states = await Promise.all(budgets.map(async (b) => ({ budget: b, status: await ctx.services.budgetStatus(b, ctx.now) })));
  states.sort((a, b) => b.status.percent - a.status.percent);

  const notes: string[] = [];
  if (report.unpriced_requests > 0) notes.push(`${count(report.unpriced_requests)} requests used models without a known price and are not in these totals.`);
  return reply({
    title: `AI spend ${period.label}${scopeText}`,
    summary: `${formatUsd(report.total.cost)} over ${count(report.total.requests)} requests; ${changeText(report.total.cost, report.previous.cost)} against the same time last period (${formatUsd(report.previous.cost)}).`,
    facts: [
      { label: "Period", value: `${day(period.start, timezone)} to ${day(new Date(period.end.getTime() - 1), timezone)} (${timezone})` },
      ...states.slice(0, 5).map(({ budget, status }) => ({
        label: `Budget ${budget.name}`,
        value: `${formatUsd(status.spend)} of ${formatUsd(budget.amount)} (${status.percent} %, ${status.state})`,
      })),
    ],
    ...(cmd.by && report.groups.length > 0
      ? {
          bars: {
            heading: `By ${cmd.by}`,
            rows: report.groups.map((g) => ({
              label: g.key,
              value: formatUsd(g.cost),
              share: largest > 0n ? Number((g.cost * 1000n) / largest) : 0,
            })),
          },
        }
      : {}),
    notes,
    actions: cmd.by ? [] : [{ action: "breakdown", label: "By team", target: cmd.period }],
    visibility: cmd.share ? "shared" : "private",
  });
}
