import type { Alert, AlertKind } from "./alert.ts";

/** Alerts that say a budget went wrong; a later "back under budget" or a decided raise is their outcome. */
const BREACHES: readonly AlertKind[] = ["threshold", "forecast", "blocked"];

/**
 * Which earlier messages an alert is the later state of, so that platforms able to edit a message
 * update it in place rather than add another (a channel then reads one message per story):
 * - a decided raise: the request approvers were asked in, or, where the requester asked, the
 *   budget's breach that prompted it ("approved by @ana: $500 → $800");
 * - a budget back under its amount: the budget's breach.
 * Each entry is a jsonb containment pattern for one alert of a message; the newest message
 * matching any of them is the one to update. Threshold after threshold stays news: a new message.
 */
export function earlierStates(alert: Alert): Record<string, unknown>[] {
  const budget = alert.budget ? { budget: { id: alert.budget.id } } : undefined;
  const breaches = budget ? BREACHES.map((kind) => ({ kind, ...budget })) : [];
  switch (alert.kind) {
    case "approval_decided": {
      const id = alert.details.approval_id;
      return [...(typeof id === "string" ? [{ kind: "approval_requested", details: { approval_id: id } }] : []), ...breaches];
    }
    case "recovered":
      return breaches;
    default:
      return [];
  }
}
