import { type Budget, budgetPeriod, describeScope } from "../../src/budgets/budget.ts";
import { inputOf } from "../../src/budgets/store.ts";
import { formatUsd } from "../../src/pricing/money.ts";
import type { Command } from "../command.ts";
import { type CommandContext, actorName } from "../context.ts";
import { type Reply, reply } from "../reply.ts";

type BudgetCommand = Extract<Command, { verb: `budget.${string}` }>;

const actor = (ctx: CommandContext) => actorName(ctx.caller);
const refusal = (title: string, message: string) => reply({ title, summary: message, error: true });

/** `team-search-monthly`: a name people can type back, derived from what the budget is. */
export function budgetName(scope: Budget["scope"], period: Budget["period"]): string {
  const adverb = { day: "daily", week: "weekly", month: "monthly", quarter: "quarterly", year: "yearly" }[period];
  const parts = Object.entries(scope).flatMap(([dim, value]) => [dim, value]);
  const base = (parts.length > 0 ? parts : ["all"]).join("-").toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "");
  return `${base.slice(0, 150) || "budget"}-${adverb}`;
}

async function show(budget: Budget, ctx: CommandContext): Promise<Reply> {
  const status = await ctx.services.budgetStatus(budget, ctx.now);
  const period = budgetPeriod(budget, ctx.now);
  return reply({
    title: `Budget ${budget.name}`,
    summary: `${formatUsd(status.spend)} of ${formatUsd(budget.amount)} spent this ${budget.period} (${status.percent} %): ${status.state}.`,
    facts: [
      { label: "Scope", value: describeScope(budget.scope) },
      { label: "Mode", value: budget.mode === "hard" ? "hard (blocks at 100 %)" : "soft (alerts only)" },
      { label: "Thresholds", value: budget.thresholds.map((t) => `${t} %`).join(", ") },
      { label: "Resets", value: `${period.end.toISOString().slice(0, 16).replace("T", " ")} UTC` },
      ...(status.forecast !== null ? [{ label: "Forecast", value: formatUsd(status.forecast) }] : []),
      ...(budget.paused ? [{ label: "Paused", value: "yes" }] : []),
    ],
    actions: [
      { action: "request_raise", label: "Request raise", target: budget.name },
      { action: "breakdown", label: "Breakdown", target: budget.name },
    ],
  });
}

export async function budget(cmd: BudgetCommand, ctx: CommandContext): Promise<Reply> {
  const { services } = ctx;
  switch (cmd.verb) {
    case "budget.list": {
      const budgets = await services.budgets.list();
      if (budgets.length === 0) return reply({ title: "No budgets yet", summary: "An admin can add one: budget set team:search $500 monthly hard" });
      const rows = await Promise.all(
        budgets.map(async (b) => {
          const s = await services.budgetStatus(b, ctx.now);
          return [b.name, describeScope(b.scope), `${formatUsd(s.spend)} / ${formatUsd(b.amount)}`, `${s.percent} %`, b.paused ? "paused" : s.state, b.mode];
        }),
      );
      return reply({ title: `${budgets.length} budget${budgets.length === 1 ? "" : "s"}`, table: { columns: ["budget", "scope", "spent", "used", "state", "mode"], rows } });
    }
    case "budget.show": {
      const found = await services.budgets.find(cmd.name);
      return found ? show(found, ctx) : refusal("No such budget", `There is no budget called ${cmd.name}; budget list shows them all.`);
    }
    case "budget.set": {
      const name = budgetName(cmd.scope, cmd.period);
      const existing = await services.budgets.find(name);
      const input = { name, scope: cmd.scope, amount_usd: cmd.amount, period: cmd.period, timezone: ctx.conversation.timezone, thresholds: [50, 80, 100], mode: cmd.mode, paused: false };
      const result = existing
        ? await services.budgets.update(existing.id, (b) => ({ ...inputOf(b), amount_usd: cmd.amount, mode: cmd.mode }), actor(ctx))
        : await services.budgets.create(input, actor(ctx));
      if (!result.ok) return refusal("The budget was not saved", result.message);
      return show(result.value, ctx);
    }
    case "budget.pause":
    case "budget.resume": {
      const paused = cmd.verb === "budget.pause";
      const result = await services.budgets.update(cmd.name, (b) => ({ ...inputOf(b), paused }), actor(ctx));
      if (!result.ok) return refusal("Nothing changed", result.message);
      return reply({ title: `Budget ${result.value.name} ${paused ? "paused" : "resumed"}`, summary: paused ? "It sends no alerts and blocks nothing until resumed." : "It is evaluated and enforced again." });
    }
    case "budget.raise": {
      const result = await services.approvals.request({ budget: cmd.name, amount: cmd.amount, reason: cmd.reason, by: ctx.caller, via: ctx.conversation });
      if (!result.ok) return refusal("The raise was not requested", result.message);
      const { id, from, to } = result.value;
      return reply({
        title: `Raise requested for ${cmd.name}`,
        summary: `${formatUsd(from)} → ${formatUsd(to)}. Approvers have been asked; you will hear back here.`,
        facts: [{ label: "Request", value: id }, ...(cmd.reason ? [{ label: "Reason", value: cmd.reason }] : [])],
      });
    }
    case "budget.approve":
    case "budget.reject": {
      const decision = cmd.verb === "budget.approve" ? "approve" : "reject";
      const result = await services.approvals.decide({ id: cmd.id, decision, by: ctx.caller, ...(cmd.verb === "budget.reject" && cmd.reason ? { reason: cmd.reason } : {}) });
      if (!result.ok) return refusal("Nothing was decided", result.message);
      const { budget: name, from, to, status } = result.value;
      return reply({ title: `Request ${cmd.id} ${status}`, summary: status === "approved" ? `${name}: ${formatUsd(from)} → ${formatUsd(to)}.` : `${name} stays at ${formatUsd(from)}.` });
    }
  }
}
