import { STATUS_CODES } from "node:http";
import { type Dispatcher, fetch } from "undici";
import { parseRetryAfter } from "../../src/alerts/outbox.ts";
import type { Config } from "../../src/config.ts";
import type { Deliverer, DeliveryOutcome } from "../../src/integration.ts";
import { OutboundRefused, outboundAgent } from "../../src/outbound/agent.ts";
import { OutboundPolicy } from "../../src/outbound/policy.ts";
import { sign } from "../../src/signing/standard-webhooks.ts";
import { webhookBody } from "./payload.ts";

/** The receiver's JSON `retry_after` in seconds, when its 429 body has one. */
function bodyRetryAfter(text: string): number | string | undefined {
  try {
    const value = (JSON.parse(text) as { retry_after?: unknown }).retry_after;
    return typeof value === "number" || typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Network failures by kind, as the outbox shows them: a class, never what the other end said. */
const NETWORK: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ETIMEDOUT: "no answer in time",
  UND_ERR_CONNECT_TIMEOUT: "no answer in time",
  UND_ERR_HEADERS_TIMEOUT: "no answer in time",
  UND_ERR_BODY_TIMEOUT: "no answer in time",
  UND_ERR_SOCKET: "connection lost",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host not found (DNS did not answer)",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
};

/** Why fetch failed, as a class a person reading `/api/outbox` understands (connection refused, timeout, a forbidden address...). */
function failureOf(err: unknown): DeliveryOutcome {
  type Coded = Error & { code?: string };
  const e = err as Coded & { cause?: Coded };
  if (e.name === "TimeoutError" || e.name === "AbortError") return { kind: "retry", message: "no answer in time" };
  const cause: Coded = e.cause ?? e;
  if (cause instanceof OutboundRefused) return { kind: "refused", message: `refused: ${cause.message}` };
  const code = cause.code ?? "";
  if (NETWORK[code]) return { kind: "retry", message: NETWORK[code] };
  if (/^ERR_TLS|CERT|SSL/.test(code)) return { kind: "retry", message: `TLS failed (${code})` };
  return { kind: "retry", message: code ? `network error (${code})` : "network error" };
}

/** A receiver's answer by status: 2xx taken; 410 gone; 408, 429 and 5xx tried again; any other 4xx refused for good. */
function outcomeOf(status: number, retryAfterMs: number | undefined): DeliveryOutcome {
  if (status >= 200 && status < 300) return { kind: "delivered" };
  const message = `HTTP ${status}${STATUS_CODES[status] ? ` ${STATUS_CODES[status]}` : ""}`;
  if (status === 410) return { kind: "gone", message: "the receiver answered 410 Gone" };
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) return { kind: "refused", message };
  return { kind: "retry", message, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
}

/**
 * POSTs the message as JSON, signed the Standard Webhooks way: `webhook-id` is the message's dedupe
 * key, the same on every try, so receivers can drop repeats. Requests go through `dispatcher`,
 * which refuses private, loopback, link-local and metadata addresses unless allowed. Redirects
 * are not followed. What the receiver answered is kept as its status, never its body.
 */
export function webhookDeliverer(dispatcher: Dispatcher): Deliverer {
  return {
    async deliver(target, message, context): Promise<DeliveryOutcome> {
      const url = target.address.url;
      if (typeof url !== "string") return { kind: "gone", message: "the channel has no url" };
      if (target.secret === null) return { kind: "gone", message: "the channel has no signing secret" };
      const body = JSON.stringify(webhookBody(message.payload.alerts, context.publicUrl));
      const timestamp = Math.floor(context.now.getTime() / 1000);
      try {
        const res = await fetch(url, {
          method: "POST",
          redirect: "manual",
          signal: context.signal,
          dispatcher,
          headers: {
            "content-type": "application/json",
            "user-agent": "tollgate-webhooks",
            "webhook-id": message.dedupeKey,
            "webhook-timestamp": String(timestamp),
            "webhook-signature": sign(target.secret, message.dedupeKey, timestamp, body),
          },
          body,
        });
        // Read only for a 429's JSON retry_after; never stored.
        const text = res.status === 429 ? await res.text().catch(() => "") : (await res.body?.cancel().catch(() => undefined), "");
        return outcomeOf(res.status, parseRetryAfter(res.headers.get("retry-after") ?? bodyRetryAfter(text), context.now));
      } catch (err) {
        return failureOf(err);
      }
    },
  };
}

/** The deliverer through the outbound policy's guarded agent. */
export const policedWebhookDeliverer = (config: Config): Deliverer => webhookDeliverer(outboundAgent(new OutboundPolicy(config.TOLLGATE_OUTBOUND_ALLOW)));
