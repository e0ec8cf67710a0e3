import { parseArgs } from "node:util";
import { loadConfig } from "./config.ts";
import { CliError } from "./cli/admin-client.ts";
import { commands } from "./cli/commands.ts";
import { type IntegrationSource, loadIntegrations } from "./integration.ts";
import { createLogger } from "./logger.ts";

const USAGE = `tollgate: the AI-spend gateway

  tollgate serve                         start the gateway (port $PORT, default 8787)
  tollgate migrate                       apply database migrations
  tollgate spend [period] [by DIM] [DIM:VALUE ...] [--tz ZONE] [--json]   what Slack's /spend answers
  tollgate chat WORDS... [--by PLATFORM:USER_ID] [--tz ZONE]   any chat command, such as
      tollgate chat budget raise search-monthly 800 launch week   (as the admin, or as --by)
  tollgate report [--period last-month] [--format csv|json] [--tz ZONE]
  tollgate ingest FILE [--source NAME]   import NDJSON usage; re-running skips what is in
  tollgate keys create --kind ingest|virtual --name NAME [--team T] [--project P] [--feature F] [--user U]
      [--providers openai,anthropic] [--models 'gpt-4o,claude-*']   limit a virtual key
  tollgate keys list
  tollgate keys revoke ID
  tollgate providers list                which upstream keys are set, and from where
  tollgate providers set NAME            store a provider's API key, read from standard input
  tollgate providers remove NAME         drop the stored key (the environment's applies again)
  tollgate providers rotate-master       re-seal stored secrets under TOLLGATE_MASTER_KEY
  tollgate sources create NAME           a sender that signs its webhooks; prints its secret once
  tollgate members list | set PLATFORM USER_ID ROLE [--name N] | remove PLATFORM USER_ID
                                         who may ask for and decide budget raises (viewer, requester, approver, admin)
  tollgate approvals list [--status pending] | request BUDGET AMOUNT REASON... [--by PLATFORM:USER_ID]
  tollgate approvals approve|reject ID [--by PLATFORM:USER_ID] [--reason TEXT]
  tollgate budget list | show NAME | pause NAME | resume NAME | delete NAME
  tollgate budget set NAME --amount 500 --period day|week|month|quarter|year [--scope team:search,model:gpt-4o]
      [--mode soft|hard] [--tz ZONE] [--thresholds 50,80,100]   create a budget, or change the fields given
  tollgate apply FILE [--dry-run] [--prune]   make the budgets match a YAML/JSON file; shows the diff
  tollgate audit [--entity budget] [--limit 50]   who changed budgets, keys, channels and members
  tollgate channels list | create NAME URL [--scope team:search] [--kinds alerts,approvals,daily,weekly] [--tz ZONE]
                                         a signed webhook channel; prints its secret once
  tollgate channels enable|disable|remove ID
  tollgate alerts [recent] [--limit 20]  what fired lately
  tollgate alerts mute BUDGET DURATION --channel ID | unmute BUDGET --channel ID | mutes [--channel ID]
  tollgate outbox [--status pending|delivered|dead] [--limit 50] | outbox resend ID
  tollgate demo [--days 60]              fill the ledger with realistic synthetic usage
  tollgate telegram link --scope team:search [--kinds alerts,daily]   a one-time code (15 minutes) a chat sends as /link CODE
  tollgate telegram set-webhook --url https://HOST/telegram/webhook   register the webhook with Telegram, with its secret

Periods: today, yesterday, this-week, last-week, this-month, last-month, this-quarter,
last-quarter, this-year, last-7d, last-30d, YYYY-MM, YYYY-MM-DD..YYYY-MM-DD.
Dimensions: team, project, feature, user, model, provider, key.`;

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
  const [name, ...rest] = positionals;
  if (!name || values.help || name === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // A platform's own commands (`tollgate telegram ...`) come with its integration.
  if (!commands[name] && !sources.some((s) => s.commands?.includes(name))) throw new CliError(`unknown command "${name}"; run \`tollgate help\``);
  const config = loadConfig();
  const logger = createLogger(name === "serve" ? config.LOG_LEVEL : "warn");
  const integrations = await loadIntegrations(sources, config, name);
  const command = commands[name] ?? integrations.find((i) => i.cli?.[name])?.cli?.[name];
  if (!command) throw new Error(`the integration offering "${name}" has no such command`);
  return command({ config, logger, args: rest, options: values, integrations });
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
      process.exitCode = known ? 2 : 1;
    },
  );
}
