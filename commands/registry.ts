import { nearest } from "../src/ledger/period.ts";
import type { Command, Invocation, Parsed } from "./command.ts";
import { alerts } from "./builtin/alerts.ts";
import { budget } from "./builtin/budget.ts";
import { helpCommand } from "./builtin/help.ts";
import { spend } from "./builtin/spend.ts";
import { subscribe } from "./builtin/subscribe.ts";
import { unsubscribe } from "./builtin/unsubscribe.ts";
import { didYouMean, fail } from "./grammar.ts";

/** The commands every gateway answers, in the order help lists them; integrations add their own after these. */
export const BUILTIN_COMMANDS: readonly Command[] = [spend, budget, alerts, subscribe, unsubscribe];

/** The commands of one gateway: what help lists, what parsing reads, what the door answers. */
export interface Registry {
  /** Every command, `help` last. */
  readonly commands: readonly Command[];
  /** A command by its name or an alias, case and a leading `/` forgiven. */
  find(word: string): Command | undefined;
  /**
   * Reads one command. `text` is what followed the slash command or the mention: the platform has
   * already removed `@Tollgate`; a leading `/` and a `@botname` suffix (as some platforms send in groups) are tolerated.
   */
  parse(text: string): Parsed<Invocation>;
}

const normalize = (word: string) => word.replace(/^\//, "").replace(/@\S*$/, "").toLowerCase();

/** The registry of the built-in commands and `extra` (an integration's own); names and aliases must not clash. */
export function createRegistry(extra: readonly Command[] = []): Registry {
  const commands: Command[] = [...BUILTIN_COMMANDS, ...extra];
  const words = new Map<string, Command>();
  const find = (word: string) => words.get(normalize(word));
  commands.push(helpCommand(() => commands, find));
  for (const command of commands)
    for (const word of [command.name, ...command.aliases]) {
      if (words.has(word)) throw new Error(`two commands answer to "${word}"`);
      words.set(word, command);
    }
  return {
    commands,
    find,
    parse(text) {
      // From every platform and the admin API alike: a NUL would reach a query and fail it (a 500).
      if (text.includes("\u0000")) return fail("the command contains a NUL byte", "a command without control characters");
      const all = text.trim().split(/\s+/).filter(Boolean);
      const head = normalize(all.shift() ?? "help");
      // Two words for one hyphenated name, as the CLI spells some (`x link` for `x-link`).
      const joined = all[0] ? words.get(`${head}-${all[0].toLowerCase()}`) : undefined;
      if (joined) all.shift();
      const command = joined ?? words.get(head);
      if (command) return command.parse(all);
      const suggestion = nearest(head, new Map(commands.map((c) => [c.name, c.name])));
      return fail(`unknown command "${head}"${didYouMean(suggestion)}`, `one of ${commands.map((c) => c.name).join(", ")}`, suggestion);
    },
  };
}
