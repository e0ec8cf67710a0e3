import type { AlertAction } from "../src/alerts/alert.ts";
import { actorText } from "../src/approvals/members.ts";
import type { Logger } from "../src/logger.ts";
import type { Services } from "../src/services.ts";
import type { z } from "zod";
import { actionCommand } from "./actions.ts";
import { BUDGET_ROLES, budget } from "./builtin/budget.ts";
import type { Invocation, ParseError } from "./command.ts";
import type { CommandContext, Conversation } from "./context.ts";
import { parseAmount } from "./grammar.ts";
import { type Home, homeOf, personalConversation, personalReads } from "./home.ts";
import type { Registry } from "./registry.ts";
import { type Reply, refused, reply } from "./reply.ts";
import { refusal } from "./roles.ts";
import { within } from "./within.ts";

/*
 * The one way in for every chat platform (and, through answerText, the admin API and the CLI).
 * A platform's receiver turns what it was sent into a person, a place and words or a button; the
 * door resolves the conversation (its Tollgate channel, its time zone), applies the role, runs the
 * command, and answers a failure the same way everywhere. It lives in commands/ because it is
 * platform-neutral and only commands/ and src/ are below it; integrations/ sit above it.
 */

/** What every platform says when answering failed: no stack trace, nothing about the cause. */
export const TROUBLE = reply({ title: "Something went wrong", summary: "Tollgate could not answer just now; please try again in a minute.", error: true });

function parseErrorReply(error: ParseError): Reply {
  return reply({
    title: "I did not understand that",
    summary: error.message,
    notes: [`Expected ${error.expected}.`, ...(error.command ? [`help ${error.command} shows examples.`] : ["help lists every command."])],
    error: true,
  });
}

/** Answers a command that came already parsed (a button press, a form): the role check, then the command. */
export async function answerInvocation(invocation: Invocation, ctx: CommandContext): Promise<Reply> {
  return (await refusal(invocation.value.verb, invocation.role, ctx)) ?? invocation.run(ctx);
}

/** Parses and answers one command for one caller: the path every platform, the admin API and the CLI share. */
export async function answerText(registry: Registry, text: string, ctx: CommandContext): Promise<Reply> {
  const parsed = registry.parse(text);
  return parsed.ok ? answerInvocation(parsed.value, ctx) : parseErrorReply(parsed.error);
}

/** Where on a platform a command came from, as its receiver read it. */
export interface Place {
  /** How the platform's deliverer reaches the conversation (a channel's stored address). */
  address: Record<string, unknown>;
  /** The part of `address` that names the conversation for good, when the rest may change. */
  key?: Record<string, unknown>;
  name?: string;
  /** Whether an answer here reaches the asker alone. */
  private: boolean;
}

/** Who, as the platform knows them. */
export interface Person {
  userId: string;
  name?: string;
}

/** An amount a form or a reply asked for, and the words after it; the problem in one line when it is no amount. */
export type AmountRead = { ok: true; amount: bigint; rest: string[] } | { ok: false; problem: string };

export interface Door {
  readonly platform: string;
  readonly services: Services;
  /** The conversation of a place: its channel when bound (following a changed address), its time zone. */
  conversation(place: Place): Promise<Conversation>;
  context(person: Person, conversation: Conversation): CommandContext;
  /** How audit records name a person of this platform: `platform:USER_ID`. */
  actor(person: Person): string;
  /** Words typed to the bot. */
  typed(text: string, ctx: CommandContext): Promise<Reply>;
  /** A button of a Reply or an Alert, other than `request_raise` (which opens a form). */
  pressed(action: Pick<z.infer<typeof AlertAction>, "action" | "target">, ctx: CommandContext): Promise<Reply>;
  /**
   * A person on their own page (Slack's App Home), in no channel: they read what their role and
   * scopes let them (commands/home.ts); undefined when that is nothing.
   */
  personal(person: Person): Promise<CommandContext | undefined>;
  /** What a person's own page shows: this month's spend, the budgets in scope, the raises waiting for them. */
  home(person: Person): Promise<Home>;
  /** A refusal when the caller may not ask for raises, for a form to check before it opens. */
  raiseRefusal(ctx: CommandContext): Promise<Reply | undefined>;
  /** The amount at the start of what a raise form or question was answered with. */
  readAmount(text: string): AmountRead;
  /** A raise asked for through a form. */
  raise(budgetName: string, amount: bigint, reason: string, ctx: CommandContext): Promise<Reply>;
  /** Runs `work`; a failure is logged by its kind (never its contents) and becomes TROUBLE. */
  safely<T>(what: string, work: () => Promise<T>): Promise<T | Reply>;
  /**
   * The answer if it is ready within the platform's acknowledgement deadline (`ms`), undefined
   * otherwise: the work goes on, and the platform follows up with it.
   */
  promptly<T>(work: Promise<T>, ms: number): Promise<T | undefined>;
}

export interface DoorOptions {
  platform: string;
  registry: Registry;
  services: Services;
  logger: Logger;
  /** The organisation's time zone, for conversations not bound to a channel with its own. */
  timezone: string;
}

const sameAddress = (a: Record<string, unknown>, b: Record<string, unknown>) => JSON.stringify(a) === JSON.stringify(b);

export function chatDoor({ platform, registry, services, logger, timezone }: DoorOptions): Door {
  const context = (person: Person, conversation: Conversation): CommandContext => ({
    caller: { kind: "member", platform, userId: person.userId, ...(person.name ? { name: person.name } : {}) },
    conversation,
    services,
    now: new Date(),
  });
  const personally = async (person: Person) => {
    const { role, reads } = await personalReads(services.members, { kind: "member", platform, userId: person.userId });
    return { role, reads, ctx: context(person, personalConversation(platform, timezone, reads)) };
  };
  return {
    platform,
    services,
    async conversation(place) {
      const named = Object.keys(place.address).length > 0;
      const bound = named ? await services.channels.findByAddress(platform, place.key ?? place.address) : undefined;
      if (bound && place.key && !sameAddress(bound.address, place.address)) await services.channels.readdress(bound.id, place.address, platform);
      return {
        platform,
        address: place.address,
        ...(place.key ? { key: place.key } : {}),
        ...(bound ? { channelId: bound.id, reads: bound.subscriptions.scopes, readsAll: bound.reads_all } : {}),
        ...(place.name ? { name: place.name } : {}),
        timezone: bound?.timezone ?? timezone,
        private: place.private,
      };
    },
    context,
    async personal(person) {
      const { reads, ctx } = await personally(person);
      return reads && reads.length === 0 ? undefined : ctx;
    },
    async home(person) {
      const { role, reads, ctx } = await personally(person);
      return homeOf(ctx, role, reads, answerInvocation);
    },
    actor: (person) => actorText({ kind: "member", platform, userId: person.userId }),
    typed: (text, ctx) => answerText(registry, text, ctx),
    async pressed(action, ctx) {
      const invocation = await actionCommand(action, services, ctx.now);
      return invocation ? answerInvocation(invocation, ctx) : refused("Nothing to show", `${action.target} is no longer a budget or a period.`);
    },
    raiseRefusal: (ctx) => refusal("budget.raise", BUDGET_ROLES["budget.raise"], ctx),
    readAmount(text) {
      const words = text.trim().split(/\s+/).filter(Boolean);
      const amount = parseAmount(words);
      return amount.ok ? { ok: true, amount: amount.amount, rest: words.slice(amount.used) } : { ok: false, problem: `${amount.error.message}: expected ${amount.error.expected}` };
    },
    raise: (name, amount, reason, ctx) => answerInvocation(budget.invoke({ verb: "budget.raise", name, amount, reason }), ctx),
    async safely(what, work) {
      try {
        return await work();
      } catch (err) {
        const e = err as Error & { code?: unknown; statusCode?: number };
        logger.error({ component: platform, error: e.name, code: e.code, status: e.statusCode }, `${platform} ${what} failed`);
        return TROUBLE;
      }
    },
    promptly: (work, ms) => within(work, ms),
  };
}
