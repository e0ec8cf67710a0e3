import { Telegram, TelegramError } from "telegraf";
import { CliError } from "../../src/cli/admin-client.ts";
import { scopeOption } from "../../src/cli/budget-commands.ts";
import { withClient } from "../../src/cli/connect.ts";
import type { LinkAnswer } from "./admin-route.ts";
import type { Integration, IntegrationCommandContext } from "../../src/integration.ts";
import { ALLOWED_UPDATES } from "./bot.ts";
import { telegramSettings } from "./settings.ts";

const out = (text: string) => process.stdout.write(`${text}\n`);
const str = (v: string | boolean | undefined) => (typeof v === "string" ? v : undefined);

const USE = "use: tollgate telegram link --scope team:search [--kinds alerts,daily] | telegram set-webhook --url https://HOST/telegram/webhook";

/** A one-time link code from the admin API: of the running gateway, or of one started here for the purpose. */
async function link(ctx: IntegrationCommandContext, integration: Integration): Promise<number> {
  const scope = str(ctx.options.scope);
  if (scope === undefined) throw new CliError("give what the chat follows: tollgate telegram link --scope team:search (or --scope everything)");
  const kinds = str(ctx.options.kinds)?.split(",").map((k) => k.trim()).filter(Boolean);
  const body = { scope: scopeOption(scope), ...(kinds ? { kinds } : {}) };
  // A gateway started here only answers this request: it neither polls Telegram nor delivers the outbox.
  const quiet = { ...ctx, config: { ...ctx.config, TOLLGATE_JOBS: "off" as const } };
  const created = await withClient(quiet, (c) => c.postJson<LinkAnswer>("/api/telegram/links", body), [integration]);
  out(`code: ${created.code}`);
  out(`valid until ${created.expires_at}, for one chat`);
  out(`\nIn the Telegram chat (the bot added to it), send:  /link ${created.code}`);
  if (created.deep_link) out(`or open:  ${created.deep_link}`);
  return 0;
}

/** Registers the webhook with Telegram: the URL, the secret it must send back, and the updates Tollgate reads. */
async function setWebhook(ctx: IntegrationCommandContext): Promise<number> {
  const url = str(ctx.options.url);
  if (!url || !URL.canParse(url) || new URL(url).protocol !== "https:")
    throw new CliError("give the public HTTPS address of the webhook: tollgate telegram set-webhook --url https://HOST/telegram/webhook (Telegram only posts to https)");
  const { TELEGRAM_BOT_TOKEN: token, TELEGRAM_WEBHOOK_SECRET: secret, TELEGRAM_API_ROOT: apiRoot } = telegramSettings(ctx.config);
  if (!token) throw new CliError("TELEGRAM_BOT_TOKEN is not set");
  if (!secret) throw new CliError("TELEGRAM_WEBHOOK_SECRET is not set: the webhook refuses requests without it");
  const telegram = new Telegram(token, { apiRoot, webhookReply: false });
  try {
    await telegram.setWebhook(url, { secret_token: secret, allowed_updates: [...ALLOWED_UPDATES] });
  } catch (err) {
    // The description only: the token is in the request URL, never in what is shown.
    throw new CliError(err instanceof TelegramError ? `Telegram refused the webhook: ${err.description}` : `Telegram unreachable: ${(err as Error).message}`);
  }
  out(`Telegram now posts ${ALLOWED_UPDATES.join(" and ")} updates to ${url}, with the secret from TELEGRAM_WEBHOOK_SECRET.`);
  return 0;
}

/** `tollgate telegram link ...` and `tollgate telegram set-webhook ...`. */
export async function telegramCommand(ctx: IntegrationCommandContext, integration: Integration): Promise<number> {
  const [action, ...extra] = ctx.args;
  if (extra.length > 0) throw new CliError(`unexpected "${extra[0]}"; ${USE}`);
  if (action === "link") return link(ctx, integration);
  if (action === "set-webhook") return setWebhook(ctx);
  throw new CliError(USE);
}
