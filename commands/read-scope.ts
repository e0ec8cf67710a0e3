import { type Budget, type Scope, describeScope, valueInScope } from "../src/budgets/budget.ts";
import { DIMENSIONS } from "../src/ledger/event.ts";
import type { Conversation } from "./context.ts";

/*
 * What a conversation may read. A channel subscribed or linked to scopes (team:search) reads only
 * spend, budgets and alerts within one of them; one linked to all of it (`--scope all`, by an admin)
 * and a conversation bound to no channel read everything. Every read a command makes goes through
 * these, so the rule is the same on every platform.
 */

/** The scopes a conversation is held to; undefined when it reads everything. */
export const readScopes = (conversation: Pick<Conversation, "reads">): Scope[] | undefined =>
  conversation.reads && conversation.reads.length > 0 ? conversation.reads : undefined;

const scopesText = (scopes: readonly Scope[]) => scopes.map(describeScope).join(" or ");

/** `scope`'s values where `asked` leaves them out, `asked`'s where it narrows them; undefined when `asked` leaves the scope. */
function within(scope: Scope, asked: Scope): Scope | undefined {
  for (const dim of DIMENSIONS) {
    const [held, wanted] = [scope[dim], asked[dim]];
    if (held !== undefined && wanted !== undefined && !valueInScope(dim, held, wanted)) return undefined;
  }
  return { ...scope, ...asked };
}

/**
 * The filters a spend read uses: what was asked, held within the conversation's scope. Refused
 * when the ask leaves every scope the conversation reads, or when it reads several and the ask
 * does not say which.
 */
export function readableFilters(conversation: Pick<Conversation, "reads">, asked: Scope): { ok: true; filters: Scope } | { ok: false; message: string } {
  const scopes = readScopes(conversation);
  if (!scopes) return { ok: true, filters: asked };
  const fits = scopes.flatMap((s) => within(s, asked) ?? []);
  if (fits.length === 1) return { ok: true, filters: fits[0]! };
  if (fits.length === 0) return { ok: false, message: `This conversation reads only ${scopesText(scopes)}; ${describeScope(asked)} is outside it.` };
  return { ok: false, message: `This conversation reads ${scopesText(scopes)}: name one, such as spend ${describeScope(scopes[0]!)}.` };
}

/** Whether all of a budget's spend lies within what the conversation reads (a budget over everything does not, in a scoped one). */
export function budgetReadable(conversation: Pick<Conversation, "reads">, budget: Pick<Budget, "scope">): boolean {
  const scopes = readScopes(conversation);
  if (!scopes) return true;
  return scopes.some((s) => DIMENSIONS.every((dim) => s[dim] === undefined || (budget.scope[dim] !== undefined && valueInScope(dim, s[dim]!, budget.scope[dim]!))));
}

/** The refusal for a budget outside the conversation's scope. */
export const budgetOutside = (conversation: Pick<Conversation, "reads">, name: string) =>
  `${name} is outside what this conversation reads (${scopesText(readScopes(conversation) ?? [])}).`;

/** What a link or subscription confirmation says the conversation now reads. */
export function readsText(scopes: readonly Scope[]): string {
  return scopes.length > 0
    ? `It reads only spend, budgets and alerts within ${scopesText(scopes)}; an admin can open it to all spend with --scope all.`
    : "It reads all spend, budgets and alerts (linked to all of it).";
}
