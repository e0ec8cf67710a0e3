import { renderText } from "../../commands/render-text.ts";
import type { Reply } from "../../commands/reply.ts";
import { CliError } from "./admin-client.ts";
import type { Command, CommandContext } from "./commands.ts";
import { withClient } from "./connect.ts";

/** What POST /api/commands answers (and its `text`, which this renders itself). */
interface CommandAnswer {
  reply: Reply;
}

/**
 * Answers a chat command (the grammar of Slack's /spend, /budget and /alerts) through the admin
 * API, in the plain text every chat shows in its own markup. A mistyped or refused command is one
 * line on standard error, exit 2, like every other usage error of the CLI.
 */
export async function answerChat(ctx: CommandContext, text: string): Promise<number> {
  const tz = typeof ctx.options.tz === "string" ? ctx.options.tz : undefined;
  const by = typeof ctx.options.by === "string" ? ctx.options.by : undefined;
  const answer = await withClient(ctx, (c) => c.postJson<CommandAnswer>("/api/commands", { text, ...(tz ? { timezone: tz } : {}), ...(by ? { caller: by } : {}) }));
  if (answer.reply.error) throw new CliError(answer.reply.summary ?? answer.reply.title);
  // Buttons are chat's ("Actions: By team"): a terminal has none to press, so they are left out.
  process.stdout.write(`${renderText({ ...answer.reply, actions: [] })}\n`);
  return 0;
}

/** `tollgate chat WORDS...`: any chat command, as the admin (or as `--by slack:U0123ABCD`, with their role). */
export const chatCommands: Record<string, Command> = {
  async chat(ctx) {
    if (ctx.args.length === 0) throw new CliError("use: tollgate chat WORDS..., such as tollgate chat budget raise search-monthly 800 launch week");
    return answerChat(ctx, ctx.args.join(" "));
  },
};
