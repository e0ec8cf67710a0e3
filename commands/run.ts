import type { Command, ParseError } from "./command.ts";
import type { CommandContext } from "./context.ts";
import { alerts } from "./handlers/alerts.ts";
import { budget } from "./handlers/budget.ts";
import { help } from "./handlers/help.ts";
import { spend } from "./handlers/spend.ts";
import { telegramLink } from "./handlers/telegram-link.ts";
import { parseCommand } from "./parse.ts";
import { type Reply, reply } from "./reply.ts";
import { REQUIRED_ROLE, allows } from "./roles.ts";

function parseErrorReply(error: ParseError): Reply {
  return reply({
    title: "I did not understand that",
    summary: error.message,
    notes: [`Expected ${error.expected}.`, ...(error.topic ? [`help ${error.topic} shows examples.`] : ["help lists every command."])],
    error: true,
  });
}

/** The answer to a caller whose role does not allow `verb`; undefined when it does. Forms check it before they open. */
export async function refusal(verb: Command["verb"], ctx: Pick<CommandContext, "caller" | "services">): Promise<Reply | undefined> {
  const needed = REQUIRED_ROLE[verb];
  if (needed === "viewer") return undefined;
  const role = await ctx.services.roleOf(ctx.caller.platform, ctx.caller.userId);
  if (allows(role, needed)) return undefined;
  return reply({ title: "Not allowed", summary: `${verb.replace(".", " ")} needs the ${needed} role; you are a ${role}. An admin can change that with tollgate members set.`, error: true });
}

/** Parses and answers one command for one caller: the whole path every platform and the CLI share. */
export async function runCommand(text: string, ctx: CommandContext): Promise<Reply> {
  const parsed = parseCommand(text);
  if (!parsed.ok) return parseErrorReply(parsed.error);
  return answer(parsed.command, ctx);
}

/** Answers a command that came already parsed (a button press, a form): the same role checks and handlers as typed text. */
export async function answer(cmd: Command, ctx: CommandContext): Promise<Reply> {
  const refused = await refusal(cmd.verb, ctx);
  if (refused) return refused;
  switch (cmd.verb) {
    case "spend":
      return spend(cmd, ctx);
    case "help":
      return help(cmd.topic);
    case "telegram-link":
      return telegramLink(cmd, ctx);
    case "alerts.recent":
    case "alerts.mute":
    case "alerts.unmute":
    case "subscribe":
    case "unsubscribe":
      return alerts(cmd, ctx);
    default:
      return budget(cmd, ctx);
  }
}
