import { type Actor, actorText } from "../../src/approvals/members.ts";
import type { ApprovalFailure } from "../../src/approvals/requests.ts";
import { BUDGET_PERIODS, type Budget, type BudgetPeriod, type Scope, budgetPeriod, describeScope } from "../../src/budgets/budget.ts";
import { inputOf } from "../../src/budgets/store.ts";
import { nearest } from "../../src/ledger/period.ts";
import { formatUsd } from "../../src/pricing/money.ts";
import { defineCommand } from "../command.ts";
import type { CommandContext, Conversation } from "../context.ts";
import { PERIOD_WORDS, didYouMean, extra, fail, ok, parseAmount, scope } from "../grammar.ts";
import { budgetOutside, budgetReadable, readsNothing, readsOf } from "../read-scope.ts";
import { type Reply, refused, reply, utcMinute } from "../reply.ts";
import type { Role } from "../roles.ts";

export type BudgetValue =
  | { verb: "budget.list" }
  | { verb: "budget.show"; name: string }
  | { verb: "budget.set"; scope: Scope; amount: bigint; period: BudgetPeriod; mode: "soft" | "hard" }
  | { verb: "budget.raise"; name: string; amount: bigint; reason: string }
  | { verb: "budget.approve"; id: string; override?: string }
  | { verb: "budget.reject"; id: string; reason: string; override?: string }
  | { verb: "budget.pause"; name: string }
  | { verb: "budget.resume"; name: string };

const USAGE = "budget list | show NAME | set SCOPE AMOUNT PERIOD [soft|hard] | raise NAME AMOUNT [reason...] | approve ID [override REASON...] | reject ID [reason... | override REASON...] | pause NAME | resume NAME";
const ACTIONS = ["list", "show", "set", "raise", "approve", "reject", "pause", "resume"] as const;

/** Anyone can look, raising needs a requester, deciding an approver, changing an admin. */
export const BUDGET_ROLES: Record<BudgetValue["verb"], Role> = {
  "budget.list": "viewer",
  "budget.show": "viewer",
  "budget.raise": "requester",
  "budget.approve": "approver",
  "budget.reject": "approver",
  "budget.set": "admin",
  "budget.pause": "admin",
  "budget.resume": "admin",
};

/** `team-search-monthly`: a name people can type back, derived from what the budget is. */
export function budgetName(scope: Budget["scope"], period: Budget["period"]): string {
  const adverb = { day: "daily", week: "weekly", month: "monthly", quarter: "quarterly", year: "yearly" }[period];
  const parts = Object.entries(scope).flatMap(([dim, value]) => [dim, value]);
  const base = (parts.length > 0 ? parts : ["all"]).join("-").toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "");
  return `${base.slice(0, 150) || "budget"}-${adverb}`;
}

function parseSet(rest: string[]) {
  const form = "budget set SCOPE AMOUNT PERIOD [soft|hard], such as budget set team:search $500 monthly hard";
  if (rest.length < 3) return fail("budget set needs a scope, an amount and a period", form);
  const s = scope(rest[0]!);
  if (!s.ok) return s;
  const amount = parseAmount(rest.slice(1));
  if (!amount.ok) return amount;
  let at = 1 + amount.used;
  const periodWord = rest[at]?.toLowerCase();
  const period = periodWord ? PERIOD_WORDS.get(periodWord) : undefined;
  if (!period) {
    const suggestion = periodWord ? nearest(periodWord, new Map([...PERIOD_WORDS.keys()].map((w) => [w, w]))) : undefined;
    return fail(periodWord ? `"${rest[at]}" is not a budget period${didYouMean(suggestion)}` : "the period is missing", `one of ${BUDGET_PERIODS.join(", ")} (or daily, weekly, monthly, ...)`, suggestion);
  }
  at++;
  const modeWord = rest[at]?.toLowerCase();
  if (modeWord !== undefined && modeWord !== "soft" && modeWord !== "hard") return fail(`"${rest[at]}" is not a mode`, "soft (alerts only) or hard (alerts and blocks)");
  return extra(rest, at + 1, form) ?? ok<BudgetValue>({ verb: "budget.set", scope: s.scope, amount: amount.amount, period, mode: modeWord === "hard" ? "hard" : "soft" });
}

function parse(words: string[]) {
  const [first, ...rest] = words;
  const action = (first ?? "list").toLowerCase();
  const needName = (verb: string) => (rest[0] ? undefined : fail(`budget ${verb} needs the budget's name`, `budget ${verb} NAME`));
  switch (action) {
    case "list":
    case "ls":
      return extra(rest, 0, "budget list") ?? ok<BudgetValue>({ verb: "budget.list" });
    case "show":
    case "pause":
    case "resume":
      return needName(action) ?? extra(rest, 1, `budget ${action} NAME`) ?? ok<BudgetValue>({ verb: `budget.${action}`, name: rest[0]! });
    case "set":
      return parseSet(rest);
    case "raise": {
      const form = "budget raise NAME AMOUNT [reason...], such as budget raise search-monthly 800 launch week";
      if (!rest[0]) return fail("budget raise needs the budget's name and the new amount", form);
      const amount = parseAmount(rest.slice(1));
      if (!amount.ok) return amount;
      return ok<BudgetValue>({ verb: "budget.raise", name: rest[0], amount: amount.amount, reason: rest.slice(1 + amount.used).join(" ") });
    }
    case "approve": {
      const form = "budget approve ID [override REASON...]";
      if (!rest[0]) return fail("budget approve needs the request's id", form);
      const override = overrideOf(rest.slice(1), "approve");
      if (override === undefined) return extra(rest, 1, form) ?? ok<BudgetValue>({ verb: "budget.approve", id: rest[0] });
      return override.ok ? ok<BudgetValue>({ verb: "budget.approve", id: rest[0], override: override.reason }) : override;
    }
    case "reject": {
      if (!rest[0]) return fail("budget reject needs the request's id", "budget reject ID [reason...]");
      const override = overrideOf(rest.slice(1), "reject");
      if (override === undefined) return ok<BudgetValue>({ verb: "budget.reject", id: rest[0], reason: rest.slice(1).join(" ") });
      return override.ok ? ok<BudgetValue>({ verb: "budget.reject", id: rest[0], reason: override.reason, override: override.reason }) : override;
    }
    default: {
      const suggestion = nearest(action, new Map(ACTIONS.map((a) => [a, `budget ${a}`])));
      return fail(`unknown budget action "${first}"${didYouMean(suggestion)}`, USAGE, suggestion);
    }
  }
}

/**
 * `override REASON...` after a request's id: an admin deciding their own request says why (four
 * eyes). Undefined when the words do not start with `override`.
 */
function overrideOf(words: string[], verb: "approve" | "reject") {
  if (words[0]?.toLowerCase() !== "override") return undefined;
  const reason = words.slice(1).join(" ").trim();
  return reason ? { ok: true as const, reason } : fail(`budget ${verb} ID override needs the reason you decide your own request`, `budget ${verb} ID override REASON...`);
}

/** An approval refusal as people read it: an invalid amount says what the amount must be. */
const approvalRefusal = (title: string, f: ApprovalFailure) => refused(title, f.kind === "invalid" ? f.errors.map((e) => e.message).join("; ") : f.message);

/** Where a request was made, so the decision is told there too. */
const requestedVia = (caller: Actor, c: Conversation) => ({
  platform: c.platform,
  ...(c.channelId ? { channel_id: c.channelId } : {}),
  ...(caller.kind === "member" ? { user_id: caller.userId } : {}),
});

async function show(budget: Budget, ctx: CommandContext): Promise<Reply> {
  const [status] = await ctx.services.spend.standings([budget], ctx.now);
  if (!status) throw new Error(`no spend answer for budget ${budget.id}`);
  const period = budgetPeriod(budget, ctx.now);
  return reply({
    title: `Budget ${budget.name}`,
    summary: `${formatUsd(status.spend)} of ${formatUsd(budget.amount)} spent this ${budget.period} (${status.percent} %): ${status.state}.`,
    facts: [
      { label: "Scope", value: describeScope(budget.scope) },
      { label: "Mode", value: budget.mode === "hard" ? "hard (blocks at 100 %)" : "soft (alerts only)" },
      { label: "Thresholds", value: budget.thresholds.map((t) => `${t} %`).join(", ") },
      { label: "Resets", value: utcMinute(period.end) },
      ...(status.forecast !== null ? [{ label: "Forecast", value: formatUsd(status.forecast) }] : []),
      ...(budget.paused ? [{ label: "Paused", value: "yes" }] : []),
    ],
    actions: [
      { action: "request_raise", label: "Request raise", target: budget.name },
      { action: "breakdown", label: "Breakdown", target: budget.name },
    ],
  });
}

async function run(cmd: BudgetValue, ctx: CommandContext): Promise<Reply> {
  const { services, caller } = ctx;
  const actor = actorText(caller);
  switch (cmd.verb) {
    case "budget.list": {
      const reads = await readsOf(ctx);
      const nothing = readsNothing(reads);
      if (nothing) return refused("Not readable here", nothing);
      const budgets = (await services.budgets.list()).filter((b) => budgetReadable(reads, b));
      if (budgets.length === 0) return reply({ title: "No budgets yet", summary: "An admin can add one: budget set team:search $500 monthly hard" });
      const rows = (await services.spend.standings(budgets, ctx.now)).map((s) => {
        const b = s.budget;
        return [b.name, describeScope(b.scope), `${formatUsd(s.spend)} / ${formatUsd(b.amount)}`, `${s.percent} %`, b.paused ? "paused" : s.state, b.mode];
      });
      return reply({ title: `${budgets.length} budget${budgets.length === 1 ? "" : "s"}`, table: { columns: ["budget", "scope", "spent", "used", "state", "mode"], rows } });
    }
    case "budget.show": {
      const found = await services.budgets.find(cmd.name);
      const reads = await readsOf(ctx);
      if (found && !budgetReadable(reads, found)) return refused("Not readable here", budgetOutside(reads, cmd.name));
      return found ? show(found, ctx) : refused("No such budget", `There is no budget called ${cmd.name}; budget list shows them all.`);
    }
    case "budget.set": {
      const name = budgetName(cmd.scope, cmd.period);
      const existing = await services.budgets.find(name);
      const input = { name, scope: cmd.scope, amount_usd: cmd.amount, period: cmd.period, timezone: ctx.conversation.timezone, thresholds: [50, 80, 100], mode: cmd.mode, paused: false };
      const result = existing
        ? await services.budgets.update(existing.id, (b) => ({ ...inputOf(b), amount_usd: cmd.amount, mode: cmd.mode }), actor)
        : await services.budgets.create(input, actor);
      return result.ok ? show(result.budget, ctx) : refused("The budget was not saved", result.message);
    }
    case "budget.pause":
    case "budget.resume": {
      const paused = cmd.verb === "budget.pause";
      const result = await services.budgets.update(cmd.name, (b) => ({ ...inputOf(b), paused }), actor);
      if (!result.ok) return refused("Nothing changed", result.message);
      return reply({ title: `Budget ${result.budget.name} ${paused ? "paused" : "resumed"}`, summary: paused ? "It sends no alerts and blocks nothing until resumed." : "It is evaluated and enforced again." });
    }
    case "budget.raise": {
      const target = await services.budgets.find(cmd.name);
      const reads = await readsOf(ctx);
      if (target && !budgetReadable(reads, target)) return refused("The raise was not requested", budgetOutside(reads, cmd.name));
      const admin = caller.kind === "admin";
      const result = await services.approvals.request(
        { budget: cmd.name, amount_usd: cmd.amount, reason: cmd.reason, requested_by: admin ? "admin" : actor, requested_via: requestedVia(caller, ctx.conversation) },
        admin ? caller.label : "admin",
        ctx.now,
        caller.kind === "member" ? caller.name : undefined,
      );
      if (!result.ok) return approvalRefusal("The raise was not requested", result);
      const { id, from_amount, to_amount } = result.value;
      return reply({
        title: `Raise requested for ${cmd.name}`,
        summary: `${formatUsd(from_amount)} → ${formatUsd(to_amount)}. Approvers have been asked; you will hear back here.`,
        facts: [{ label: "Request", value: id }, ...(cmd.reason ? [{ label: "Reason", value: cmd.reason }] : [])],
      });
    }
    case "budget.approve":
    case "budget.reject": {
      const decision = cmd.verb === "budget.approve" ? "approve" : "reject";
      const reason = cmd.verb === "budget.reject" && cmd.reason ? { reason: cmd.reason } : {};
      const result = await services.approvals.decide(cmd.id, { decision, by: caller, ...reason, ...(cmd.override ? { override: cmd.override } : {}) }, ctx.now);
      if (!result.ok) return approvalRefusal("Nothing was decided", result);
      const { budget: name, from_amount, to_amount, status } = result.value.approval;
      return reply({ title: `Request ${cmd.id} ${status}`, summary: status === "approved" ? `${name}: ${formatUsd(from_amount)} → ${formatUsd(to_amount)}.` : `${name} stays at ${formatUsd(from_amount)}.` });
    }
  }
}

/** Budgets seen and changed from a chat: list, show, set, pause and resume, and raises asked for and decided. */
export const budget = defineCommand<BudgetValue>({
  name: "budget",
  aliases: ["budgets"],
  usage: USAGE,
  examples: ["budget list", "budget set team:search $500 monthly hard", "budget raise team-search-monthly 800 launch week"],
  parse,
  role: (value) => BUDGET_ROLES[value.verb],
  run,
});
