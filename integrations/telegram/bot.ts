import { type Context, Telegraf, TelegramError } from "telegraf";
import { message } from "telegraf/filters";
import type { Chat, Message, User } from "telegraf/types";
import { readsText } from "../../commands/read-scope.ts";
import { subscribeConversation, unsubscribeConversation } from "../../commands/binding.ts";
import type { CommandContext, Conversation } from "../../commands/context.ts";
import type { Door } from "../../commands/door.ts";
import { type Reply, reply } from "../../commands/reply.ts";
import { clip } from "../../commands/truncate.ts";
import { describeScope } from "../../src/budgets/budget.ts";
import type { Chart } from "../../src/charts/chart.ts";
import { renderPng } from "../../src/charts/png.ts";
import type { Logger } from "../../src/logger.ts";
import type { LinkCodes } from "./link-codes.ts";
import type { ChatPacer } from "./pacer.ts";
import { sendOptions } from "./deliver.ts";
import { LIMITS, type TelegramMessage, escapeClipped, parseCallbackData, raiseQuestion, replyMessage } from "./render.ts";
import type { RaisePrompts, UpdateInbox } from "./store.ts";

/*
 * Telegram's door in: commands typed in a chat, button presses and replies to Tollgate's
 * questions, received as updates by telegraf. A chat reads nothing until it is linked with a
 * one-time code; then everything asked is answered through the door (commands/door.ts), with roles
 * from the member mapping by Telegram user id. This file only turns updates into a person, a place
 * and words or a button, and replies into Telegram HTML.
 */

export const PLATFORM = "telegram";

/** The updates Tollgate asks Telegram for: messages (commands, replies) and button presses. */
export const ALLOWED_UPDATES = ["message", "callback_query"] as const;

/** Chat members who may unlink a group. */
const CHAT_ADMINS = new Set(["creator", "administrator"]);

/** A 429 on an interactive answer is waited out once, if Telegram asks for no more than this. */
const LONGEST_REPLY_WAIT_MS = 30_000;

const UNLINKED = reply({
  title: "This chat is not linked to Tollgate",
  summary: "Nothing about spend or budgets can be read here until an admin links the chat to what it should follow.",
  notes: [
    "An admin runs: tollgate telegram link --scope team:search (or, in Slack, /tollgate telegram-link --scope team:search)",
    "Then someone here sends /link CODE with the code it prints (or opens the link it prints).",
  ],
});

export interface BotDeps {
  /** The Bot API's base URL (TELEGRAM_API_ROOT). */
  apiRoot: string;
  logger: Logger;
  door: Door;
  pacer: ChatPacer;
  links: LinkCodes;
  prompts: RaisePrompts;
  /** When updates come by polling: each is recorded before it is handled, and one seen before is dropped. */
  inbox?: UpdateInbox;
}

/** A chat's address in Tollgate: the chat id, which Telegram keeps for the life of the chat. */
export const chatAddress = (chatId: number) => ({ chat_id: chatId });

const personName = (user: User) => (user.username ? `@${user.username}` : [user.first_name, user.last_name].filter(Boolean).join(" "));

function chatName(chat: Chat): string {
  if (chat.type === "private") return `Telegram: ${chat.username ? `@${chat.username}` : chat.first_name}`;
  return `Telegram: ${chat.title}`;
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The bot with every handler; the caller decides how updates reach it (webhook or polling). */
export function createBot(token: string, deps: BotDeps): Telegraf {
  const { apiRoot, logger, door, pacer, links, prompts } = deps;
  const { services } = door;
  const bot = new Telegraf(token, { telegram: { apiRoot, webhookReply: false } });

  /** Only the error's kind and the update's number reach the log: texts and tokens never do. */
  const logFailure = (what: string, err: unknown, updateId?: number) =>
    logger.error({ component: "telegram", error: (err as Error).name, code: (err as { code?: unknown }).code, update: updateId }, `telegram ${what} failed`);

  bot.catch((err, ctx) => logFailure("update", err, ctx.update.update_id));

  const { inbox } = deps;
  if (inbox)
    bot.use(async (ctx, next) => {
      if (await inbox.record(ctx.update.update_id)) await next();
    });

  /** Sends one message to a chat in its paced slot; a 429 holds the chat and is waited out once. */
  async function send(chatId: number, rendered: TelegramMessage, extra: Record<string, unknown> = {}): Promise<Message.TextMessage> {
    for (let attempt = 1; ; attempt++) {
      await wait(pacer.reserve(chatId, Date.now()));
      try {
        return await bot.telegram.sendMessage(chatId, rendered.html, { ...sendOptions(rendered), ...extra });
      } catch (err) {
        const retryAfterMs = err instanceof TelegramError && err.code === 429 ? (err.parameters?.retry_after ?? 1) * 1000 : undefined;
        if (retryAfterMs === undefined || attempt > 1 || retryAfterMs > LONGEST_REPLY_WAIT_MS) throw err;
        pacer.hold(chatId, retryAfterMs, Date.now());
      }
    }
  }

  let fontMissingLogged = false;

  /**
   * A reply's chart as a photo (a PNG drawn from Tollgate's SVG, uploaded with sendPhoto), its
   * title as the caption; the reply's text follows it. A chart that cannot be drawn (no font on
   * the machine) or sent is left out, logged once: the text says everything the chart shows.
   */
  async function sendChart(chatId: number, chart: Chart, extra: Record<string, unknown>): Promise<void> {
    const drawn = renderPng(chart);
    if (!drawn.ok) {
      if (!fontMissingLogged) logger.warn({ component: "telegram" }, `charts are sent as text only: ${drawn.reason}`);
      fontMissingLogged = true;
      return;
    }
    // An upload goes as multipart/form-data, where telegraf writes only some object fields as
    // JSON (reply_parameters is not one of them): they are given as JSON text here.
    const fields = Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, typeof v === "object" && v !== null ? JSON.stringify(v) : v]));
    await wait(pacer.reserve(chatId, Date.now()));
    await bot.telegram
      .sendPhoto(chatId, { source: drawn.png, filename: "tollgate-chart.png" }, { caption: escapeClipped(chart.title, 1000), parse_mode: "HTML", ...fields })
      .catch((err: unknown) => logFailure("chart photo", err));
  }

  /**
   * Callback data names budgets by id (a name may not fit in 64 bytes); the targets of a reply's
   * buttons are budget names, or a period for a breakdown, looked up here.
   */
  async function answerTo(chatId: number, replyToMessage: number | undefined, r: Reply): Promise<void> {
    const ids = new Map<string, string>();
    for (const a of r.actions) {
      if (a.action === "approve" || a.action === "reject" || ids.has(a.target)) continue;
      const budget = await services.budgets.find(a.target);
      if (budget) ids.set(a.target, budget.id);
    }
    const rendered = replyMessage(r, (a) => ids.get(a.target) ?? a.target);
    const replying = replyToMessage === undefined ? {} : { reply_parameters: { message_id: replyToMessage, allow_sending_without_reply: true } };
    if (r.charts[0]) await sendChart(chatId, r.charts[0], replying);
    await send(chatId, rendered, replying);
  }

  /** A chat is linked when it is bound to a Tollgate channel: only then does it read spend. */
  async function conversation(chat: Chat): Promise<Conversation & { linked: boolean }> {
    const conv = await door.conversation({ address: chatAddress(chat.id), name: chatName(chat), private: chat.type === "private" });
    return { ...conv, linked: conv.channelId !== undefined };
  }

  const person = (from: User) => ({ userId: String(from.id), name: personName(from) });
  const contextOf = (from: User, conv: Conversation): CommandContext => door.context(person(from), conv);

  /** Runs `work` for a message through the door, answering with its apology when it fails: people never see a stack trace. */
  async function safely(ctx: Context, what: string, work: () => Promise<void>): Promise<void> {
    const failed = await door.safely(what, work);
    if (failed && ctx.chat) await answerTo(ctx.chat.id, ctx.message?.message_id, failed).catch((e: unknown) => logFailure("apology", e, ctx.update.update_id));
  }

  async function link(ctx: Context & { message: Message.TextMessage }, code: string): Promise<void> {
    const { chat, from, message_id } = ctx.message;
    if (!from) return;
    if (!code) {
      const conv = await conversation(chat);
      return answerTo(chat.id, message_id, conv.linked ? reply({ title: "This chat is linked to Tollgate", summary: "Try /spend this-week, /budget list or /help." }) : UNLINKED);
    }
    const used = await links.use(code, chat.id, new Date());
    if (!used.ok) {
      const why = {
        unknown: "That code is not one Tollgate made; check it, or ask an admin for a new one.",
        expired: "That code has expired (codes last 15 minutes); ask an admin for a new one: tollgate telegram link --scope ...",
        used: "That code has already been used; each code links one chat once. Ask an admin for a new one.",
      }[used.reason];
      return answerTo(chat.id, message_id, reply({ title: "Not linked", summary: why, error: true }));
    }
    const conv = await conversation(chat);
    let result;
    try {
      // A code made with --scope all opens the chat to all spend; any other holds it to its scope.
      result = await subscribeConversation(services.channels, conv, Object.keys(used.scope).length > 0 ? used.scope : "all", used.kinds, door.actor(person(from)));
    } catch (err) {
      await links.giveBack(code);
      throw err;
    }
    if (!result.ok) {
      await links.giveBack(code);
      return answerTo(chat.id, message_id, reply({ title: "Not linked", summary: result.message, error: true }));
    }
    const scope = Object.keys(used.scope).length > 0 ? describeScope(used.scope) : "all spend";
    await answerTo(
      chat.id,
      message_id,
      reply({ title: "Linked to Tollgate", summary: `This chat now gets ${used.kinds.join(", ")} for ${scope}. ${readsText(result)}`, notes: ["Try /spend this-week, /budget list or /help.", "A chat admin can undo it with /unlink."] }),
    );
  }

  bot.start((ctx) => safely(ctx, "start", () => link(ctx, ctx.payload.trim())));
  bot.command("link", (ctx) => safely(ctx, "link", () => link(ctx, ctx.payload.trim())));

  bot.command("unlink", (ctx) =>
    safely(ctx, "unlink", async () => {
      const { chat, from, message_id } = ctx.message;
      const conv = await conversation(chat);
      if (!conv.linked) return answerTo(chat.id, message_id, reply({ title: "This chat is not linked", summary: "There is nothing to unlink." }));
      if (chat.type !== "private") {
        const member = await ctx.telegram.getChatMember(chat.id, from.id);
        if (!CHAT_ADMINS.has(member.status)) return answerTo(chat.id, message_id, reply({ title: "Not unlinked", summary: "Only the chat's admins can unlink it.", error: true }));
      }
      const result = await unsubscribeConversation(services.channels, conv, door.actor(person(from)));
      await answerTo(
        chat.id,
        message_id,
        result.ok ? reply({ title: "Unlinked", summary: "This chat gets no more alerts and can no longer read spend or budgets." }) : reply({ title: "Not unlinked", summary: result.message, error: true }),
      );
    }),
  );

  /** Any other command (`/spend this-week`, `/budget@tollgate_bot list`, a typo) goes to the shared parser, in linked chats only. */
  async function command(text: string, from: User, chat: Chat, messageId: number): Promise<void> {
    const conv = await conversation(chat);
    if (!conv.linked) return answerTo(chat.id, messageId, UNLINKED);
    await answerTo(chat.id, messageId, await door.typed(text, contextOf(from, conv)));
  }

  // telegraf matches `/cmd@this_bot` and skips commands addressed to another bot.
  bot.command(/^[A-Za-z0-9_]+$/, (ctx) =>
    safely(ctx, "command", () => command(`${ctx.command} ${ctx.payload}`, ctx.message.from, ctx.message.chat, ctx.message.message_id)),
  );

  bot.on(message("text"), (ctx, next) =>
    safely(ctx, "reply", async () => {
      const { chat, from, text, message_id } = ctx.message;
      const question = ctx.message.reply_to_message;
      if (question && question.from?.id === ctx.botInfo.id) return answerQuestion(chat, from, text, message_id, question.message_id);
      // In a private chat a command reads as well without its slash.
      if (chat.type === "private") return command(text, from, chat, message_id);
      return next();
    }),
  );

  /** A reply to "Request raise": the new amount and why, filed as the person who pressed the button. */
  async function answerQuestion(chat: Chat, from: User, text: string, messageId: number, questionId: number): Promise<void> {
    const conv = await conversation(chat);
    if (!conv.linked) return answerTo(chat.id, messageId, UNLINKED);
    const ctx = contextOf(from, conv);
    const taken = await prompts.take(chat.id, questionId, String(from.id), ctx.now);
    if (!taken.ok) {
      if (taken.reason === "none") return;
      const why = {
        someone_else: "This question was for whoever pressed Request raise; press it yourself to ask for a raise.",
        answered: "This question has been answered already; press Request raise again to ask for another raise.",
        expired: "This question has expired; press Request raise again.",
      }[taken.reason];
      return answerTo(chat.id, messageId, reply({ title: "No raise requested", summary: why, error: true }));
    }
    const refuse = async (summary: string) => {
      await prompts.reopen(chat.id, questionId);
      await answerTo(chat.id, messageId, reply({ title: "No raise requested yet", summary, notes: ["Reply to the question again, such as: 800 launch week doubles traffic"], error: true }));
    };
    const budget = await services.budgets.find(taken.budgetId);
    if (!budget) return answerTo(chat.id, messageId, reply({ title: "No raise requested", summary: "That budget no longer exists.", error: true }));
    const amount = door.readAmount(text);
    if (!amount.ok) return refuse(`${amount.problem}, then why.`);
    const reason = amount.rest.join(" ");
    if (!reason) return refuse("Say why after the amount: approvers decide on the reason.");
    try {
      const result = await door.raise(budget.name, amount.amount, reason, ctx);
      if (result.error) await prompts.reopen(chat.id, questionId);
      await answerTo(chat.id, messageId, result);
    } catch (err) {
      await prompts.reopen(chat.id, questionId);
      throw err;
    }
  }

  bot.on("callback_query", async (ctx) => {
    const query = ctx.callbackQuery;
    let answered = false;
    /** Every press is answered, once, or the person's client keeps spinning. */
    const toast = async (text: string, alert = false) => {
      if (answered) return;
      answered = true;
      await ctx.answerCbQuery(clip(text, LIMITS.callbackAnswer), { show_alert: alert });
    };
    const failed = await door.safely("button", async () => {
      const pressed = "data" in query ? parseCallbackData(query.data) : undefined;
      const origin = query.message;
      if (!pressed || !origin) return await toast("That button does nothing any more.");
      const conv = await conversation(origin.chat);
      if (!conv.linked) return await toast(`${UNLINKED.title}. ${UNLINKED.notes.join(" ")}`, true);
      const ctxOf = contextOf(query.from, conv);
      // Buttons name budgets by id; people read names.
      const budget = pressed.action === "approve" || pressed.action === "reject" ? undefined : await services.budgets.find(pressed.target);
      if (pressed.action === "request_raise") {
        const refused = await door.raiseRefusal(ctxOf);
        if (refused) return await toast(refused.summary ?? refused.title, true);
        if (!budget) return await toast(`${pressed.target} is no longer a budget.`, true);
        const question = await send(origin.chat.id, { html: raiseQuestion(budget.name, { id: query.from.id, name: personName(query.from) }), keyboard: [] }, {
          reply_markup: { force_reply: true, selective: true, input_field_placeholder: "800 launch week" },
          reply_parameters: { message_id: origin.message_id, allow_sending_without_reply: true },
        });
        await prompts.ask({ chatId: origin.chat.id, messageId: question.message_id, budgetId: budget.id, userId: String(query.from.id) }, ctxOf.now);
        return await toast("Reply to my question with the new amount and why.");
      }
      const result = await door.pressed({ action: pressed.action, target: budget?.name ?? pressed.target }, ctxOf);
      // A refusal is the presser's business only; what was done, everyone in the chat sees.
      await toast(result.error ? (result.summary ?? result.title) : result.title, result.error);
      if (!result.error) await answerTo(origin.chat.id, origin.message_id, reply({ ...result, notes: [...result.notes, `By ${personName(query.from)}.`] }));
    });
    if (failed) await toast(failed.summary ?? failed.title, true).catch((e: unknown) => logFailure("button answer", e, ctx.update.update_id));
  });

  return bot;
}
