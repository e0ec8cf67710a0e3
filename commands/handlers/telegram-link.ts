import { describeScope } from "../../src/budgets/budget.ts";
import type { Command } from "../command.ts";
import { type CommandContext, actorName } from "../context.ts";
import { type Reply, reply } from "../reply.ts";

type TelegramLinkCommand = Extract<Command, { verb: "telegram-link" }>;

const refusal = (title: string, message: string) => reply({ title, summary: message, error: true });

/** `2026-10-01 14:32 UTC`: to the minute, never later than the moment meant. */
const utcMinute = (at: Date) => `${at.toISOString().slice(0, 16).replace("T", " ")} UTC`;

/**
 * A one-time code that links a Telegram chat to a scope: the same code the admin API and
 * `tollgate telegram link` make. The code is a secret (whoever sends it first gets the chat linked),
 * so it is only answered where the answer is the asker's alone.
 */
export async function telegramLink(cmd: TelegramLinkCommand, ctx: CommandContext): Promise<Reply> {
  if (!ctx.conversation.private)
    return refusal(
      "No link code made here",
      "A link code is a secret and everyone in this conversation would read it: ask where the answer is yours alone (a direct chat with the bot, /tollgate in Slack, or tollgate telegram link).",
    );
  const created = await ctx.services.telegramLinks.create({ scope: cmd.scope, kinds: cmd.kinds, by: actorName(ctx.caller) }, ctx.now);
  if (!created.ok) return refusal("No link code made", created.message);
  const { code, expiresAt, deepLink } = created.value;
  const scope = Object.keys(cmd.scope).length > 0 ? describeScope(cmd.scope) : "all spend";
  const minutes = Math.round((expiresAt.getTime() - ctx.now.getTime()) / 60_000);
  return reply({
    title: "Telegram link code",
    summary: `In the Telegram chat that should get ${cmd.kinds.join(", ")} for ${scope} (the bot added to it), send /link ${code}`,
    facts: [
      { label: "Code", value: code },
      { label: "Valid until", value: `${utcMinute(expiresAt)} (${minutes} minutes), for one chat` },
      ...(deepLink ? [{ label: "Or open", value: deepLink }] : []),
    ],
    notes: deepLink ? [] : [`Telegram could not be asked the bot's name just now, so there is no link to open: send /link ${code} to the bot.`],
    visibility: "private",
  });
}
