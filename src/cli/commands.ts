import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createInterface } from "node:readline";
import { parseSpend } from "../../commands/builtin/spend.ts";
import type { Config } from "../config.ts";
import type { Integration } from "../integration.ts";
import type { Logger } from "../logger.ts";
import { type AdminClient, CliError } from "./admin-client.ts";
import { answerChat } from "./chat-commands.ts";
import { withClient } from "./connect.ts";
import { demoEvents } from "./demo.ts";
import { type SpendJson, renderTable } from "./render.ts";

export interface CommandContext {
  config: Config;
  logger: Logger;
  args: string[];
  options: Record<string, string | boolean | undefined>;
  /** Platforms composed in by the entry point, for `serve`. */
  integrations: readonly Integration[];
  /** Says once, on standard error, that the data folder was just made (if it was); `serve` calls it as it starts. */
  noteDataDir(): void;
}

export type Command = (ctx: CommandContext) => Promise<number>;

const out = (text: string) => process.stdout.write(`${text}\n`);

/**
 * `[period] [by DIM] [DIM:VALUE ...]` → the query string of GET /api/spend, read by the chat
 * grammar itself, so `spend ... --json` takes exactly what `spend ...` and chat's /spend take.
 */
export function spendQuery(args: string[], tz: string | undefined): URLSearchParams {
  const parsed = parseSpend(args.flatMap((arg) => arg.split(/\s+/)).filter(Boolean));
  if (!parsed.ok) throw new CliError(parsed.error.message);
  const spend = parsed.value;
  if (spend.share) throw new CliError("share posts a chat's answer to its channel; --json has no channel to share to");
  const query = new URLSearchParams({ period: spend.period, ...(spend.by ? { by: spend.by } : {}), ...spend.filters });
  if (tz) query.set("tz", tz);
  return query;
}

/** Sends NDJSON lines in batches through the import endpoint, totting up outcomes. */
async function importLines(
  client: AdminClient,
  source: string,
  lines: AsyncIterable<string> | Iterable<string>,
  progress: (done: number) => void,
): Promise<{ accepted: number; duplicates: number; rejected: { index: number; id: string | null; errors: { path: string; message: string }[] }[] }> {
  const totals = { accepted: 0, duplicates: 0, rejected: [] as { index: number; id: string | null; errors: { path: string; message: string }[] }[] };
  let batch: string[] = [];
  // The 0-based line of the input each batch item came from: blank lines are skipped, so the
  // endpoint's item index alone would point at the wrong line.
  let lineOf: number[] = [];
  let sent = 0;
  const send = async () => {
    if (batch.length === 0) return;
    const res = await client.request("POST", `/api/usage?source=${encodeURIComponent(source)}`, { type: "application/x-ndjson", data: batch.join("\n") });
    const body = res.json() as typeof totals;
    totals.accepted += body.accepted;
    totals.duplicates += body.duplicates;
    totals.rejected.push(...body.rejected.map((r) => ({ ...r, index: lineOf[r.index] ?? r.index + sent })));
    sent += batch.length;
    batch = [];
    lineOf = [];
    progress(sent);
  };
  let lineNumber = -1;
  for await (const line of lines) {
    lineNumber++;
    if (line.trim() === "") continue;
    batch.push(line);
    lineOf.push(lineNumber);
    if (batch.length === 5000) await send();
  }
  await send();
  return totals;
}

/** `[######        ] 40 % · 12,000 events`: `share` is how much of the input has been sent, from 0 to 1. */
export function progressLine(share: number, events: number): string {
  const bounded = Math.min(1, Math.max(0, share));
  const filled = Math.round(bounded * 30);
  return `[${"#".repeat(filled)}${" ".repeat(30 - filled)}] ${Math.floor(bounded * 100)} % · ${events.toLocaleString("en-US")} events`;
}

/** Redraws the progress line on a terminal; `share` is asked after each batch. */
function progressBar(share: (events: number) => number): (events: number) => void {
  if (!process.stderr.isTTY) return () => {};
  return (events) => process.stderr.write(`\r${progressLine(share(events), events)}`);
}

/**
 * The file's lines with a count of the bytes they came from, for progress: lines vary from
 * 100 bytes to many kilobytes, so a count of lines says little about how much is left.
 */
export function countingLines(file: string): { lines: AsyncIterable<string>; bytesRead(): number } {
  const input = createReadStream(file);
  const reader = createInterface({ input, crlfDelay: Infinity });
  let bytes = 0;
  async function* lines() {
    for await (const line of reader) {
      // The line's bytes and its newline; a CRLF file's \r is counted at the end, when the stream is done.
      bytes += Buffer.byteLength(line, "utf8") + 1;
      yield line;
    }
    bytes = input.bytesRead;
  }
  return { lines: lines(), bytesRead: () => bytes };
}

function reportImport(totals: Awaited<ReturnType<typeof importLines>>): number {
  if (process.stderr.isTTY) process.stderr.write("\n");
  out(`${totals.accepted} accepted, ${totals.duplicates} duplicates, ${totals.rejected.length} rejected`);
  for (const r of totals.rejected.slice(0, 20))
    out(`  line ${r.index + 1}${r.id ? ` (id ${r.id})` : ""}: ${r.errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join("; ")}`);
  if (totals.rejected.length > 20) out(`  and ${totals.rejected.length - 20} more`);
  return totals.rejected.length > 0 ? 1 : 0;
}

const str = (v: string | boolean | undefined) => (typeof v === "string" ? v : undefined);
const list = (v: string | boolean | undefined) => str(v)?.split(",").map((s) => s.trim()).filter(Boolean);

/**
 * A secret read from standard input: piped (`tollgate providers set openai < key.txt`) or typed
 * without echo, never from the command line where shell history and `ps` would keep it.
 */
async function readSecret(prompt: string): Promise<string> {
  const { stdin, stderr } = process;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8").trim();
  }
  stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  let typed = "";
  try {
    for await (const chunk of stdin) {
      for (const ch of (chunk as Buffer).toString("utf8")) {
        if (ch === "\r" || ch === "\n") return typed.trim();
        if (ch === "\u0003") throw new CliError("cancelled");
        typed = ch === "\u007f" ? typed.slice(0, -1) : typed + ch;
      }
    }
    return typed.trim();
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    stderr.write("\n");
  }
}

/** The commands with no module of their own; src/cli/catalog.ts lists every command and loads it. */
export const commands: Record<string, Command> = {
  /** The chat's answer in plain text; `--json` is the report of GET /api/spend, for scripts. */
  async spend(ctx) {
    if (!ctx.options.json) return answerChat(ctx, ["spend", ...ctx.args].join(" "));
    const report = await withClient(ctx, (c) => c.get<SpendJson>(`/api/spend?${spendQuery(ctx.args, str(ctx.options.tz))}`));
    out(JSON.stringify(report, null, 2));
    return 0;
  },

  async report(ctx) {
    const query = new URLSearchParams({ period: str(ctx.options.period) ?? "last-month", format: str(ctx.options.format) ?? "csv" });
    if (ctx.options.tz) query.set("tz", String(ctx.options.tz));
    const res = await withClient(ctx, (c) => c.request("GET", `/api/reports/finance?${query}`));
    process.stdout.write(res.text.endsWith("\n") ? res.text : `${res.text}\n`);
    return 0;
  },

  async ingest(ctx) {
    const file = ctx.args[0];
    if (!file) throw new CliError("give the NDJSON file to import: tollgate ingest FILE");
    const size = (await stat(file).catch(() => null))?.size;
    if (size === undefined) throw new CliError(`cannot read ${file}`);
    const input = countingLines(file);
    const share = () => (size === 0 ? 1 : input.bytesRead() / size);
    const totals = await withClient(ctx, (c) => importLines(c, str(ctx.options.source) ?? "import", input.lines, progressBar(share)));
    return reportImport(totals);
  },

  async demo(ctx) {
    const days = Number(str(ctx.options.days) ?? "60");
    if (!Number.isInteger(days) || days < 1 || days > 366) throw new CliError("--days must be a whole number from 1 to 366");
    const events = [...demoEvents(new Date(), days)].map((e) => JSON.stringify(e));
    const totals = await withClient(ctx, (c) => importLines(c, "demo", events, progressBar((sent) => sent / events.length)));
    const code = reportImport(totals);
    out("Try: tollgate spend this-month by team");
    return code;
  },

  async keys(ctx) {
    const [action, id] = ctx.args;
    if (action === "create") {
      const body = {
        ...Object.fromEntries(["kind", "name", "team", "project", "feature", "user"].flatMap((k) => (ctx.options[k] ? [[k, ctx.options[k]]] : []))),
        allowed_providers: list(ctx.options.providers),
        allowed_models: list(ctx.options.models),
      };
      const key = await withClient(ctx, (c) => c.postJson<Record<string, unknown>>("/api/keys", body));
      out(renderTable([key], ["id", "kind", "name", "team", "project", "feature", "user", "allowed_providers", "allowed_models"]));
      out(`\nkey: ${key.key}\nThis is the only time the key is shown; store it now.`);
      return 0;
    }
    if (action === "list") {
      const { keys } = await withClient(ctx, (c) => c.get<{ keys: Record<string, unknown>[] }>("/api/keys"));
      out(renderTable(keys, ["id", "kind", "name", "prefix", "team", "project", "created_at", "revoked_at"]));
      return 0;
    }
    if (action === "revoke" && id) {
      const key = await withClient(ctx, (c) => c.request("DELETE", `/api/keys/${encodeURIComponent(id)}`));
      out(`revoked ${(key.json() as { name: string }).name}`);
      return 0;
    }
    throw new CliError("use: tollgate keys create --kind ingest|virtual --name NAME | keys list | keys revoke ID");
  },

  async providers(ctx) {
    const [action, name] = ctx.args;
    const columns = ["provider", "source", "hint", "master_key_id", "updated_at"];
    if (action === "list") {
      const { providers } = await withClient(ctx, (c) => c.get<{ providers: Record<string, unknown>[] }>("/api/providers"));
      out(renderTable(providers, columns));
      return 0;
    }
    if (action === "set" && name) {
      const apiKey = await readSecret(`API key for ${name}: `);
      if (!apiKey) throw new CliError("no key was given on standard input");
      const info = await withClient(ctx, (c) => c.postJson<Record<string, unknown>>("/api/providers", { name, api_key: apiKey }));
      out(renderTable([info], columns));
      return 0;
    }
    if (action === "remove" && name) {
      const info = await withClient(ctx, (c) => c.request("DELETE", `/api/providers/${encodeURIComponent(name)}`));
      out(renderTable([info.json() as Record<string, unknown>], columns));
      return 0;
    }
    if (action === "rotate-master") {
      const r = await withClient(ctx, (c) => c.postJson<{ master_key_id: string; resealed: Record<string, number> }>("/api/providers/rotate-master", {}));
      const { provider_keys, ingest_source_secrets, channel_secrets } = r.resealed;
      out(`re-sealed ${provider_keys} provider keys, ${ingest_source_secrets} signing secrets and ${channel_secrets} channel secrets under master key ${r.master_key_id}`);
      return 0;
    }
    throw new CliError("use: tollgate providers list | providers set NAME (key on standard input) | providers remove NAME | providers rotate-master");
  },

  async sources(ctx) {
    const [action, name] = ctx.args;
    if (action !== "create" || !name) throw new CliError("use: tollgate sources create NAME");
    const source = await withClient(ctx, (c) => c.postJson<{ id: string; name: string; secret: string }>("/api/ingest-sources", { name }));
    out(`source ${source.name} (${source.id})\nsecret: ${source.secret}\nThis is the only time the secret is shown; store it now.`);
    return 0;
  },
};
