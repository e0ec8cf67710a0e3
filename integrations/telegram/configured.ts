import type { Config } from "../../src/config.ts";

/** Telegram is on with its bot token; kept apart from telegraf so the entry point can ask without loading it. */
export const telegramConfigured = <C extends Pick<Config, "TELEGRAM_BOT_TOKEN">>(config: C): config is C & { TELEGRAM_BOT_TOKEN: string } => Boolean(config.TELEGRAM_BOT_TOKEN);
