import type { Telegram } from "telegraf";
import type { SubscriptionKind } from "../../src/alerts/alert.ts";
import type { Scope } from "../../src/budgets/budget.ts";
import type { Logger } from "../../src/logger.ts";
import type { LinkCodes } from "./link-codes.ts";

/** The deep link that opens a chat with the bot and sends `/start CODE`. */
export const deepLink = (username: string, code: string) => `https://t.me/${encodeURIComponent(username)}?start=${encodeURIComponent(code)}`;

const NOT_CONFIGURED =
  "Telegram is not configured on this gateway: set TELEGRAM_BOT_TOKEN (and TELEGRAM_WEBHOOK_SECRET, or TELEGRAM_MODE=polling) and restart it; README, Connect Telegram, has the steps.";

export type LinkMade =
  /** `deepLink` is undefined when Telegram could not be asked the bot's name just now. */
  | { ok: true; code: string; expiresAt: Date; deepLink: string | undefined }
  | { ok: false; kind: "not_configured"; message: string };

/** Makes link codes, wherever they are asked for (the admin API and CLI, a chat command). */
export interface LinkMaker {
  create(request: { scope: Scope; kinds: SubscriptionKind[]; by: string }, now: Date): Promise<LinkMade>;
}

/**
 * Link codes with their deep links; `telegram` is the gateway's bot, undefined when none is
 * configured: then no code is made, whoever asks (a code no bot will ever take would only mislead
 * whoever was given it). The bot's username is asked of Telegram (getMe) the first time it is
 * needed and kept; a failed ask is forgotten, so the next code asks again, and that code goes
 * without a deep link (`/link CODE` still works).
 */
export function linkMaker(codes: LinkCodes, telegram: Pick<Telegram, "getMe"> | undefined, logger: Logger): LinkMaker {
  let username: Promise<string> | undefined;
  async function link(code: string): Promise<string | undefined> {
    const asked = (username ??= telegram!.getMe().then((me) => me.username));
    try {
      return deepLink(await asked, code);
    } catch (err) {
      if (username === asked) username = undefined;
      logger.warn({ component: "telegram", error: (err as Error).name, code: (err as { code?: unknown }).code }, "telegram getMe failed: a link code goes without its deep link");
      return undefined;
    }
  }
  return {
    async create(request, now) {
      if (!telegram) return { ok: false, kind: "not_configured", message: NOT_CONFIGURED };
      const { code, expiresAt } = await codes.create(request, now);
      return { ok: true, code, expiresAt, deepLink: await link(code) };
    },
  };
}
