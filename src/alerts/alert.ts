import { z } from "zod";
import { DIMENSIONS } from "../ledger/event.ts";

/**
 * The platform-neutral alert every channel renders (DESIGN.md §1, "one shape out"). Money is exact
 * decimal USD text; times are ISO 8601. Stored as the outbox payload, so it is plain JSON.
 */
export const ALERT_KINDS = [
  "threshold",
  "forecast",
  "anomaly",
  "blocked",
  "recovered",
  "approval_requested",
  "approval_decided",
  "digest_daily",
  "digest_weekly",
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** What a channel may subscribe to: groups of alert kinds. */
export const SUBSCRIPTION_KINDS = ["alerts", "approvals", "daily", "weekly"] as const;
export type SubscriptionKind = (typeof SUBSCRIPTION_KINDS)[number];

export const KIND_SUBSCRIPTION: Record<AlertKind, SubscriptionKind> = {
  threshold: "alerts",
  forecast: "alerts",
  anomaly: "alerts",
  blocked: "alerts",
  recovered: "alerts",
  approval_requested: "approvals",
  approval_decided: "approvals",
  digest_daily: "daily",
  digest_weekly: "weekly",
};

const Money = z.string();

export const Contributor = z.object({ dimension: z.enum(DIMENSIONS), key: z.string(), spend_usd: Money });

/** A button the reader can press; each platform turns it into its own kind of action. */
export const AlertAction = z.object({
  action: z.enum(["request_raise", "mute", "breakdown", "approve", "reject"]),
  label: z.string(),
  /** What the action is about: a budget name, an approval id. */
  target: z.string(),
});

export const Alert = z.object({
  /** Unique per occurrence (a firing, an approval's state): outbox dedupe keys are built from it. */
  id: z.string(),
  kind: z.enum(ALERT_KINDS),
  /** A short headline: "search-monthly passed 80 % of $500.00". */
  title: z.string(),
  /** One or two sentences a person reads first. */
  summary: z.string(),
  budget: z
    .object({
      id: z.string(),
      name: z.string(),
      scope: z.record(z.string(), z.string()),
      mode: z.enum(["soft", "hard"]),
      period: z.string(),
    })
    .nullable(),
  spend_usd: Money.nullable(),
  amount_usd: Money.nullable(),
  /** Whole percent of the amount spent, floored. */
  percent: z.number().nullable(),
  threshold: z.number().nullable(),
  period: z.object({ start: z.string(), end: z.string() }).nullable(),
  forecast_usd: Money.nullable(),
  /** How the forecast was made, for the reader who wonders. */
  forecast_method: z.string().nullable(),
  top: z.array(Contributor),
  actions: z.array(AlertAction),
  /** Kind-specific facts (approval id, requester, reason, anomaly baseline, digest rows...). */
  details: z.record(z.string(), z.unknown()).default({}),
  at: z.string(),
});
export type Alert = z.infer<typeof Alert>;
