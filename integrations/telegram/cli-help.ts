import type { CommandHelp } from "../../src/cli/help.ts";

/** `tollgate telegram`'s help, kept apart from telegraf so `tollgate help` does not load it. */
export const telegramHelp: Record<string, CommandHelp> = {
  telegram: {
    summary: "link a Telegram chat to alerts; register the bot's webhook",
    usage: ["telegram link --scope DIM:VALUE,... [--kinds alerts,daily,weekly,approvals]", "telegram set-webhook --url https://HOST/telegram/webhook"],
    notes: [
      "link prints a one-time code (valid 15 minutes) that the chat sends as /link CODE; --scope everything follows all spend.",
      "set-webhook tells Telegram where to post updates, with TELEGRAM_WEBHOOK_SECRET as their secret; Telegram only posts to https.",
    ],
    examples: ["telegram link --scope team:search --kinds alerts,daily", "telegram set-webhook --url https://tollgate.example.com/telegram/webhook"],
  },
};
