import {
  type Activity,
  type AdaptiveCardInvokeResponse,
  type AdaptiveCardInvokeValue,
  CardFactory,
  CloudAdapter,
  type ConversationReference,
  type InvokeResponse,
  MessageFactory,
  TeamsActivityHandler,
  TurnContext,
} from "botbuilder";
import type { CommandContext, Conversation } from "../../commands/context.ts";
import { subscribeConversation, unsubscribeConversation } from "../../commands/binding.ts";
import { readsText } from "../../commands/read-scope.ts";
import type { Door } from "../../commands/door.ts";
import { type Reply, refused, reply } from "../../commands/reply.ts";
import type { Logger } from "../../src/logger.ts";
import { type AdaptiveCard, CARD_CONTENT_TYPE, INPUTS, VERBS, type Verb, alertsCard, replyCard, summaryText } from "./cards.ts";
import { botAuthentication } from "./auth.ts";
import type { TeamsSettings } from "./settings.ts";

/*
 * Teams' door in, on botbuilder (whose long-term support has ended; its successor, the Microsoft
 * 365 Agents SDK, speaks the same protocol): every botbuilder type stays in this folder so the
 * swap is this folder alone. This file turns activities into a person, a place and words or a
 * button; the door (commands/door.ts) answers, cards.ts draws.
 */

export const PLATFORM = "teams";

/** Teams gives a bot about 5 s to answer an invoke; a decision that takes longer finishes anyway and the outbox redraws the card. */
export const INVOKE_ANSWER_MS = 4000;

/** Where a Teams conversation is reached: what a channel stores, and what proactive messages are sent with. */
export interface TeamsAddress {
  service_url: string;
  tenant_id: string;
  conversation_id: string;
  [key: string]: unknown;
}

/**
 * The conversation an activity is in. A reply in a channel thread names the thread
 * (`19:...@thread.tacv2;messageid=123`): the binding is to the channel itself.
 */
export function addressOf(activity: Partial<Activity>): TeamsAddress | undefined {
  const id = activity.conversation?.id;
  const tenant = activity.conversation?.tenantId ?? (activity.channelData as { tenant?: { id?: string } } | undefined)?.tenant?.id;
  if (!id || !activity.serviceUrl || !tenant) return undefined;
  return { service_url: activity.serviceUrl, tenant_id: tenant, conversation_id: id.replace(/;messageid=\d+$/, "") };
}

/** What names a conversation for good: its service URL may change. */
const keyOf = (address: TeamsAddress) => ({ tenant_id: address.tenant_id, conversation_id: address.conversation_id });

/** The reference continueConversationAsync needs, from a stored address. */
export function referenceOf(address: TeamsAddress): Partial<ConversationReference> {
  return { channelId: "msteams", serviceUrl: address.service_url, conversation: { id: address.conversation_id, tenantId: address.tenant_id, isGroup: false, conversationType: "", name: "" } };
}

/**
 * botbuilder's CloudAdapter, taking activities that mount.ts has already read and checked rather
 * than the raw request: its own `process` answers bad bodies and refusals with console output
 * and its own bodies.
 */
export class TeamsAdapter extends CloudAdapter {
  /** Authenticates the activity with the Authorization header and runs `logic` on its turn; the invoke's answer, if any. */
  handle(authorization: string, activity: Activity, logic: (context: TurnContext) => Promise<void>): Promise<InvokeResponse | undefined> {
    return this.processActivity(authorization, activity, logic);
  }
}

/** The adapter for this gateway's bot credentials (see auth.ts). */
export function createAdapter(settings: TeamsSettings, logger: Logger): TeamsAdapter {
  const adapter = new TeamsAdapter(botAuthentication(settings));
  adapter.onTurnError = async (_context, error) => {
    // Only the error's kind: bodies and tokens stay out of the log.
    logger.error({ component: "teams", error: (error as Error).name, status: (error as { statusCode?: number }).statusCode }, "teams turn failed");
  };
  return adapter;
}

export const cardActivity = (card: AdaptiveCard, title: string): Partial<Activity> => ({
  ...MessageFactory.attachment(CardFactory.adaptiveCard(card)),
  summary: summaryText(title),
});

/** What an Action.Execute or Action.Submit sent: its verb, target and the inputs of its form. */
interface Pressed {
  verb: Verb;
  target: string;
  inputs: Record<string, string>;
}

function pressed(data: unknown): Pressed | undefined {
  if (!data || typeof data !== "object") return undefined;
  const { verb, target, ...rest } = data as Record<string, unknown>;
  if (typeof verb !== "string" || !(VERBS as readonly string[]).includes(verb) || typeof target !== "string") return undefined;
  const inputs = Object.fromEntries(Object.entries(rest).filter((e): e is [string, string] => typeof e[1] === "string"));
  return { verb: verb as Verb, target, inputs };
}

export interface BotOptions {
  door: Door;
  invokeAnswerMs: number;
}

/**
 * Commands typed to the bot (`@Tollgate spend this-week` in a channel, or anything in a personal
 * chat), buttons pressed on its cards, and its installation, which binds the conversation.
 */
export class TollgateBot extends TeamsActivityHandler {
  constructor(private readonly opts: BotOptions) {
    super();
    this.onMessage(async (context, next) => {
      await this.safely("message", context, () => this.message(context));
      await next();
    });
    this.onInstallationUpdateAdd(async (context, next) => {
      await this.safely("install", context, () => this.install(context));
      await next();
    });
    this.onInstallationUpdateRemove(async (context, next) => {
      await this.safely("uninstall", context, () => this.uninstall(context));
      await next();
    });
    // Older clients tell of an installation only by adding the bot to the conversation.
    this.onMembersAdded(async (context, next) => {
      const bot = context.activity.recipient?.id;
      if (context.activity.membersAdded?.some((m) => m.id === bot)) await this.safely("install", context, () => this.install(context));
      await next();
    });
  }

  private get door() {
    return this.opts.door;
  }

  /** Runs `work` through the door; a failed message is answered with the door's apology, never a stack trace. */
  private async safely(what: string, context: TurnContext, work: () => Promise<void>): Promise<void> {
    const failed = await this.door.safely(what, work);
    if (failed && what === "message") await context.sendActivity(cardActivity(replyCard(failed), failed.title)).catch(() => undefined);
  }

  /**
   * The conversation an activity is in, and its channel when bound. Teams may move a conversation
   * to another service URL: the channel is found by tenant and conversation id (its key), and the
   * door makes its stored address follow, so proactive messages go where Teams now expects them.
   */
  private conversation(activity: Activity): Promise<Conversation> {
    const address = addressOf(activity);
    const name = activity.conversation?.name ?? (activity.channelData as { channel?: { name?: string } } | undefined)?.channel?.name;
    return this.door.conversation({
      address: address ?? {},
      ...(address ? { key: keyOf(address) } : {}),
      ...(name ? { name: `Teams ${name}` } : {}),
      // The bot's answers are posted to the conversation: only a personal chat is the asker's alone.
      private: activity.conversation?.conversationType === "personal",
    });
  }

  /** The caller is their Entra object id: stable across tenants' conversations, and what members are registered by. */
  private async contextOf(activity: Activity): Promise<CommandContext | undefined> {
    const userId = activity.from?.aadObjectId;
    if (!userId) return undefined;
    return this.door.context({ userId, ...(activity.from.name ? { name: activity.from.name } : {}) }, await this.conversation(activity));
  }

  /** Who changed a binding, for the audit: the installer, or the platform itself. */
  private by(activity: Activity): string {
    return activity.from?.aadObjectId ? this.door.actor({ userId: activity.from.aadObjectId }) : PLATFORM;
  }

  private async message(context: TurnContext): Promise<void> {
    const activity = context.activity;
    const ctx = await this.contextOf(activity);
    if (!ctx) return void (await context.sendActivity(cardActivity(replyCard(NO_USER), NO_USER.title)));
    // An Action.Submit (the fallback of older clients) arrives as a message carrying the button's data.
    const press = pressed(activity.value);
    if (press) return this.submitted(context, press, ctx);
    const text = TurnContext.removeRecipientMention(activity) ?? activity.text ?? "";
    const answered = await this.door.typed(text.replace(/<at>[^<]*<\/at>/g, "").trim(), ctx);
    await context.sendActivity(cardActivity(replyCard(answered), answered.title));
  }

  private async install(context: TurnContext): Promise<void> {
    const activity = context.activity;
    const address = addressOf(activity);
    if (!address) return;
    const personal = activity.conversation?.conversationType === "personal";
    const kinds = personal ? (["alerts"] as const) : (["alerts", "approvals"] as const);
    const result = await subscribeConversation(this.door.services.channels, await this.conversation(activity), undefined, [...kinds], this.by(activity));
    if (!result.ok) return;
    const welcome = reply({
      title: "Tollgate is connected here",
      summary: `This conversation now gets budget ${kinds.join(" and ")} for all spend. ${readsText(result)} Type help (mention @Tollgate in a channel) for commands; subscribe team:search alerts narrows it, unsubscribe stops it.`,
    });
    await context.sendActivity(cardActivity(replyCard(welcome), welcome.title));
  }

  private async uninstall(context: TurnContext): Promise<void> {
    const conversation = await this.conversation(context.activity);
    if (conversation.channelId) await unsubscribeConversation(this.door.services.channels, conversation, this.by(context.activity));
  }

  /** A decision on an approval card: the card as it is now, with a line for the presser when nothing changed. */
  private async decide(press: Pressed, ctx: CommandContext): Promise<AdaptiveCard> {
    const reason = press.inputs[INPUTS.rejectReason]?.trim();
    const result = await this.door.services.approvals.decide(press.target, { decision: press.verb === "approve" ? "approve" : "reject", by: ctx.caller, ...(press.verb === "reject" && reason ? { reason } : {}) }, ctx.now);
    let notice: string | undefined;
    if (!result.ok) {
      if (result.kind === "forbidden") notice = "Only approvers can decide raises. Your card is unchanged.";
      else notice = result.kind === "conflict" ? `Nothing changed: ${result.message}.` : result.message;
    }
    return this.refreshed(press.target, notice);
  }

  /** Any other button: the same command a person could type, answered in the conversation. */
  private async command(press: Pressed, ctx: CommandContext): Promise<Reply> {
    if (press.verb === "request_raise") {
      const amount = this.door.readAmount(press.inputs[INPUTS.amount] ?? "");
      if (!amount.ok) return refused("The raise was not requested", `${amount.problem}.`);
      return this.door.raise(press.target, amount.amount, (press.inputs[INPUTS.raiseReason] ?? "").trim(), ctx);
    }
    return this.door.pressed({ action: press.verb as "mute" | "breakdown", target: press.target }, ctx);
  }

  /** Action.Submit from a client without Universal Actions: the card is updated in place for everyone, or answered anew. */
  private async submitted(context: TurnContext, press: Pressed, ctx: CommandContext): Promise<void> {
    if (press.verb === "approve" || press.verb === "reject" || press.verb === "refresh") {
      const card = press.verb === "refresh" ? await this.refreshed(press.target) : await this.decide(press, ctx);
      const replyTo = context.activity.replyToId;
      if (replyTo) await context.updateActivity({ ...cardActivity(card, "Raise request"), id: replyTo });
      else await context.sendActivity(cardActivity(card, "Raise request"));
      return;
    }
    const answered = await this.command(press, ctx);
    await context.sendActivity(cardActivity(replyCard(answered), answered.title));
  }

  /** The approval card as it is now, with a line for the presser when nothing changed. */
  private async refreshed(id: string, notice?: string): Promise<AdaptiveCard> {
    const current = await this.door.services.approvals.current(id, new Date());
    return current ? alertsCard([current], notice) : replyCard(refused("No such request", `There is no raise request ${id}.`));
  }

  /**
   * `adaptiveCard/action` invokes (Action.Execute and refresh). A decision answers with the card
   * as it is then, so the presser sees it at once; the others see it through refresh and through
   * the outbox's update of the message. Other buttons answer in the conversation and leave the card.
   */
  protected override async onAdaptiveCardInvoke(context: TurnContext, value: AdaptiveCardInvokeValue): Promise<AdaptiveCardInvokeResponse> {
    const press = pressed({ ...(value.action?.data ?? {}), verb: value.action?.verb });
    const cardAnswer = (card: AdaptiveCard): AdaptiveCardInvokeResponse => ({ statusCode: 200, type: CARD_CONTENT_TYPE, value: card as unknown as Record<string, unknown> });
    const message = (text: string): AdaptiveCardInvokeResponse => ({ statusCode: 200, type: "application/vnd.microsoft.activity.message", value: text as unknown as Record<string, unknown> });
    if (!press) return { statusCode: 400, type: "application/vnd.microsoft.error", value: { code: "BadRequest", message: "This button is not one of Tollgate's." } as unknown as Record<string, unknown> };
    const answered = await this.door.safely("card action", async (): Promise<AdaptiveCardInvokeResponse> => {
      if (press.verb === "refresh") return cardAnswer(await this.refreshed(press.target));
      const ctx = await this.contextOf(context.activity);
      if (!ctx) return message(NO_USER.summary ?? NO_USER.title);
      if (press.verb === "approve" || press.verb === "reject") {
        const card = await this.door.promptly(this.decide(press, ctx), this.opts.invokeAnswerMs);
        return cardAnswer(card ?? replyCard(reply({ title: "Deciding…", summary: "This card updates for everyone when the decision is recorded." })));
      }
      const result = await this.command(press, ctx);
      await context.sendActivity(cardActivity(replyCard(result), result.title));
      return message(result.error ? result.title : "Done");
    });
    // A failure is the door's apology, told to the presser.
    return "statusCode" in answered ? answered : message(answered.summary ?? answered.title);
  }
}

const NO_USER = reply({ title: "Who is asking?", summary: "Tollgate answers people signed in to Microsoft Teams with a work account.", error: true });
