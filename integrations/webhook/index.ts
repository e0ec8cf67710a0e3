import { parseRetryAfter } from "../../src/alerts/outbox.ts";
import { sign } from "../../src/signing/standard-webhooks.ts";
import type { Deliverer, DeliveryOutcome, Integration } from "../../src/integration.ts";
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

/** Why fetch failed, in words a person reading `tollgate outbox` understands (connection refused, timeout...). */
function failureOf(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError" || e.name === "AbortError") return "no answer in time";
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message}: ${cause}` : e.message;
}

/**
 * POSTs the message as JSON, signed the Standard Webhooks way: `webhook-id` is the message's dedupe
 * key, the same on every try, so receivers can drop repeats. 2xx is delivered; 410 means the
 * receiver is gone for good; anything else (429, 5xx, a refused connection) is tried again.
 */
export const webhookDeliverer: Deliverer = {
  async deliver(target, message, context): Promise<DeliveryOutcome> {
    const url = target.address.url;
    if (typeof url !== "string") return { kind: "gone", message: "the channel has no url" };
    if (target.secret === null) return { kind: "gone", message: "the channel has no signing secret" };
    const body = JSON.stringify(webhookBody(message.payload.alerts, context.publicUrl));
    const timestamp = Math.floor(context.now.getTime() / 1000);
    let res: Response;
    try {
      res = await fetch(url, {
        method: "POST",
        redirect: "manual",
        signal: context.signal,
        headers: {
          "content-type": "application/json",
          "user-agent": "tollgate-webhooks",
          "webhook-id": message.dedupeKey,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": sign(target.secret, message.dedupeKey, timestamp, body),
        },
        body,
      });
    } catch (err) {
      return { kind: "retry", message: failureOf(err) };
    }
    const text = await res.text().catch(() => "");
    if (res.ok) return { kind: "delivered" };
    if (res.status === 410) return { kind: "gone", message: `the receiver answered 410 Gone` };
    const retryAfterMs = parseRetryAfter(res.headers.get("retry-after") ?? bodyRetryAfter(text), context.now);
    return { kind: "retry", message: `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ""}`, retryAfterMs };
  },
};

export const webhook: Integration = { platform: "webhook", deliverer: webhookDeliverer };
