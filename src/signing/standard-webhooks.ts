import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Failure } from "../errors.ts";

/** Standard Webhooks allows this much clock difference either way. */
export const TOLERANCE_SECONDS = 300;

export interface WebhookHeaders {
  id: string | undefined;
  timestamp: string | undefined;
  signature: string | undefined;
}

/** A fresh signing secret in the Standard Webhooks form: `whsec_` and 32 random bytes in base64. */
export const newWebhookSecret = () => `whsec_${randomBytes(32).toString("base64")}`;

function secretBytes(secret: string): Buffer {
  return Buffer.from(secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret, "base64");
}

export function sign(secret: string, id: string, timestamp: number, body: Buffer | string): string {
  const mac = createHmac("sha256", secretBytes(secret));
  mac.update(`${id}.${timestamp}.`);
  mac.update(body);
  return `v1,${mac.digest("base64")}`;
}

/**
 * Checks a Standard Webhooks signature against several candidate secrets (rotation) and answers
 * which one signed it. The header may carry several space-separated signatures.
 */
export function verify<S extends { secret: string }>(
  headers: WebhookHeaders,
  body: Buffer,
  candidates: readonly S[],
  nowSeconds = Math.floor(Date.now() / 1000),
): { ok: true; signer: S } | Failure<"unauthorized"> {
  const { id, timestamp, signature } = headers;
  if (!id || !timestamp || !signature)
    return { ok: false, kind: "unauthorized", message: "webhook-id, webhook-timestamp and webhook-signature headers are all required" };
  const ts = Number(timestamp);
  if (!/^\d+$/.test(timestamp) || Math.abs(nowSeconds - ts) > TOLERANCE_SECONDS)
    return { ok: false, kind: "unauthorized", message: `webhook-timestamp must be Unix seconds within ${TOLERANCE_SECONDS} s of now` };
  const presented = signature
    .split(" ")
    .filter((s) => s.startsWith("v1,"))
    .map((s) => Buffer.from(s.slice(3), "base64"));
  for (const candidate of candidates) {
    const expected = Buffer.from(sign(candidate.secret, id, ts, body).slice(3), "base64");
    if (presented.some((p) => p.length === expected.length && timingSafeEqual(p, expected))) return { ok: true, signer: candidate };
  }
  return { ok: false, kind: "unauthorized", message: "no webhook-signature matches an active signing secret" };
}
