import { type Scope, scopeMatches } from "../budgets/budget.ts";
import { type Alert, KIND_SUBSCRIPTION, type SubscriptionKind } from "./alert.ts";

/** What routing needs to know of a channel. */
export interface Subscriber {
  id: string;
  /** Empty: every scope. */
  scopes: Scope[];
  kinds: SubscriptionKind[];
}

/** `channelId budgetId` pairs silenced now. */
export type ActiveMutes = ReadonlySet<string>;
export const muteKey = (channelId: string, budgetId: string) => `${channelId} ${budgetId}`;

/**
 * Threshold alerts of one budget and period raised together: only the highest threshold is news,
 * the lower ones are implied by it.
 */
export function highestThresholdsOnly(alerts: readonly Alert[]): Alert[] {
  const group = (a: Alert) => `${a.budget?.id} ${a.period?.start}`;
  const highest = new Map<string, number>();
  for (const a of alerts) if (a.kind === "threshold") highest.set(group(a), Math.max(highest.get(group(a)) ?? -Infinity, a.threshold ?? 0));
  return alerts.filter((a) => a.kind !== "threshold" || (a.threshold ?? 0) === highest.get(group(a)));
}

/**
 * Whether a channel's subscription takes an alert. A subscribed scope takes budgets within it
 * (`{team: search}` takes `{team: search, model: gpt-4o}`, not `{}`). Approval requests go to every
 * approvals channel whatever its scopes, so no request waits for want of a matching approver.
 */
export function subscribes(channel: Subscriber, alert: Alert): boolean {
  const kind = KIND_SUBSCRIPTION[alert.kind];
  if (!channel.kinds.includes(kind)) return false;
  if (kind === "approvals" || !alert.budget || channel.scopes.length === 0) return true;
  const budgetScope = alert.budget.scope;
  return channel.scopes.some((s) => scopeMatches(s, budgetScope));
}

/** Mutes silence a budget's alerts; approvals and digests are not alerts about a budget going wrong. */
const silenced = (channel: Subscriber, alert: Alert, mutes: ActiveMutes) =>
  KIND_SUBSCRIPTION[alert.kind] === "alerts" && alert.budget !== null && mutes.has(muteKey(channel.id, alert.budget.id));

/**
 * Which alerts each channel gets, in the order they were raised: one entry per channel, so alerts
 * raised together reach a channel as one message. Channels named by the caller get the alerts
 * whatever they subscribe to (a reply to where a request was made), mutes still applying.
 */
export function route(alerts: readonly Alert[], channels: readonly Subscriber[], mutes: ActiveMutes, named?: readonly string[]): Map<string, Alert[]> {
  const news = highestThresholdsOnly(alerts);
  const out = new Map<string, Alert[]>();
  for (const channel of channels) {
    const wanted = named ? named.includes(channel.id) : undefined;
    if (wanted === false) continue;
    const taken = news.filter((a) => (wanted || subscribes(channel, a)) && !silenced(channel, a, mutes));
    if (taken.length > 0) out.set(channel.id, taken);
  }
  return out;
}
