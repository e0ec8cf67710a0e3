import { timingSafeEqual } from "node:crypto";
import express, { type Express, type RequestHandler } from "express";
import type { Telegraf } from "telegraf";
import type { Update } from "telegraf/types";
import commandList from "../../manifest/telegram-commands.json" with { type: "json" };
import type { IntegrationContext } from "../../src/integration.ts";
import { sendProblem } from "../../src/http/problem.ts";
import { ALLOWED_UPDATES, createBot } from "./bot.ts";
import { LinkCodes } from "./link-codes.ts";
import type { ChatPacer } from "./pacer.ts";
import { telegramSettings } from "./settings.ts";
import { RaisePrompts, UpdateInbox, pruneTelegram } from "./store.ts";

/** The bot's user id: the part of the token before the colon, which is no secret. */
const botIdOf = (token: string) => Number(token.slice(0, token.indexOf(":")));

const PRUNE_EVERY_MS = 3_600_000;
const RELAUNCH_AFTER_MS = 10_000;

/** Refuses, with 403 and without reading the body, a request that does not carry the webhook's secret. */
function secretCheck(secret: string): RequestHandler {
  const expected = Buffer.from(secret);
  return (req, res, next) => {
    const presented = Buffer.from(req.get("x-telegram-bot-api-secret-token") ?? "");
    if (presented.length === expected.length && timingSafeEqual(presented, expected)) return next();
    sendProblem(res, "forbidden", "the X-Telegram-Bot-Api-Secret-Token header does not match TELEGRAM_WEBHOOK_SECRET");
  };
}

/**
 * Mounts Telegram on the gateway when TELEGRAM_BOT_TOKEN is set:
 * - webhook mode: `POST /telegram/webhook`, checked against TELEGRAM_WEBHOOK_SECRET. Each update
 *   is recorded (a repeat is acknowledged and dropped), acknowledged at once and processed after,
 *   so Telegram never retries an update that is merely slow. While the database is away the
 *   webhook answers 503 and Telegram keeps the update for later: nothing is acknowledged unrecorded.
 * - polling mode: long polling, in processes that run background work (TOLLGATE_JOBS=on), for a
 *   machine without a public URL; each update is recorded before it is processed too.
 * The command list is registered with setMyCommands at start.
 */
export function mountTelegram(app: Express, context: IntegrationContext, pacer: ChatPacer): void {
  const { config, logger, database, door } = context;
  const settings = telegramSettings(config);
  const token = settings.TELEGRAM_BOT_TOKEN;
  if (!token) return;
  const links = new LinkCodes(database);
  const inbox = new UpdateInbox(database, botIdOf(token));
  const polling = settings.TELEGRAM_MODE === "polling";
  const bot = createBot(token, { apiRoot: settings.TELEGRAM_API_ROOT, logger, door, pacer, links, prompts: new RaisePrompts(database), ...(polling ? { inbox } : {}) });
  const log = (what: string) => (err: unknown) => logger.error({ component: "telegram", error: (err as Error).name, code: (err as { code?: unknown }).code }, `telegram ${what} failed`);

  // Each step fails by its own name: an operator told "getMe, setMyCommands failed" would check the token for nothing.
  const startup = Promise.all([
    (async () => {
      bot.botInfo ??= await bot.telegram.getMe();
    })().catch(log("start-up getMe")),
    bot.telegram.setMyCommands(commandList).catch(log("start-up setMyCommands")),
  ]);

  const inFlight = new Set<Promise<void>>();
  const handle = (update: Update) => {
    const task: Promise<void> = bot
      .handleUpdate(update)
      .catch(log("update"))
      .finally(() => inFlight.delete(task));
    inFlight.add(task);
  };

  if (!polling) {
    // loadConfig already refuses this; an empty secret would let every request in.
    if (!settings.TELEGRAM_WEBHOOK_SECRET) throw new Error("TELEGRAM_WEBHOOK_SECRET is required in webhook mode");
    app.post("/telegram/webhook", secretCheck(settings.TELEGRAM_WEBHOOK_SECRET), express.json({ limit: "1mb" }), async (req, res) => {
      const update = req.body as Update | undefined;
      if (!update || !Number.isSafeInteger(update.update_id)) return sendProblem(res, "invalid", "the body is not a Telegram update (no update_id)");
      let fresh: boolean;
      try {
        fresh = await inbox.record(update.update_id);
      } catch (err) {
        log("recording an update")(err);
        return sendProblem(res, "unavailable", "the update could not be recorded; Telegram will send it again");
      }
      res.status(200).end();
      if (fresh) handle(update);
    });
  }

  let closing = false;
  let launched: Promise<void> | undefined;
  if (polling && config.TOLLGATE_JOBS === "on") {
    // launch() resolves when polling stops; a start that fails (Telegram unreachable) is tried again.
    launched = (async () => {
      while (!closing) {
        try {
          await bot.launch({ allowedUpdates: [...ALLOWED_UPDATES] });
        } catch (err) {
          if (closing) return;
          log("polling")(err);
          for (let waited = 0; waited < RELAUNCH_AFTER_MS && !closing; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    })();
  }

  let pruner: NodeJS.Timeout | undefined;
  if (config.TOLLGATE_JOBS === "on") {
    const prune = () => void Promise.all([pruneTelegram(database, botIdOf(token)), links.prune()]).catch(log("pruning"));
    prune();
    pruner = setInterval(prune, PRUNE_EVERY_MS).unref();
  }

  context.onClose(async () => {
    closing = true;
    clearInterval(pruner);
    if (launched) {
      // Asked again until it ends: a stop that comes while launch() is still calling getMe finds nothing to stop yet.
      let ended = false;
      void launched.then(() => (ended = true));
      while (!ended) {
        stopPolling(bot);
        await Promise.race([launched, new Promise((resolve) => setTimeout(resolve, 50))]);
      }
    }
    await startup;
    await Promise.all(inFlight);
  });
}

/** Telegraf throws when asked to stop a bot whose polling never started. */
function stopPolling(bot: Telegraf): void {
  try {
    bot.stop("gateway closing");
  } catch {
    // Not polling: nothing to stop.
  }
}
