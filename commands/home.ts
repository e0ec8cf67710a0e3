import type { Alert } from "../src/alerts/alert.ts";
import { type Actor, type Role, actorText, hasRole } from "../src/approvals/members.ts";
import { type Scope, describeScope } from "../src/budgets/budget.ts";
import type { Services } from "../src/services.ts";
import { BUDGETS_SHOWN, budgetsInScope, spend } from "./builtin/spend.ts";
import type { Invocation } from "./command.ts";
import type { CommandContext, Conversation } from "./context.ts";
import { budgetReadable, readableFilters, readsOf } from "./read-scope.ts";
import type { Reply } from "./reply.ts";

/*
 * A person's own page (Slack's App Home): this month's spend with the budgets in scope, and the
 * raises waiting for them. It belongs to nobody's channel, so what it reads follows the person,
 * as on the dashboard (src/web/viewer.ts): every role above viewer reads all spend, a viewer only
 * the scopes an admin gave them, and nothing when given none. Everything on it is answered by the
 * same commands a chat types, through the door.
 */

/** Scopes a viewer's home shows spend for, one answer each; the rest are named in a note. */
const SCOPES_SHOWN = 3;
/** Raises a home lists, oldest waiting last. */
const RAISES_SHOWN = 10;

/** A raise on someone's home: the request as approvers get it, its buttons only where pressing them would decide. */
export interface HomeRaise {
  request: Alert;
  decidable: boolean;
  /** Why there are no buttons, when it is the person's own request. */
  note?: string;
}

export interface Home {
  /** Who is looking and what they read, in a sentence. */
  about: string;
  /** This month's spend with its budgets in scope: one answer, or one per scope a viewer reads. */
  spend: Reply[];
  notes: string[];
  raises: HomeRaise[];
  /** Raises waiting beyond those listed. */
  moreRaises: number;
}

/** What a person reads on their own: undefined for all spend, else a viewer's scopes (empty: nothing). */
export async function personalReads(members: Services["members"], actor: Extract<Actor, { kind: "member" }>): Promise<{ role: Role; reads: Scope[] | undefined }> {
  const member = await members.find(actor.platform, actor.userId);
  const role = member?.role ?? "viewer";
  return { role, reads: role === "viewer" ? (member?.scopes ?? []) : undefined };
}

/** The conversation of a person's own page: private, in the organisation's time zone, reading `reads` (all when undefined). */
export function personalConversation(platform: string, timezone: string, reads: Scope[] | undefined): Conversation {
  return { platform, address: {}, name: "Home", timezone, private: true, ...(reads ? { reads } : {}) };
}

const article = (role: Role) => (/^[aeiou]/.test(role) ? `an ${role}` : `a ${role}`);

function aboutText(role: Role, reads: Scope[] | undefined): string {
  if (!reads) return `You are ${article(role)}: you see all AI spend.`;
  if (reads.length === 0) return `You are ${article(role)} with no scopes: you see no spend yet. An admin can give you a role, or scopes to see.`;
  return `You are ${article(role)}: you see ${reads.map(describeScope).join(" and ")}.`;
}

const THIS_MONTH = spend.invoke({ verb: "spend", period: "this-month", filters: {}, share: false });

/**
 * The buttons an alert about a budget carries, for each budget a spend answer lists: Request raise
 * for those who may ask, Breakdown for everyone.
 */
async function budgetButtons(answer: Reply, ctx: CommandContext, role: Role): Promise<Reply> {
  const reads = await readsOf(ctx);
  const readable = readableFilters(reads, {});
  if (answer.error || !readable.ok) return answer;
  const listed = (await budgetsInScope(ctx, readable.filters, reads)).slice(0, BUDGETS_SHOWN).map((s) => s.budget.name);
  const raise = hasRole(role, "requester");
  const actions = listed.flatMap((name) => [
    ...(raise ? [{ action: "request_raise" as const, label: `Raise ${name}`, target: name }] : []),
    { action: "breakdown" as const, label: `Break down ${name}`, target: name },
  ]);
  return { ...answer, actions: [...answer.actions, ...actions] };
}

/**
 * What `ctx.caller`'s home shows; `answer` is the door's (the role check, then the command).
 * `ctx.conversation.reads` is what they read (personalConversation); `reads` says it again with
 * the empty list kept, which a conversation takes for everything.
 */
export async function homeOf(
  ctx: CommandContext,
  role: Role,
  reads: Scope[] | undefined,
  answer: (invocation: Invocation, ctx: CommandContext) => Promise<Reply>,
): Promise<Home> {
  const { services, caller, now } = ctx;
  const about = aboutText(role, reads);
  if (reads && reads.length === 0) return { about, spend: [], notes: [], raises: [], moreRaises: 0 };
  // One answer per scope: a spend read must name one scope where a viewer has several.
  const scoped = reads ? reads.slice(0, SCOPES_SHOWN).map((scope) => ({ ...ctx, conversation: { ...ctx.conversation, reads: [scope] } })) : [ctx];
  const spendReplies = await Promise.all(scoped.map(async (c) => budgetButtons(await answer(THIS_MONTH, c), c, role)));
  const notes = reads && reads.length > SCOPES_SHOWN ? [`${reads.length - SCOPES_SHOWN} more scopes: spend SCOPE in a chat with Tollgate shows them.`] : [];

  const budgets = new Map((await services.budgets.list()).map((b) => [b.id, b]));
  const readsHere = await readsOf(ctx);
  const me = actorText(caller);
  const waiting: { id: string; decidable: boolean }[] = [];
  for (const approval of await services.approvals.list({ status: "pending" })) {
    const budget = budgets.get(approval.budget_id);
    if (!budget || approval.expires_at <= now || !budgetReadable(readsHere, budget)) continue;
    const decidable = services.approvals.mayDecide(approval, caller, role, now);
    if (decidable || approval.requested_by === me) waiting.push({ id: approval.id, decidable });
  }
  const raises: HomeRaise[] = [];
  for (const { id, decidable } of waiting.slice(0, RAISES_SHOWN)) {
    const request = await services.approvals.current(id, now);
    if (request) raises.push(decidable ? { request, decidable } : { request: { ...request, actions: [] }, decidable, note: "You asked for this raise: another approver or an admin decides it." });
  }
  return { about, spend: spendReplies, notes, raises, moreRaises: Math.max(0, waiting.length - RAISES_SHOWN) };
}
