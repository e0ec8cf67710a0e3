import type { Alert } from "../src/alerts/alert.ts";
import type { SubscriptionKind } from "../src/alerts/alert.ts";
import type { Budget, BudgetInput, Scope } from "../src/budgets/budget.ts";
import type { Role } from "./roles.ts";
import type { Database } from "../src/db/connection.ts";

/** Who typed the command, as their platform knows them. */
export interface Caller {
  platform: string;
  userId: string;
  name?: string;
}

/** The platform of whoever holds the admin token (the CLI, the admin API): an admin, named by `userId` (`admin`, `admin:ana`). */
export const ADMIN_PLATFORM = "admin";

/** How a caller is written in audit records and requests: `slack:U0123ABCD`, or the admin's own name. */
export const actorName = (caller: Caller): string => (caller.platform === ADMIN_PLATFORM ? caller.userId : `${caller.platform}:${caller.userId}`);

/** Where the command was typed: the conversation a reply, a mute or a subscription applies to. */
export interface Conversation {
  platform: string;
  /** The platform's address of the conversation (Slack team + channel, Teams reference, Telegram chat). */
  address: Record<string, unknown>;
  /** The part of `address` that names the conversation, when the rest may change (Teams' service URL). */
  key?: Record<string, unknown>;
  /** The conversation's channel id in Tollgate, when it is bound to one. */
  channelId?: string;
  /** What people call the conversation (`#search-alerts`), for the channel's name when it subscribes. */
  name?: string;
  /** Time zone periods are read in. */
  timezone: string;
  /**
   * True where an answer not shared on purpose reaches the asker alone (Slack's ephemeral answers,
   * a direct chat with the bot, the command line); absent where everyone in the conversation reads
   * every answer. A secret (a link code) is only ever answered where it is true.
   */
  private?: boolean;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; kind: string; message: string };

/** What handlers need from the rest of Tollgate, narrowed to what they use; src/app.ts provides it. */
export interface CommandServices {
  database: Database;
  roleOf(platform: string, userId: string): Promise<Role>;
  budgets: {
    list(): Promise<Budget[]>;
    find(idOrName: string): Promise<Budget | undefined>;
    create(input: BudgetInput, actor: string): Promise<Outcome<Budget>>;
    update(idOrName: string, change: (b: Budget) => BudgetInput, actor: string): Promise<Outcome<Budget>>;
  };
  budgetStatus(budget: Budget, now: Date): Promise<{ spend: bigint; percent: number; forecast: bigint | null; state: string }>;
  approvals: {
    request(req: { budget: string; amount: bigint; reason: string; by: Caller; via: Conversation }): Promise<Outcome<{ id: string; from: bigint; to: bigint }>>;
    decide(req: { id: string; decision: "approve" | "reject"; by: Caller; reason?: string }): Promise<Outcome<{ id: string; budget: string; from: bigint; to: bigint; status: string }>>;
    /**
     * A request as approvers see it now: the request while it waits, its outcome once decided or
     * expired; undefined when there is no such request. For platforms that redraw a card on demand
     * (Teams' refresh). People are named by their member names where they have one.
     */
    current(id: string, now: Date): Promise<Alert | undefined>;
  };
  mutes: {
    mute(channelId: string, budget: string, until: Date, by: string): Promise<Outcome<void>>;
    unmute(channelId: string, budget: string, by: string): Promise<Outcome<void>>;
  };
  channels: {
    /** The Tollgate channel bound to a conversation, by (the part of) its platform address (that names it). */
    find(platform: string, key: Record<string, unknown>): Promise<{ id: string; timezone: string; address: Record<string, unknown> } | undefined>;
    /** The conversation is now reached at `address`: its channel's deliveries go there. */
    readdress(channelId: string, address: Record<string, unknown>, by: string): Promise<void>;
    subscribe(conversation: Conversation, scope: Scope, kinds: SubscriptionKind[], by: string): Promise<Outcome<{ id: string }>>;
    unsubscribe(conversation: Conversation, by: string): Promise<Outcome<void>>;
  };
  recentAlerts(limit: number): Promise<Alert[]>;
  telegramLinks: {
    /**
     * A one-time code that binds the Telegram chat it is sent in to `scope` and `kinds`, with the
     * bot's deep link when the bot can be named; `not_configured` when this gateway has no Telegram.
     */
    create(request: { scope: Scope; kinds: SubscriptionKind[]; by: string }, now: Date): Promise<Outcome<TelegramLink>>;
  };
}

export interface TelegramLink {
  code: string;
  expiresAt: Date;
  /** `https://t.me/<bot>?start=CODE`; undefined when Telegram could not be asked the bot's name just now. */
  deepLink: string | undefined;
}

export interface CommandContext {
  caller: Caller;
  conversation: Conversation;
  services: CommandServices;
  now: Date;
}
