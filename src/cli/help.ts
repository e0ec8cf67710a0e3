import { nearest } from "../ledger/period.ts";

/** What `tollgate help` and `tollgate NAME --help` say about one command. */
export interface CommandHelp {
  /** One line in `tollgate help`. */
  summary: string;
  /** Each form the command takes, without the leading `tollgate`. */
  usage: string[];
  /** What its options mean, and anything else worth knowing before running it. */
  notes?: string[];
  /** Whole command lines, without the leading `tollgate`. */
  examples: string[];
}

export const PERIODS_NOTE =
  "Periods: today, yesterday, this-week, last-week, this-month, last-month, this-quarter, last-quarter, this-year, last-7d, last-30d, YYYY-MM, YYYY-MM-DD..YYYY-MM-DD.";
export const DIMENSIONS_NOTE = "Dimensions: team, project, feature, user, model, provider, key.";

/** `tollgate help`: every command in a line, and where to read more. */
export function renderOverview(commands: [string, CommandHelp][]): string {
  const width = Math.max(...commands.map(([name]) => name.length));
  return [
    "tollgate: the AI-spend gateway",
    "",
    ...commands.map(([name, help]) => `  tollgate ${name.padEnd(width)}  ${help.summary}`),
    "",
    "Run `tollgate COMMAND --help` for a command's forms, options and examples.",
    "Commands find their data folder as git finds .git: ./.tollgate here or in a folder above (TOLLGATE_DATA_DIR sets it).",
  ].join("\n");
}

/** `tollgate NAME --help`. */
export function renderCommandHelp(name: string, help: CommandHelp): string {
  return [
    `tollgate ${name}: ${help.summary}`,
    "",
    "Usage:",
    ...help.usage.map((u) => `  tollgate ${u}`),
    ...(help.notes && help.notes.length > 0 ? ["", ...help.notes] : []),
    "",
    "Examples:",
    ...help.examples.map((e) => `  tollgate ${e}`),
  ].join("\n");
}

/** The command a mistyped name most likely meant, by edit distance (the chat grammar's measure). */
export function nearestCommand(typed: string, names: string[]): string | undefined {
  return nearest(typed.toLowerCase(), new Map(names.map((n) => [n, n])));
}
