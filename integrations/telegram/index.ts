import { Telegram } from "telegraf";
import type { Config } from "../../src/config.ts";
import type { Integration } from "../../src/integration.ts";
import { telegramCommand } from "./cli.ts";
import { telegramDeliverer } from "./deliver.ts";
import { telegramLinksRouter } from "./admin-route.ts";
import { LinkCodes } from "./link-codes.ts";
import { telegramLinkCommand } from "./link-command.ts";
import { linkMaker } from "./linker.ts";
import { mountTelegram } from "./mount.ts";
import { ChatPacer, PACE, type PaceLimits } from "./pacer.ts";
import { telegramSettings } from "./settings.ts";

export interface TelegramOptions {
  /** Telegram's send limits; tests shorten them. */
  pace: PaceLimits;
}

/** The Bot API client for the gateway's bot, when one is configured. */
function botApi(config: Config): Telegram | undefined {
  const { TELEGRAM_BOT_TOKEN: token, TELEGRAM_API_ROOT: apiRoot } = telegramSettings(config);
  return token ? new Telegram(token, { apiRoot, webhookReply: false }) : undefined;
}

/**
 * Telegram, on when TELEGRAM_BOT_TOKEN is set: commands and buttons through /telegram/webhook (or
 * polling), alerts through the outbox with sendMessage, link codes (the `telegram-link` command in
 * every chat, `POST /api/telegram/links`, with deep links), and `tollgate telegram link|set-webhook`.
 * The bot's answers and the outbox's alerts share one pacer, so a chat's limits count both.
 */
export function telegramIntegration(options: Partial<TelegramOptions> = {}): Integration {
  const pacer = new ChatPacer(options.pace ?? PACE);
  const integration: Integration = {
    platform: "telegram",
    connect: (config, logger) => {
      const api = botApi(config);
      return api && telegramDeliverer(api, pacer, logger);
    },
    extend: ({ config, logger, database }) => {
      const links = linkMaker(new LinkCodes(database), botApi(config), logger);
      return { commands: [telegramLinkCommand(links)], adminRouter: telegramLinksRouter(links) };
    },
    mount: (app, context) => mountTelegram(app, context, pacer),
  };
  integration.cli = { telegram: (ctx) => telegramCommand(ctx, integration) };
  return integration;
}

export const telegram: Integration = telegramIntegration();
