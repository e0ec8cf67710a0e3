import type { CloudAdapter } from "botbuilder";
import type { TeamsSettings } from "./settings.ts";
import type { Deliverer, DeliveryOutcome } from "../../src/integration.ts";
import type { Logger } from "../../src/logger.ts";
import { type TeamsAddress, cardActivity, referenceOf } from "./bot.ts";
import { alertsCard } from "./cards.ts";

/** What a delivered Teams message is known by, to update it later. */
interface MessageRef {
  conversation_id: string;
  activity_id: string;
}

const refOf = (value: Record<string, unknown> | undefined): MessageRef | undefined =>
  value && typeof value.conversation_id === "string" && typeof value.activity_id === "string" ? { conversation_id: value.conversation_id, activity_id: value.activity_id } : undefined;

function addressOf(value: Record<string, unknown>): TeamsAddress | undefined {
  const { service_url, tenant_id, conversation_id } = value;
  return typeof service_url === "string" && typeof tenant_id === "string" && typeof conversation_id === "string" ? { service_url, tenant_id, conversation_id } : undefined;
}

interface ConnectorError {
  statusCode?: number;
  code?: string;
  response?: { headers?: { get(name: string): string | undefined } };
  /** MSAL's, when the bot's own token could not be had: `invalid_client`, `unauthorized_client`, `network_error`… */
  errorCode?: string;
  errorMessage?: string;
}

/** Retry-After in seconds or as an HTTP date, in milliseconds. */
function retryAfterMs(header: string | undefined, now: number): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * How a failed connector call goes on: 403 means the bot was removed from the conversation (or
 * never let in), and 404 that the conversation is gone: the channel is disabled rather than tried
 * forever. 429 and 5xx are tried again after the connector's Retry-After, anything else later.
 */
export function outcomeOf(err: unknown, now: number): DeliveryOutcome {
  const e = err as Error & ConnectorError;
  if (e.errorCode) {
    // Entra's own sentence (`AADSTS7000215: Invalid client secret provided.`) without its trace and correlation ids.
    const reason = /AADSTS\d+: [^.]*\./.exec(e.errorMessage ?? "")?.[0];
    return { kind: "retry", message: `Teams sign-in failed: ${e.errorCode}${reason ? ` (${reason})` : ""}; check MicrosoftAppId, MicrosoftAppPassword and MicrosoftAppTenantId` };
  }
  const status = e.statusCode;
  if (status === 403 || status === 404) return { kind: "gone", message: `Teams answered ${status}: the bot is no longer in this conversation; add it again and subscribe` };
  if (status === 429 || (status !== undefined && status >= 500)) {
    const wait = retryAfterMs(e.response?.headers?.get("retry-after"), now);
    return { kind: "retry", message: `Teams answered ${status}`, ...(wait !== undefined ? { retryAfterMs: wait } : {}) };
  }
  if (status !== undefined) return { kind: "retry", message: `Teams answered ${status}` };
  return { kind: "retry", message: `Teams unreachable: ${e.name}${e.code ? ` ${e.code}` : ""}` };
}

/**
 * The connector client's pipeline retries 429 and 5xx itself, sleeping through Retry-After inside
 * the delivery's time limit; the outbox does the retrying (and lets other channels go first), so
 * the client's own retry policy is taken out. botbuilder offers no option for it.
 */
function withoutRetries(client: unknown): void {
  const pipeline = (client as { client?: { pipeline?: { removePolicy(p: { name: string }): unknown } } } | undefined)?.client?.pipeline;
  pipeline?.removePolicy({ name: "defaultRetryPolicy" });
}

/**
 * Delivers outbox messages as Adaptive Cards, proactively (continueConversationAsync with the
 * channel's stored reference), keeping the activity id; a message that is the later state of an
 * earlier one (a decided raise) updates that card in place, so everyone sees the outcome on it.
 */
export function teamsDeliverer(adapter: CloudAdapter, config: Pick<TeamsSettings, "MicrosoftAppId">, logger: Logger, clock: () => number = Date.now): Deliverer {
  return {
    async deliver(target, message, context): Promise<DeliveryOutcome> {
      const address = addressOf(target.address);
      if (!address) return { kind: "gone", message: "the channel has no Teams conversation reference" };
      const alerts = message.payload.alerts;
      const activity = cardActivity(alertsCard(alerts), alerts[0]?.title ?? "Tollgate");
      const earlier = refOf(context.replaces);
      let outcome: DeliveryOutcome = { kind: "retry", message: "not sent" };
      try {
        // The adapter hands errors of the turn to onTurnError rather than to its caller: each is caught here.
        await adapter.continueConversationAsync(config.MicrosoftAppId ?? "", referenceOf(address), async (turn) => {
          withoutRetries(turn.turnState.get(adapter.ConnectorClientKey));
          try {
            if (earlier && earlier.conversation_id === address.conversation_id) {
              try {
                await turn.updateActivity({ ...activity, id: earlier.activity_id });
                outcome = { kind: "delivered", externalRef: { ...earlier } };
                return;
              } catch (err) {
                if ((err as ConnectorError).statusCode !== 404) throw err;
                logger.debug({ channel: target.id }, "earlier Teams message not found; sending anew");
              }
            }
            const sent = await turn.sendActivity(activity);
            outcome = { kind: "delivered", externalRef: { conversation_id: address.conversation_id, activity_id: sent?.id ?? "" } satisfies MessageRef };
          } catch (err) {
            outcome = outcomeOf(err, clock());
          }
        });
        return outcome;
      } catch (err) {
        return outcomeOf(err, clock());
      }
    },
  };
}
