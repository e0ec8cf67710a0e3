import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { CliError } from "./cli/admin-client.ts";
import { catalog } from "./cli/catalog.ts";
import { findDataDir, newDataDirNote } from "./cli/data-dir.ts";
import { type CommandHelp, nearestCommand, renderCommandHelp, renderOverview } from "./cli/help.ts";
import type { IntegrationSource } from "./integration.ts";
import { letYoungGenerationGrow } from "./young-generation.ts";

/*
 * Only what every command needs is imported here: the catalogue names each command and loads it
 * when it runs, so `tollgate help` starts in a fraction of what `tollgate serve` loads.
 */

/** Built-in commands, then each platform's (`tollgate telegram ...`), with their help. */
function helpOf(sources: readonly IntegrationSource[]): [string, CommandHelp][] {
  const platform = sources.flatMap((s) => (s.commands ?? []).map((name): [string, CommandHelp] => [name, s.help?.[name] ?? { summary: `the ${s.platform} integration's command`, usage: [name], examples: [] }]));
  return [...Object.entries(catalog), ...platform];
}

async function main(argv: string[], sources: readonly IntegrationSource[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: "boolean" },
      tz: { type: "string" },
      period: { type: "string" },
      format: { type: "string" },
      source: { type: "string" },
      kind: { type: "string" },
      name: { type: "string" },
      team: { type: "string" },
      project: { type: "string" },
      feature: { type: "string" },
      user: { type: "string" },
      days: { type: "string" },
      providers: { type: "string" },
      models: { type: "string" },
      status: { type: "string" },
      by: { type: "string" },
      reason: { type: "string" },
      override: { type: "string" },
      scope: { type: "string" },
      amount: { type: "string" },
      mode: { type: "string" },
      thresholds: { type: "string" },
      "dry-run": { type: "boolean" },
      prune: { type: "boolean" },
      entity: { type: "string" },
      limit: { type: "string" },
      kinds: { type: "string" },
      channel: { type: "string" },
      url: { type: "string" },
      "bot-id": { type: "string" },
      out: { type: "string" },
      "app-version": { type: "string" },
      domain: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [first, ...rest] = positionals;
  const helps = helpOf(sources);
  // `tollgate help`, `tollgate help NAME`, `tollgate NAME --help`, `tollgate --help`.
  const asked = first === "help" ? rest[0] : values.help ? first : undefined;
  if (!first || first === "help" || values.help) {
    if (asked === undefined) return print(renderOverview(helps));
    const help = helps.find(([n]) => n === asked)?.[1];
    if (!help) throw unknownCommand(asked, helps);
    return print(renderCommandHelp(asked, help));
  }
  const name = first;
  const entry = Object.hasOwn(catalog, name) ? catalog[name] : undefined;
  // A platform's own commands (`tollgate telegram ...`) come with its integration.
  if (!entry && !sources.some((s) => s.commands?.includes(name))) throw unknownCommand(name, helps);

  const [{ loadConfig }, { createLogger }, { loadIntegrations }] = await Promise.all([import("./config.ts"), import("./logger.ts"), import("./integration.ts")]);
  const env = loadConfig();
  const dataDir = findDataDir(process.env.TOLLGATE_DATA_DIR, process.cwd());
  const config = { ...env, TOLLGATE_DATA_DIR: dataDir.path };
  const logger = createLogger(name === "serve" ? config.LOG_LEVEL : "warn");
  const [command, integrations] = await Promise.all([entry?.load(), loadIntegrations(sources, config, name)]);
  const run = command ?? integrations.find((i) => i.cli?.[name])?.cli?.[name];
  if (!run) throw new Error(`the integration offering "${name}" has no such command`);
  // bin/main.ts kept V8's young generation small while the modules loaded; `serve` lets it grow
  // once listening, any other command now, before its work.
  if (name !== "serve") letYoungGenerationGrow();
  let noted = !dataDir.fresh;
  const noteDataDir = () => {
    if (noted || !existsSync(dataDir.path)) return;
    noted = true;
    process.stderr.write(`${newDataDirNote(dataDir.path)}\n`);
  };
  try {
    return await run({ config, logger, args: rest, options: values, integrations, noteDataDir });
  } finally {
    noteDataDir();
  }
}

function print(text: string): number {
  process.stdout.write(`${text}\n`);
  return 0;
}

function unknownCommand(typed: string, helps: [string, CommandHelp][]): CliError {
  const near = nearestCommand(typed, helps.map(([n]) => n));
  return new CliError(`unknown command "${typed}"${near ? `; did you mean \`tollgate ${near}\`?` : ""} (tollgate help lists them all)`);
}

/** The `tollgate` command; the entry point composes in the platform integrations (src never imports them). */
export async function runCli(argv: string[], sources: readonly IntegrationSource[]): Promise<void> {
  await main(argv, sources).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      // Our errors carry a kind and a message written for people; anything else is a bug, shown whole.
      const known = typeof (err as { kind?: unknown }).kind === "string" || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
      process.stderr.write(`tollgate: ${known ? (err as Error).message : String((err as Error).stack ?? err)}\n`);
      // A usage error is 2; a command that could not do its work (a port in use) says 1, as a bug does.
      process.exitCode = known ? ((err as { exitCode?: number }).exitCode ?? 2) : 1;
    },
  );
}
