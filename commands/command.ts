import type { CommandContext } from "./context.ts";
import type { Reply } from "./reply.ts";
import type { Role } from "./roles.ts";

/** Why a text is not a command: what was wrong, what was expected there, and the nearest valid form. */
export interface ParseError {
  kind: "parse";
  message: string;
  expected: string;
  suggestion?: string;
  /** The command the error is about, so help can be offered for it. */
  command?: string;
}

export type Parsed<V> = { ok: true; value: V } | { ok: false; error: ParseError };

/**
 * One chat command, whole in one file (DESIGN.md §2): its grammar, the role it needs, its handler
 * and its help. `V` is what its grammar reads from the words after its name, every value checked;
 * its `verb` names what is asked (`budget.raise`), for refusals and logs.
 */
export interface CommandSpec<V extends { verb: string }> {
  /** The word that starts it: `spend`. */
  name: string;
  /** Other words people type for it: `budgets`, `sub`. */
  aliases?: readonly string[];
  /** Its grammar in one line: `alerts [recent] | mute NAME DURATION | unmute NAME`. */
  usage: string;
  /** What `help NAME` shows it with. */
  examples: readonly string[];
  parse(words: string[]): Parsed<V>;
  /** The least role `value` needs. */
  role(value: V): Role;
  run(value: V, ctx: CommandContext): Promise<Reply>;
}

/** A command ready to be answered: parsed from text, or made by a button or a form. */
export interface Invocation {
  command: string;
  /** What its grammar read, as the command file types it. */
  value: { verb: string };
  role: Role;
  run(ctx: CommandContext): Promise<Reply>;
}

/** A command as the registry holds it: its grammar yields invocations; `invoke` makes one from a value typed in code. */
export interface Command<V extends { verb: string } = { verb: string }> {
  name: string;
  aliases: readonly string[];
  usage: string;
  examples: readonly string[];
  parse(words: string[]): Parsed<Invocation>;
  invoke(value: V): Invocation;
}

export function defineCommand<V extends { verb: string }>(spec: CommandSpec<V>): Command<V> {
  const invoke = (value: V): Invocation => ({ command: spec.name, value, role: spec.role(value), run: (ctx) => spec.run(value, ctx) });
  return {
    name: spec.name,
    aliases: spec.aliases ?? [],
    usage: spec.usage,
    examples: spec.examples,
    parse(words) {
      const parsed = spec.parse(words);
      return parsed.ok ? { ok: true, value: invoke(parsed.value) } : { ok: false, error: { ...parsed.error, command: parsed.error.command ?? spec.name } };
    },
    invoke,
  };
}
