import type { Telegram } from "telegraf";
import type { ChatLinker } from "../../src/integration.ts";
import type { Logger } from "../../src/logger.ts";

/** The deep link that opens a chat with the bot and sends `/start CODE`. */
export const deepLink = (username: string, code: string) => `https://t.me/${encodeURIComponent(username)}?start=${encodeURIComponent(code)}`;

/**
 * Deep links for link codes, wherever they are made (admin API, CLI, a chat command). The bot's
 * username is asked of Telegram (getMe) the first time it is needed and kept; a failed ask is
 * forgotten, so the next code asks again, and that code goes without a deep link (`/link CODE` still works).
 */
export function telegramLinker(telegram: Pick<Telegram, "getMe">, logger: Logger): ChatLinker {
  let username: Promise<string> | undefined;
  return {
    async deepLink(code) {
      const asked = (username ??= telegram.getMe().then((me) => me.username));
      try {
        return deepLink(await asked, code);
      } catch (err) {
        if (username === asked) username = undefined;
        logger.warn({ component: "telegram", error: (err as Error).name, code: (err as { code?: unknown }).code }, "telegram getMe failed: a link code goes without its deep link");
        return undefined;
      }
    },
  };
}
