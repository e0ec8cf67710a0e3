import { type Telegram, TelegramError } from "telegraf";
import type { Opts } from "telegraf/types";
import type { Deliverer, DeliveryOutcome } from "../../src/integration.ts";
import type { Logger } from "../../src/logger.ts";
import type { ChatPacer } from "./pacer.ts";
import type { Alert } from "../../src/alerts/alert.ts";
import { renderPng } from "../../src/charts/png.ts";
import { type TelegramMessage, alertsMessage, escapeClipped } from "./render.ts";

/** What a delivered Telegram message is known by, to edit it later. */
export interface MessageRef {
  chat_id: number;
  message_id: number;
}

const refOf = (value: Record<string, unknown> | undefined): MessageRef | undefined =>
  value && typeof value.chat_id === "number" && typeof value.message_id === "number" ? { chat_id: value.chat_id, message_id: value.message_id } : undefined;

/**
 * A pacing wait longer than this is not slept through inside a delivery (which has 10 s in all):
 * the message is handed back to the outbox, due when the chat's slot comes.
 */
const LONGEST_INLINE_WAIT_MS = 3000;

/** The Bot API's descriptions that mean the chat will never take a message from this bot again, until someone links it anew. */
const CHAT_GONE = [/chat not found/i, /bot was kicked/i, /bot was blocked/i, /bot is not a member/i, /user is deactivated/i, /have no rights to send/i, /chat_write_forbidden/i];

/** editMessageText errors after which the message is posted anew. */
const EDIT_GONE = [/message to edit not found/i, /message can't be edited/i, /message_id_invalid/i];

/** What a failed call leads to: Telegram's own wait after a 429 (for this chat only), the channel given up on, or another try later. */
export function outcomeOf(err: unknown, chatId: number, pacer: ChatPacer, now: number): DeliveryOutcome {
  if (!(err instanceof TelegramError)) {
    const e = err as Error;
    return { kind: "retry", message: e.name === "AbortError" ? "no answer from Telegram in time" : `Telegram unreachable: ${e.message}` };
  }
  const message = `Telegram answered ${err.code}: ${err.description}`;
  if (err.code === 429) {
    const retryAfterMs = (err.parameters?.retry_after ?? 1) * 1000;
    pacer.hold(chatId, retryAfterMs, now);
    return { kind: "retry", message, retryAfterMs };
  }
  const migrated = err.parameters?.migrate_to_chat_id;
  if (migrated !== undefined) return { kind: "gone", message: `the group became a supergroup (chat ${migrated}); link it again with /link` };
  if ((err.code === 400 || err.code === 403) && CHAT_GONE.some((re) => re.test(err.description))) return { kind: "gone", message };
  return { kind: "retry", message };
}

/** Waits `ms`, or less if the delivery is aborted meanwhile. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** The options every message is sent with: HTML, no link previews, and its buttons. */
export function sendOptions(message: TelegramMessage) {
  return {
    parse_mode: "HTML" as const,
    link_preview_options: { is_disabled: true },
    ...(message.keyboard.length > 0 ? { reply_markup: { inline_keyboard: message.keyboard } } : {}),
  };
}

/** Photos of charts sent with one message at most, as Slack draws at most two charts a message. */
const PHOTOS_PER_MESSAGE = 2;

/**
 * Delivers outbox messages with sendMessage, keeping the message's chat and id; a message that is
 * the later state of an earlier one (DeliveryContext.replaces: a decided raise, a budget back
 * under) edits that one instead. Each chat is paced (pacer.ts); a 429 holds only that chat, and
 * the outbox tries the message again after Telegram's retry_after. The outbox sends one message of
 * a chat at a time, in order, so pacing here never reorders a chat's messages.
 */
export function telegramDeliverer(telegram: Telegram, pacer: ChatPacer, logger: Logger, clock: () => number = Date.now): Deliverer {
  let fontMissingLogged = false;
  /** The charts of a new message's alerts drawn as PNGs (the first two); none when no font is installed, the charts then being written out. */
  function drawCharts(alerts: readonly Alert[]): Map<Alert, Buffer> {
    const drawn = new Map<Alert, Buffer>();
    for (const alert of alerts.filter((a) => a.chart).slice(0, PHOTOS_PER_MESSAGE)) {
      const png = renderPng(alert.chart!);
      if (png.ok) drawn.set(alert, png.png);
      else if (!fontMissingLogged) {
        fontMissingLogged = true;
        logger.warn({ component: "telegram" }, `alert charts are sent as text: ${png.reason}`);
      }
    }
    return drawn;
  }
  return {
    async deliver(target, message, context): Promise<DeliveryOutcome> {
      const chatId = target.address.chat_id;
      if (typeof chatId !== "number") return { kind: "gone", message: "the channel has no Telegram chat id" };
      const wait = pacer.earliest(chatId, clock()) - clock();
      if (wait > LONGEST_INLINE_WAIT_MS) return { kind: "retry", message: `paced: the chat's next message may go in ${Math.ceil(wait / 1000)} s`, retryAfterMs: wait };
      await pause(pacer.reserve(chatId, clock()), context.signal);
      const earlier = refOf(context.replaces);
      // An edit keeps the message's photos as they were: its charts, if any, are written out.
      const photos = earlier ? new Map<Alert, Buffer>() : drawCharts(message.payload.alerts);
      const rendered = alertsMessage(message.payload.alerts, new Set(photos.keys()));
      const options = sendOptions(rendered);
      // telegraf types its signal with the abort-controller shim; node-fetch takes Node's own.
      const signal = { signal: context.signal } as unknown as Parameters<Telegram["callApi"]>[2];
      try {
        if (earlier) {
          try {
            await telegram.callApi("editMessageText", { chat_id: earlier.chat_id, message_id: earlier.message_id, text: rendered.html, ...options }, signal);
            return { kind: "delivered", externalRef: { ...earlier } };
          } catch (err) {
            if (err instanceof TelegramError && /message is not modified/i.test(err.description)) return { kind: "delivered", externalRef: { ...earlier } };
            if (!(err instanceof TelegramError) || !EDIT_GONE.some((re) => re.test(err.description))) throw err;
            logger.debug({ channel: target.id, error: err.description }, "earlier Telegram message not editable; sending anew");
          }
        }
        const sent = await telegram.callApi("sendMessage", { chat_id: chatId, text: rendered.html, ...options }, signal);
        const ref = { chat_id: sent.chat.id, message_id: sent.message_id } satisfies MessageRef;
        // The message is delivered: the photos follow as replies to it. One that fails is logged,
        // not retried, so the alert is never sent twice for its picture.
        for (const [alert, png] of photos) {
          const wait = pacer.earliest(chatId, clock()) - clock();
          if (wait > LONGEST_INLINE_WAIT_MS || context.signal.aborted) {
            logger.warn({ channel: target.id }, "alert chart photo not sent: the chat's next slot is too far off; the message went without it");
            break;
          }
          await pause(pacer.reserve(chatId, clock()), context.signal);
          await telegram
            .callApi(
              "sendPhoto",
              {
                chat_id: chatId,
                photo: { source: png, filename: "tollgate-chart.png" },
                caption: escapeClipped(alert.chart!.title, 1000),
                parse_mode: "HTML",
                reply_parameters: JSON.stringify({ message_id: sent.message_id, allow_sending_without_reply: true }),
                // telegraf types it as the object; a multipart upload takes it as JSON text.
              } as unknown as Opts<"sendPhoto">,
              signal,
            )
            .catch((err: unknown) => logger.warn({ channel: target.id, error: err instanceof TelegramError ? err.description : (err as Error).message }, "alert chart photo not sent; the message went without it"));
        }
        return { kind: "delivered", externalRef: ref };
      } catch (err) {
        return outcomeOf(err, chatId, pacer, clock());
      }
    },
  };
}
