import { type Command, defineCommand } from "../command.ts";
import { fail, ok } from "../grammar.ts";
import { reply } from "../reply.ts";

export type HelpValue = { verb: "help"; topic?: string };

const PERIODS =
  "Periods: today, yesterday, this-week, last-week, this-month, last-month, this-quarter, last-quarter, this-year, last-7d, last-30d, YYYY-MM, YYYY-MM-DD..YYYY-MM-DD.";

/**
 * `help` and `help NAME`, over the commands of this gateway: `commands()` is the registry's list,
 * with those its integrations add, so help never lists a command that is not there.
 */
export function helpCommand(commands: () => readonly Command[], find: (word: string) => Command | undefined): Command<HelpValue> {
  return defineCommand<HelpValue>({
    name: "help",
    aliases: ["?"],
    usage: "help [command]",
    examples: ["help spend"],
    parse(words) {
      if (!words[0]) return ok({ verb: "help" });
      const about = find(words[0]);
      if (!about) return fail(`there is no command "${words[0]}"`, `help, or help ${commands().map((c) => c.name).join("|")}`);
      return ok({ verb: "help", topic: about.name });
    },
    role: () => "viewer",
    async run(cmd) {
      const about = cmd.topic === undefined ? undefined : find(cmd.topic);
      if (about) return reply({ title: `How to use ${about.name}`, summary: about.usage, notes: about.examples.map((e) => `e.g. ${e}`) });
      return reply({ title: "Tollgate: AI spend and budgets", table: { columns: ["command", "usage"], rows: commands().map((c) => [c.name, c.usage]) }, notes: [PERIODS] });
    },
  });
}
