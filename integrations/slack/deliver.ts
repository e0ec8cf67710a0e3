import { webApi } from "@slack/bolt";
import type { SlackSettings } from "./settings.ts";
import type { Deliverer, DeliveryOutcome } from "../../src/integration.ts";
import type { Logger } from "../../src/logger.ts";
import { NATIVE_BLOCKS, alertsMessage } from "./blocks.ts";
import { slackSdkLogger } from "./log.ts";

/** What a delivered Slack message is known by, to update it later. */
interface MessageRef {
  channel: string;
  ts: string;
}

const refOf = (value: Record<string, unknown> | undefined): MessageRef | undefined =>
  value && typeof value.channel === "string" && typeof value.ts === "string" ? { channel: value.channel, ts: value.ts } : undefined;

/** chat.update errors after which the message is posted anew: it was deleted, or is no longer ours to edit. */
const UPDATE_GONE = new Set(["message_not_found", "cant_update_message", "edit_window_closed", "channel_not_found"]);

/**
 * chat.postMessage errors that mean the channel will never take a message: it is disabled until an
 * admin enables it again. A bad token is not one of them: fixing the token brings every channel back.
 */
const CHANNEL_GONE = new Set(["channel_not_found", "is_archived", "not_in_channel", "restricted_action"]);

/** The error Slack answered a Web API call with (`invalid_blocks`), undefined for any other failure. */
export const platformError = (err: unknown) => ((err as { code?: string }).code === webApi.ErrorCode.PlatformError ? String((err as webApi.WebAPIPlatformError).data.error) : undefined);

/** How a failed call goes on: Slack's own wait after a 429, the channel given up on, or another try later. */
function outcomeOf(err: unknown): DeliveryOutcome {
  const e = err as Error & { code?: string };
  if (e.code === webApi.ErrorCode.RateLimitedError) {
    const seconds = (err as webApi.WebAPIRateLimitedError).retryAfter;
    return { kind: "retry", message: `Slack rate limit: retry after ${seconds} s`, retryAfterMs: seconds * 1000 };
  }
  const platform = platformError(err);
  if (platform && CHANNEL_GONE.has(platform)) return { kind: "gone", message: `Slack answered ${platform}` };
  if (platform) return { kind: "retry", message: `Slack answered ${platform}` };
  if (e.code === webApi.ErrorCode.HTTPError) return { kind: "retry", message: `Slack answered HTTP ${(err as webApi.WebAPIHTTPError).statusCode}` };
  return { kind: "retry", message: e.code === webApi.ErrorCode.RequestError ? `Slack unreachable: ${(err as webApi.WebAPIRequestError).original.message}` : `${e.name}: ${e.message}` };
}

/**
 * Delivers outbox messages with chat.postMessage, keeping the message's channel and ts; a message
 * that is the later state of an earlier one (DeliveryContext.replaces) updates that one with
 * chat.update instead, so a decided raise or a budget back under its amount does not add noise.
 * The outbox does the retrying: the client tries once and hands a 429's Retry-After back.
 */
export function slackDeliverer(config: Pick<SlackSettings, "SLACK_BOT_TOKEN" | "SLACK_API_URL">, logger: Logger): Deliverer {
  const client = new webApi.WebClient(config.SLACK_BOT_TOKEN, {
    slackApiUrl: config.SLACK_API_URL,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: 10_000,
    logger: slackSdkLogger(logger),
  });
  return {
    async deliver(target, message, context): Promise<DeliveryOutcome> {
      const channel = target.address.channel_id;
      if (typeof channel !== "string") return { kind: "gone", message: "the channel has no Slack channel id" };
      const earlier = refOf(context.replaces);
      const send = async (native: boolean): Promise<DeliveryOutcome> => {
        const { text, blocks } = alertsMessage(message.payload.alerts, { native });
        if (earlier) {
          try {
            await client.chat.update({ channel: earlier.channel, ts: earlier.ts, text, blocks });
            return { kind: "delivered", externalRef: { ...earlier } };
          } catch (err) {
            const platform = platformError(err);
            if (!platform || !UPDATE_GONE.has(platform)) throw err;
            logger.debug({ channel: target.id, error: platform }, "earlier Slack message not updatable; posting anew");
          }
        }
        const posted = await client.chat.postMessage({ channel, text, blocks, unfurl_links: false, unfurl_media: false });
        return { kind: "delivered", externalRef: { channel: posted.channel ?? channel, ts: posted.ts } };
      };
      try {
        try {
          return await send(true);
        } catch (err) {
          // A workspace whose clients do not take chart blocks refuses the message for them: it goes once more with the charts as text, never retried as it was.
          if (platformError(err) !== "invalid_blocks" || !alertsMessage(message.payload.alerts).blocks.some((b) => NATIVE_BLOCKS.has(b.type))) throw err;
          logger.warn({ channel: target.id }, "Slack refused the chart blocks (invalid_blocks); sending the charts as text");
          return await send(false);
        }
      } catch (err) {
        return outcomeOf(err);
      }
    },
  };
}
