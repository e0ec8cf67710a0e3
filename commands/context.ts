import type { Actor } from "../src/approvals/members.ts";
import type { Scope } from "../src/budgets/budget.ts";
import type { Services } from "../src/services.ts";

/**
 * Who typed the command: a member as their platform knows them (`name` is what the platform calls
 * them), or the holder of the admin token (the CLI, the admin API), an admin.
 */
export type Caller = Actor;

/** Where the command was typed: the conversation a reply, a mute or a subscription applies to. */
export interface Conversation {
  platform: string;
  /** The platform's address of the conversation, as its deliverer reaches it. */
  address: Record<string, unknown>;
  /** The part of `address` that names the conversation, when the rest may change. */
  key?: Record<string, unknown>;
  /** The conversation's channel id in Tollgate, when it is bound to one. */
  channelId?: string;
  /** What people call the conversation (`#search-alerts`), for the channel's name when it subscribes. */
  name?: string;
  /**
   * The scopes of the bound channel: the conversation reads only spend, budgets and alerts within
   * one of them. Absent or empty: it reads what each asker may (commands/read-scope.ts).
   */
  reads?: Scope[];
  /** The bound channel was opened to all spend by an admin: everyone in the conversation reads everything. */
  readsAll?: boolean;
  /** Time zone periods are read in. */
  timezone: string;
  /**
   * True where an answer not shared on purpose reaches the asker alone (an answer only the asker
   * sees, a direct chat with the bot, the command line); absent where everyone in the conversation
   * reads every answer. A secret (a link code) is only ever answered where it is true.
   */
  private?: boolean;
}

export interface CommandContext {
  caller: Caller;
  conversation: Conversation;
  services: Services;
  now: Date;
}
