import { z } from "zod";
import { type Config, optional, readSettings, upstreamUrl } from "../../src/config.ts";

/** Telegram's slice of the environment; kept apart from telegraf so the entry point can read it without loading it. */
const TelegramSettings = z
  .object({
    /** Telegram is on when its bot token is set (from @BotFather). */
    TELEGRAM_BOT_TOKEN: optional.pipe(z.string().regex(/^\d{3,}:[A-Za-z0-9_-]{30,}$/, "a bot token from @BotFather, such as 123456789:AAE...").optional()),
    /** `webhook` (Telegram posts to /telegram/webhook) or `polling` (this gateway asks Telegram, for a machine without a public URL). */
    TELEGRAM_MODE: z.enum(["webhook", "polling"], { error: "webhook or polling" }).default("webhook"),
    /** Required in webhook mode: Telegram sends it in X-Telegram-Bot-Api-Secret-Token, and requests without it are refused. */
    TELEGRAM_WEBHOOK_SECRET: optional.pipe(z.string().regex(/^[A-Za-z0-9_-]{16,256}$/, "16 to 256 letters, digits, _ or - (what Telegram allows in a secret_token)").optional()),
    /** The Bot API's base URL: only tests change it. */
    TELEGRAM_API_ROOT: upstreamUrl("https://api.telegram.org"),
  })
  .superRefine((s, ctx) => {
    if (s.TELEGRAM_BOT_TOKEN && s.TELEGRAM_MODE === "webhook" && !s.TELEGRAM_WEBHOOK_SECRET)
      ctx.addIssue({
        code: "custom",
        path: ["TELEGRAM_WEBHOOK_SECRET"],
        message: "16 to 256 letters, digits, _ or -, required when TELEGRAM_BOT_TOKEN is set in webhook mode (or set TELEGRAM_MODE=polling)",
      });
  });
export type TelegramSettings = z.infer<typeof TelegramSettings>;

export const telegramSettings = (config: Pick<Config, "env">): TelegramSettings => readSettings(TelegramSettings, config);

/** Telegram is on with its bot token. */
export const telegramConfigured = (config: Pick<Config, "env">) => Boolean(telegramSettings(config).TELEGRAM_BOT_TOKEN);
