import { ADMIN_PLATFORM, type Caller, type CommandServices, type Conversation, type Outcome } from "../commands/context.ts";
import { recentAlerts } from "./alerts/outbox.ts";
import type { ChannelStore } from "./alerts/channels.ts";
import type { LinkCodes } from "./alerts/link-codes.ts";
import type { MuteStore } from "./alerts/mutes.ts";
import { type Actor, type Members, actorText } from "./approvals/members.ts";
import { type Approvals, type ApprovalFailure, decidedAlert, requestedAlert } from "./approvals/requests.ts";
import { percentOf } from "./budgets/evaluate.ts";
import { forecastSpend } from "./budgets/forecast.ts";
import { budgetState } from "./budgets/status.ts";
import { spendForBudgets } from "./budgets/spend-batch.ts";
import type { BudgetStore } from "./budgets/store.ts";
import type { Database } from "./db/connection.ts";
import type { ChatLinker } from "./integration.ts";
import { picoToDecimalString } from "./pricing/money.ts";

/** The parts of a gateway chat commands act through. */
export interface CommandParts {
  database: Database;
  budgets: BudgetStore;
  members: Members;
  approvals: Approvals;
  mutes: MuteStore;
  channels: ChannelStore;
  linkCodes: LinkCodes;
  /** Telegram's deep links; undefined when this gateway has no Telegram (not composed in, or no bot token). */
  telegram: ChatLinker | undefined;
}

const TELEGRAM_NOT_CONFIGURED =
  "Telegram is not configured on this gateway: set TELEGRAM_BOT_TOKEN (and TELEGRAM_WEBHOOK_SECRET, or TELEGRAM_MODE=polling) and restart it; README, Connect Telegram, has the steps.";

const failed = (f: { kind: string; message: string }): { ok: false; kind: string; message: string } => ({ ok: false, kind: f.kind, message: f.message });

/** The admin token's bearer acts as an admin of that name; everyone else is looked up as a member. */
function actorOf(caller: Caller): Actor {
  return caller.platform === ADMIN_PLATFORM ? { kind: "admin", label: caller.userId } : { kind: "member", platform: caller.platform, userId: caller.userId, ...(caller.name ? { name: caller.name } : {}) };
}

/** An approval refusal as people read it: an invalid amount says what the amount must be. */
const approvalFailure = (f: ApprovalFailure) => failed({ kind: f.kind, message: f.kind === "invalid" ? f.errors.map((e) => e.message).join("; ") : f.message });

/** Where a request was made, so the decision is told there too. */
const via = (c: Conversation) => ({ platform: c.platform, ...(c.channelId ? { channel_id: c.channelId } : {}) });

/**
 * What chat commands may do, over the gateway's stores: every change goes through the store that
 * audits it, and every role check the stores make still applies (an approval checks the decider's
 * role itself, whatever the command layer already checked).
 */
export function commandServices(parts: CommandParts): CommandServices {
  const { database, budgets, members, approvals, mutes, channels, linkCodes, telegram } = parts;
  return {
    database,
    roleOf: async (platform, userId) => (platform === ADMIN_PLATFORM ? "admin" : members.roleOf(platform, userId)),
    budgets: {
      list: () => budgets.list(),
      find: (idOrName) => budgets.find(idOrName),
      async create(input, actor) {
        const result = await budgets.create(input, actor);
        return result.ok ? { ok: true, value: result.budget } : failed(result);
      },
      async update(idOrName, change, actor) {
        const result = await budgets.update(idOrName, change, actor);
        return result.ok ? { ok: true, value: result.budget } : failed(result);
      },
    },
    async budgetStatus(budget, now) {
      const [read] = await spendForBudgets(database, [budget], now);
      if (!read) throw new Error(`no spend answer for budget ${budget.id}`);
      const forecast = forecastSpend({ period: read.period, now, spend: read.spend, recentSpend: read.recentSpend });
      return { spend: read.spend, percent: percentOf(read.spend, budget.amount), forecast, state: budgetState(budget, read.spend, forecast) };
    },
    approvals: {
      async request({ budget, amount, reason, by, via: conversation }) {
        const actor = actorOf(by);
        const result = await approvals.request(
          {
            budget,
            amount_usd: amount,
            reason,
            requested_by: actor.kind === "admin" ? "admin" : actorText(actor),
            requested_via: { ...via(conversation), ...(actor.kind === "member" ? { user_id: actor.userId } : {}) },
          },
          actor.kind === "admin" ? actor.label : "admin",
          new Date(),
          by.name,
        );
        if (!result.ok) return approvalFailure(result);
        return { ok: true, value: { id: result.value.id, from: result.value.from_amount, to: result.value.to_amount } };
      },
      async decide({ id, decision, by, reason }) {
        const result = await approvals.decide(id, { decision, by: actorOf(by), ...(reason ? { reason } : {}) }, new Date());
        if (!result.ok) return approvalFailure(result);
        const { approval } = result.value;
        return { ok: true, value: { id: approval.id, budget: approval.budget, from: approval.from_amount, to: approval.to_amount, status: approval.status } };
      },
      async current(id, now) {
        const approval = await approvals.get(id);
        const budget = approval && (await budgets.find(approval.budget_id));
        if (!approval || !budget) return undefined;
        if (approval.status === "pending" && approval.expires_at > now) {
          const [read] = await spendForBudgets(database, [budget], now);
          if (!read) return undefined;
          const alert = requestedAlert(approval, budget, { spend: read.spend, period: read.period }, now);
          const forecast = forecastSpend({ period: read.period, now, spend: read.spend, recentSpend: read.recentSpend });
          return { ...alert, forecast_usd: forecast === null ? null : picoToDecimalString(forecast) };
        }
        // Past its time but not yet marked by the job: shown as what it is.
        const settled = approval.status === "pending" ? { ...approval, status: "expired" as const, decided_at: approval.expires_at } : approval;
        return decidedAlert(settled, budget, settled.decided_at ?? now);
      },
    },
    mutes: {
      async mute(channelId, budget, until, by): Promise<Outcome<void>> {
        const result = await mutes.mute(channelId, budget, until, by);
        return result.ok ? { ok: true, value: undefined } : failed(result);
      },
      async unmute(channelId, budget, by): Promise<Outcome<void>> {
        const result = await mutes.unmute(channelId, budget, by);
        return result.ok ? { ok: true, value: undefined } : failed(result);
      },
    },
    channels: {
      async find(platform, key) {
        const found = await channels.findByAddress(platform, key);
        return found && { id: found.id, timezone: found.timezone, address: found.address };
      },
      readdress: (channelId, address, by) => channels.readdress(channelId, address, by),
      async subscribe(conversation, scope, kinds, by) {
        if (Object.keys(conversation.address).length === 0)
          return { ok: false, kind: "invalid", message: "Only a chat conversation can subscribe: type it in the Slack channel that should get the messages, or add a webhook with tollgate channels create." };
        const name = conversation.name ?? `${conversation.platform} ${Object.values(conversation.address).join("/")}`;
        const channel = await channels.subscribe(
          { platform: conversation.platform, name: name.slice(0, 200), address: conversation.address, ...(conversation.key ? { key: conversation.key } : {}), secret: null, scopes: Object.keys(scope).length > 0 ? [scope] : [], kinds, timezone: conversation.timezone },
          by,
        );
        return { ok: true, value: { id: channel.id } };
      },
      async unsubscribe(conversation, by): Promise<Outcome<void>> {
        const found = conversation.channelId ?? (await channels.findByAddress(conversation.platform, conversation.key ?? conversation.address))?.id;
        if (!found) return { ok: false, kind: "not_found", message: "This conversation is not subscribed to anything." };
        const removed = await channels.remove(found, by);
        return removed.ok ? { ok: true, value: undefined } : failed(removed);
      },
    },
    recentAlerts: (limit) => recentAlerts(database, limit),
    telegramLinks: {
      async create(request, now) {
        // A code no bot will ever take would only mislead whoever was given it.
        if (!telegram) return { ok: false, kind: "not_configured", message: TELEGRAM_NOT_CONFIGURED };
        const { code, expiresAt } = await linkCodes.create(request, now);
        return { ok: true, value: { code, expiresAt, deepLink: await telegram.deepLink(code) } };
      },
    },
  };
}
