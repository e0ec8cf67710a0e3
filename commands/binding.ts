import type { SubscriptionKind } from "../src/alerts/alert.ts";
import type { Scope } from "../src/budgets/budget.ts";
import type { Services } from "../src/services.ts";
import type { Conversation } from "./context.ts";

/*
 * A conversation and the Tollgate channel bound to it: the one way every door subscribes a
 * conversation (the subscribe command, an install, a link code) and lets it go.
 */

export type Binding = { ok: true; channelId: string; scopes: Scope[]; readsAll: boolean } | { ok: false; kind: "invalid" | "not_found"; message: string };

/**
 * Binds the conversation to a channel getting `kinds` for `scope`, created on first use. A scope
 * widens the ones it has; `"all"` (an admin's `--scope all`) opens it to everything; undefined
 * keeps what it has. The channel's scopes are also what the conversation reads, and `"all"` opens
 * its reads to all spend (read-scope.ts).
 */
export async function subscribeConversation(
  channels: Services["channels"],
  conversation: Conversation,
  scope: Scope | "all" | undefined,
  kinds: SubscriptionKind[],
  by: string,
): Promise<Binding> {
  if (Object.keys(conversation.address).length === 0)
    return { ok: false, kind: "invalid", message: "Only a chat conversation can subscribe: type it in the chat that should get the messages, or add a webhook with tollgate channels create." };
  const name = conversation.name ?? `${conversation.platform} ${Object.values(conversation.address).join("/")}`;
  const channel = await channels.subscribe(
    {
      platform: conversation.platform,
      name: name.slice(0, 200),
      address: conversation.address,
      ...(conversation.key ? { key: conversation.key } : {}),
      secret: null,
      scopes: scope === undefined || scope === "all" || Object.keys(scope).length === 0 ? [] : [scope],
      everything: scope === "all",
      kinds,
      timezone: conversation.timezone,
    },
    by,
  );
  return { ok: true, channelId: channel.id, scopes: channel.subscriptions.scopes, readsAll: channel.reads_all };
}

/** Removes the conversation's channel: it gets nothing more. */
export async function unsubscribeConversation(channels: Services["channels"], conversation: Conversation, by: string): Promise<Binding> {
  const found = conversation.channelId ?? (await channels.findByAddress(conversation.platform, conversation.key ?? conversation.address))?.id;
  if (!found) return { ok: false, kind: "not_found", message: "This conversation is not subscribed to anything." };
  const removed = await channels.remove(found, by);
  return removed.ok ? { ok: true, channelId: found, scopes: [], readsAll: false } : removed;
}
