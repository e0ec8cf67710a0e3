import { type Budget, type Scope, describeScope, valueInScope } from "../src/budgets/budget.ts";
import { DIMENSIONS } from "../src/ledger/event.ts";
import type { CommandContext } from "./context.ts";

/*
 * What an asker may read in a conversation, the same on every platform (every read a command makes
 * goes through these):
 * - a conversation whose channel is subscribed or linked to scopes (team:search) reads only spend,
 *   budgets and alerts within one of them, whoever asks: everyone in it sees the answers;
 * - one an admin opened to all spend (`--scope all`) reads everything;
 * - any other (a direct chat, a channel subscribed to no scope, a Teams install, a conversation
 *   bound to nothing) reads what the asker may: the admin token and members above viewer all spend,
 *   as on the dashboard; a viewer the scopes of their member entry; someone who is no member nothing.
 */

/** What one asker reads in one conversation: everything, or only within one of `scopes` (none: nothing). */
export type Reads = { all: true } | { all: false; scopes: Scope[]; whose: "conversation" | "asker" };

const ALL: Reads = { all: true };

export async function readsOf(ctx: Pick<CommandContext, "caller" | "conversation" | "services">): Promise<Reads> {
  const { conversation, caller } = ctx;
  if (conversation.reads && conversation.reads.length > 0) return { all: false, scopes: conversation.reads, whose: "conversation" };
  if (conversation.readsAll || caller.kind === "admin") return ALL;
  const member = await ctx.services.members.find(caller.platform, caller.userId);
  if (member && member.role !== "viewer") return ALL;
  return { all: false, scopes: member?.scopes ?? [], whose: "asker" };
}

const scopesText = (scopes: readonly Scope[]) => scopes.map(describeScope).join(" or ");

/** Who the limit belongs to, for the start of a refusal. */
const holder = (reads: Extract<Reads, { all: false }>) => (reads.whose === "conversation" ? "This conversation reads" : "You read");

const NOTHING =
  "You read no spend here: this conversation is linked to no scope, and you are not a member with one. An admin can give you a role or scopes (tollgate members set), or link this conversation to a scope.";

/** The refusal for an asker who reads nothing here; undefined when they read something. */
export const readsNothing = (reads: Reads): string | undefined => (!reads.all && reads.scopes.length === 0 ? NOTHING : undefined);

/** `scope`'s values where `asked` leaves them out, `asked`'s where it narrows them; undefined when `asked` leaves the scope. */
function within(scope: Scope, asked: Scope): Scope | undefined {
  for (const dim of DIMENSIONS) {
    const [held, wanted] = [scope[dim], asked[dim]];
    if (held !== undefined && wanted !== undefined && !valueInScope(dim, held, wanted)) return undefined;
  }
  return { ...scope, ...asked };
}

/**
 * The filters a spend read uses: what was asked, held within what the asker reads. Refused when
 * the ask leaves every scope they read, or when they read several and the ask does not say which.
 */
export function readableFilters(reads: Reads, asked: Scope): { ok: true; filters: Scope } | { ok: false; message: string } {
  if (reads.all) return { ok: true, filters: asked };
  const { scopes } = reads;
  const nothing = readsNothing(reads);
  if (nothing) return { ok: false, message: nothing };
  const fits = scopes.flatMap((s) => within(s, asked) ?? []);
  if (fits.length === 1) return { ok: true, filters: fits[0]! };
  if (fits.length === 0) return { ok: false, message: `${holder(reads)} only ${scopesText(scopes)}; ${describeScope(asked)} is outside it.` };
  return { ok: false, message: `${holder(reads)} ${scopesText(scopes)}: name one, such as spend ${describeScope(scopes[0]!)}.` };
}

/** Whether all of a budget's spend lies within what the asker reads (a budget over everything does not, when they read scopes). */
export function budgetReadable(reads: Reads, budget: Pick<Budget, "scope">): boolean {
  if (reads.all) return true;
  return reads.scopes.some((s) => DIMENSIONS.every((dim) => s[dim] === undefined || (budget.scope[dim] !== undefined && valueInScope(dim, s[dim]!, budget.scope[dim]!))));
}

/** The refusal for a budget outside what the asker reads. */
export function budgetOutside(reads: Reads, name: string): string {
  if (reads.all) return `${name} is readable here.`;
  return readsNothing(reads) ?? `${name} is outside what ${reads.whose === "conversation" ? "this conversation reads" : "you read"} (${scopesText(reads.scopes)}).`;
}

/** What a link or subscription confirmation says the conversation now reads. */
export function readsText(channel: { scopes: readonly Scope[]; readsAll: boolean }): string {
  if (channel.scopes.length > 0) return `It reads only spend, budgets and alerts within ${scopesText(channel.scopes)}; an admin can open it to all spend with --scope all.`;
  if (channel.readsAll) return "It reads all spend, budgets and alerts (opened to all of it).";
  return "Each person here reads what their own role allows (viewers their member scopes, someone who is no member nothing); an admin can link it to a scope, or open it to all spend with --scope all.";
}

