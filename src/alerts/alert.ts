import { z } from "zod";
import { Chart } from "../charts/chart.ts";
import { DIMENSIONS } from "../ledger/event.ts";

/**
 * The platform-neutral alert every channel renders (DESIGN.md §1, "one shape out"). Money is exact
 * decimal USD text; times are ISO 8601. Stored in the outbox payload as plain JSON, tagged with its
 * version (see StoredAlert below).
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

/** A value of a dimension whose spend grew most against the period before (a digest's top movers). */
export const Mover = z.object({ dimension: z.enum(DIMENSIONS), key: z.string(), spend_usd: Money, previous_spend_usd: Money, change_usd: Money });
export type Mover = z.infer<typeof Mover>;

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
  /**
   * When the amount is reached at the forecast's run rate, on threshold and forecast alerts; null
   * when it will not be within the period or it is too early to say. Defaulted so rows stored
   * before it existed read as they are.
   */
  run_out_at: z.string().nullable().default(null),
  top: z.array(Contributor),
  /** Largest increases against the period before, largest first (digests). Defaulted like `chart`. */
  movers: z.array(Mover).default([]),
  /**
   * A chart of what the alert is about, as it stood when the alert was made (a digest's daily
   * trend, a budget's period so far), drawn by each platform its own way; null when there is none.
   * Defaulted, so rows stored before charts existed read as they are and deliver without one.
   */
  chart: Chart.nullable().default(null),
  actions: z.array(AlertAction),
  /** Kind-specific facts (approval id, requester, reason, anomaly baseline, digest rows...). */
  details: z.record(z.string(), z.unknown()).default({}),
  at: z.string(),
});
export type Alert = z.infer<typeof Alert>;

/**
 * The alert as stored in the outbox: the current shape tagged with its version, so a row outlives
 * changes to the shape. A new version adds its schema here and a step that turns the one before
 * it into it; rows of every version ever written stay readable. A field added with a default
 * (run_out_at, movers, chart) needs no new version: a row without it reads with the default, and a
 * gateway that does not know it yet reads the row without it.
 */
export const ALERT_VERSION = 2;

/** Version 1: rows written before alerts carried a version (no `version` field), otherwise today's shape. */
const StoredAlertV1 = Alert.extend({ version: z.literal(1).optional() });
const StoredAlertV2 = Alert.extend({ version: z.literal(2) });
export type StoredAlert = z.infer<typeof StoredAlertV1> | z.infer<typeof StoredAlertV2>;

function untagged({ version: _, ...alert }: StoredAlert): Alert {
  return alert;
}

/** Each version's schema and how a value of it becomes the current Alert. */
const VERSIONS: Record<number, { schema: z.ZodType<StoredAlert>; toCurrent: (stored: StoredAlert) => Alert }> = {
  // Version 2 only added the tag: both read as they are, without it.
  1: { schema: StoredAlertV1, toCurrent: untagged },
  2: { schema: StoredAlertV2, toCurrent: untagged },
};

/** The alert as it goes into the outbox. */
export const storedAlert = (alert: Alert): StoredAlert => ({ ...alert, version: ALERT_VERSION });

/**
 * Reads a stored alert by its version and brings it forward to the current shape. An alert of a
 * version this gateway does not know (written by a newer one) or that does not fit its version's
 * shape is an error that says so, never a silently missing alert.
 */
export function readStoredAlert(raw: unknown): { ok: true; alert: Alert } | { ok: false; message: string } {
  const tagged = typeof raw === "object" && raw !== null && !Array.isArray(raw) ? (raw as { version?: unknown }).version : undefined;
  const version = tagged ?? 1;
  const known = typeof version === "number" ? VERSIONS[version] : undefined;
  if (!known)
    return { ok: false, message: `alert version ${JSON.stringify(version)} is not one this gateway reads (1 to ${ALERT_VERSION}); upgrade the gateway, then resend` };
  const parsed = known.schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, message: `a version ${version} alert that does not fit its shape: ${issue.path.join(".") || "the alert"}: ${issue.message}` };
  }
  return { ok: true, alert: known.toCurrent(parsed.data) };
}
