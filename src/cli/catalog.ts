import type { Command } from "./commands.ts";
import { type CommandHelp, DIMENSIONS_NOTE, PERIODS_NOTE } from "./help.ts";

/**
 * Every built-in `tollgate` command: its help, and how to load it. Only this file and help.ts are
 * read before a command runs, so `tollgate help` and `--help` load neither the database, nor
 * express, nor a chat SDK; each command loads what it needs.
 */
export interface CatalogEntry extends CommandHelp {
  load(): Promise<Command>;
}

const general = async () => (await import("./commands.ts")).commands;
const budgets = async () => (await import("./budget-commands.ts")).budgetCommands;
const approvals = async () => (await import("./approvals-commands.ts")).approvalsCommands;
const channels = async () => (await import("./channels-commands.ts")).channelsCommands;

const ADMIN_NOTE =
  "Talks to the server running on this data folder (or TOLLGATE_URL with TOLLGATE_ADMIN_TOKEN); with none running, to a gateway started for the one command.";

export const catalog: Record<string, CatalogEntry> = {
  serve: {
    summary: "start the gateway: proxy, ingest, admin API, alerts",
    usage: ["serve"],
    notes: [
      "Listens on $HOST:$PORT (default 0.0.0.0:8787), on PostgreSQL at $DATABASE_URL or embedded PGlite in the data folder.",
      "Prints one line saying where it listens on standard error; its JSON logs go to standard output.",
      "Refuses a data folder another live server holds, and a port in use. SIGINT or SIGTERM stop it cleanly.",
    ],
    examples: ["serve", "PORT=9000 DATABASE_URL=postgres://tollgate@db/tollgate tollgate serve"],
    load: async () => (await import("./serve.ts")).serveCommand,
  },
  migrate: {
    summary: "apply database migrations (serve does it on start)",
    usage: ["migrate"],
    examples: ["migrate", "DATABASE_URL=postgres://tollgate@db/tollgate tollgate migrate"],
    load: async () => (await import("./migrate-command.ts")).migrateCommand,
  },
  spend: {
    summary: "what was spent, in a period, by a dimension (what chat's /spend answers)",
    usage: ["spend [PERIOD] [by DIM] [DIM:VALUE ...] [--tz ZONE] [--json]"],
    notes: [PERIODS_NOTE, DIMENSIONS_NOTE, "The same grammar as chat's spend. --json prints the report of GET /api/spend, for scripts; costs are exact decimal USD text."],
    examples: ["spend", "spend last-month by team", "spend this-week by model team:search", "spend 2026-05 by provider --json"],
    load: async () => (await general()).spend!,
  },
  chat: {
    summary: "any chat command, answered as in Slack, Teams or Telegram",
    usage: ["chat WORDS... [--by PLATFORM:USER_ID] [--tz ZONE]"],
    notes: ["Runs as the admin, or as --by with that member's role."],
    examples: ["chat help", "chat budget raise search-monthly 800 launch week --by slack:U0123ABCD", "chat alerts recent"],
    load: async () => (await import("./chat-commands.ts")).chatCommands.chat!,
  },
  report: {
    summary: "the finance report: spend by team, project and model",
    usage: ["report [--period PERIOD] [--format csv|json] [--tz ZONE]"],
    notes: ["--period defaults to last-month, --format to csv.", PERIODS_NOTE],
    examples: ["report > last-month.csv", "report --period this-quarter --format json"],
    load: async () => (await general()).report!,
  },
  ingest: {
    summary: "import usage events from an NDJSON file",
    usage: ["ingest FILE [--source NAME]"],
    notes: ["One event per line, as POST /v1/usage takes them. Events already in (by id) are skipped, so an interrupted import can simply be run again.", "Rejected lines are listed by their line number; the exit code is then 1."],
    examples: ["ingest usage-2026-05.ndjson", "ingest export.ndjson --source billing-export"],
    load: async () => (await general()).ingest!,
  },
  demo: {
    summary: "fill the ledger with realistic synthetic usage",
    usage: ["demo [--days 60]"],
    examples: ["demo", "demo --days 7"],
    load: async () => (await general()).demo!,
  },
  keys: {
    summary: "virtual keys for the proxy, ingest keys for the usage webhook",
    usage: [
      "keys create --kind ingest|virtual --name NAME [--team T] [--project P] [--feature F] [--user U] [--providers LIST] [--models LIST]",
      "keys list",
      "keys revoke ID",
    ],
    notes: ["--team, --project, --feature and --user attribute every call made with the key.", "--providers and --models limit a virtual key (patterns such as 'claude-*' allowed).", "A key is shown once, when created."],
    examples: ["keys create --kind virtual --name search-api --team search --models 'gpt-4o,claude-*'", "keys create --kind ingest --name billing-svc", "keys list"],
    load: async () => (await general()).keys!,
  },
  providers: {
    summary: "the upstream API keys the proxy uses",
    usage: ["providers list", "providers set NAME", "providers remove NAME", "providers rotate-master"],
    notes: [
      "set reads the key from standard input (piped, or typed without echo), never from the command line.",
      "remove drops the stored key: the environment's <NAME>_API_KEY applies again.",
      "rotate-master re-seals stored secrets under TOLLGATE_MASTER_KEY.",
    ],
    examples: ["providers list", "providers set openai < openai.key", "providers rotate-master"],
    load: async () => (await general()).providers!,
  },
  sources: {
    summary: "a sender that signs its usage webhooks",
    usage: ["sources create NAME"],
    notes: ["Prints the signing secret once."],
    examples: ["sources create billing-export"],
    load: async () => (await general()).sources!,
  },
  budget: {
    summary: "budgets: list with spend and state, show, set, pause, resume, delete",
    usage: [
      "budget list",
      "budget show NAME",
      "budget set NAME --amount USD --period day|week|month|quarter|year [--scope DIM:VALUE,...] [--mode soft|hard] [--tz ZONE] [--thresholds 50,80,100]",
      "budget pause|resume|delete NAME",
    ],
    notes: [
      "set creates the budget, or changes only the fields given. --scope everything covers all spend.",
      "A hard budget blocks proxied calls at 100 %; a soft one only alerts. States: ok, warning, over, blocked, paused.",
    ],
    examples: ["budget list", "budget show search-monthly", "budget set search-monthly --amount 500 --period month --scope team:search --mode hard", "budget pause search-monthly"],
    load: async () => (await budgets()).budget!,
  },
  apply: {
    summary: "make the budgets match a YAML or JSON file, showing the diff",
    usage: ["apply FILE [--dry-run] [--prune]"],
    notes: ["--dry-run shows the diff and changes nothing; --prune deletes budgets the file does not declare."],
    examples: ["apply budgets.yaml --dry-run", "apply budgets.yaml --prune"],
    load: async () => (await budgets()).apply!,
  },
  audit: {
    summary: "who changed budgets, keys, channels and members",
    usage: ["audit [--entity budget] [--limit 50]"],
    examples: ["audit", "audit --entity budget --limit 10"],
    load: async () => (await budgets()).audit!,
  },
  members: {
    summary: "who may ask for and decide budget raises",
    usage: ["members list", "members set PLATFORM USER_ID viewer|requester|approver|admin [--name NAME]", "members remove PLATFORM USER_ID"],
    examples: ["members set slack U0123ABCD approver --name 'Dana Ops'", "members list"],
    load: async () => (await approvals()).members!,
  },
  approvals: {
    summary: "budget raise requests: list, request, approve, reject",
    usage: [
      "approvals list [--status pending|approved|rejected|expired]",
      "approvals request BUDGET AMOUNT REASON... [--by PLATFORM:USER_ID]",
      "approvals approve|reject ID [--by PLATFORM:USER_ID] [--reason TEXT] [--override REASON]",
    ],
    notes: ["The requester of a raise cannot decide it; an admin deciding their own gives --override with why (audited)."],
    examples: ["approvals list --status pending", "approvals request search-monthly 800 launch week --by slack:U0123ABCD", "approvals approve apr_0123456789ab --by slack:U0APPROVER"],
    load: async () => (await approvals()).approvals!,
  },
  channels: {
    summary: "signed webhook channels that receive alerts and digests",
    usage: ["channels list", "channels create NAME URL [--scope DIM:VALUE,...] [--kinds alerts,approvals,daily,weekly] [--tz ZONE]", "channels enable|disable|remove ID"],
    notes: ["create prints the channel's signing secret once."],
    examples: ["channels create finance https://hooks.example.com/tollgate --kinds alerts,weekly", "channels list"],
    load: async () => (await channels()).channels!,
  },
  alerts: {
    summary: "what fired lately; mute and unmute a budget in a channel",
    usage: ["alerts [recent] [--limit 20]", "alerts mute BUDGET DURATION --channel ID", "alerts unmute BUDGET --channel ID", "alerts mutes [--channel ID]"],
    examples: ["alerts", "alerts mute search-monthly 24h --channel 6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b", "alerts mutes"],
    load: async () => (await channels()).alerts!,
  },
  outbox: {
    summary: "messages waiting, delivered or dead; resend one",
    usage: ["outbox [--status pending|delivered|dead] [--limit 50]", "outbox resend ID"],
    examples: ["outbox --status dead", "outbox resend 42"],
    load: async () => (await channels()).outbox!,
  },
};
