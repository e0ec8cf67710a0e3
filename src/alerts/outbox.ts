import { createHash } from "node:crypto";
import { type SQL, and, asc, desc, eq, inArray, isNotNull, isNull, lt, lte, or, sql } from "drizzle-orm";
import type { PgUpdateSetSource } from "drizzle-orm/pg-core";
import type { Database } from "../db/connection.ts";
import { channels, NOTIFICATION_STATUSES, notifications } from "../db/schema.ts";
import type { Failure } from "../errors.ts";
import type { DeliveryOutcome, MessagePayload, OutgoingMessage } from "../integration.ts";
import { type Alert, readStoredAlert, type StoredAlert, storedAlert, type SubscriptionKind } from "./alert.ts";
import { activeMutes } from "./mutes.ts";
import type { Notifier, Writer } from "./notifier.ts";
import { route } from "./routing.ts";
import { earlierStates } from "./threads.ts";

export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];

export interface RetryPolicy {
  /** The wait after each failed try, in order; a message is tried once more than there are waits, then dead. */
  scheduleMs: readonly number[];
}

/**
 * The wait after `attempt` failed tries: the schedule's, within ±10 % so retries of many messages
 * after one outage spread out instead of arriving together; undefined once the schedule is spent.
 */
export function retryDelayMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number | undefined {
  const wait = policy.scheduleMs[attempt - 1];
  return wait === undefined ? undefined : Math.round(wait * (0.9 + 0.2 * random()));
}

/** Receivers may ask for more than a day; a longer wait is more likely a mistake than a plan. */
const MAX_RETRY_AFTER_MS = 86_400_000;

/**
 * A receiver's requested wait: `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3), or a
 * JSON `retry_after` in seconds (as several chat APIs send it). Undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | number | null | undefined, now: Date): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = String(value).trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at) || !/[a-z]/i.test(text)) return undefined;
    ms = at - now.getTime();
  }
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, Math.round(ms)));
}

/** What one try leads to: the receiver's own wait when it asked for one, the schedule's otherwise, or the end. */
export function afterFailure(attempt: number, retryAfterMs: number | undefined, policy: RetryPolicy, random?: () => number): { dead: true } | { dead: false; delayMs: number } {
  const scheduled = retryDelayMs(attempt, policy, random);
  if (scheduled === undefined) return { dead: true };
  return { dead: false, delayMs: retryAfterMs ?? scheduled };
}

/** Stable per channel and set of alerts, so enqueueing the same alerts twice writes one row. */
export function dedupeKey(channelId: string, alerts: readonly Pick<Alert, "id">[]): string {
  const ids = alerts.map((a) => a.id);
  if (ids.length === 1) return `${channelId}:${ids[0]}`;
  return `${channelId}:${createHash("sha256").update([...ids].sort().join("\n")).digest("base64url").slice(0, 32)}`;
}

/**
 * An outbox row's payload as stored: each alert tagged with its version. Read back with readPayload.
 * `follows`: the earlier states its one alert is the later state of (src/alerts/threads.ts); the
 * row is not sent while a pending row of its channel holds one of them, so an update never
 * overtakes the message it updates.
 */
interface StoredPayload {
  alerts: StoredAlert[];
  follows?: Record<string, unknown>[];
}

/** The earlier states a message of these alerts must not overtake: only a message of one alert updates another. */
function follows(group: readonly Alert[]): Record<string, unknown>[] {
  return group.length === 1 ? earlierStates(group[0]!) : [];
}

/** A row's payload with every alert brought to the current shape, or the first reason one cannot be. */
export function readPayload(raw: unknown): { ok: true; payload: MessagePayload } | { ok: false; message: string } {
  const stored = (raw as { alerts?: unknown } | null)?.alerts;
  if (!Array.isArray(stored)) return { ok: false, message: "the stored message holds no list of alerts" };
  const alerts: Alert[] = [];
  for (const [i, item] of stored.entries()) {
    const read = readStoredAlert(item);
    if (!read.ok) return { ok: false, message: `alert ${i + 1} of ${stored.length}: ${read.message}` };
    alerts.push(read.alert);
  }
  return { ok: true, payload: { alerts } };
}

/** A row taken for delivery: nobody else takes it until it is settled or its lease runs out. */
export interface Claimed extends OutgoingMessage {
  channelId: string;
}

export interface NotificationInfo {
  id: number;
  channel: { id: string; name: string; platform: string };
  status: NotificationStatus;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  dedupe_key: string;
  /** Each alert the message carries, with its budget so readers can be shown only their budgets' alerts. */
  alerts: { id: string; kind: string; title: string; budget: { id: string; name: string } | null }[];
  created_at: string;
  delivered_at: string | null;
}

export type ResendResult = { ok: true; notification: NotificationInfo } | Failure<"not_found" | "conflict">;

const nowPlus = (ms: number) => sql`now() + ${Math.max(0, Math.round(ms))} * interval '1 millisecond'`;

/**
 * The outbox in `notifications`: alerts routed to channels and written in the caller's
 * transaction, then taken by delivery workers. Times are the database's clock throughout, so
 * several gateway processes agree on what is due.
 */
export class OutboxNotifier implements Notifier {
  private readonly listeners: (() => void)[] = [];

  constructor(
    private readonly database: Database,
    readonly policy: RetryPolicy,
  ) {}

  /** Hears every enqueue made in this process, so a worker can look for the new rows at once. */
  onEnqueue(listener: () => void): void {
    this.listeners.push(listener);
  }

  async enqueue(db: Writer, alerts: Alert[], opts: { channelIds?: string[] } = {}): Promise<void> {
    if (alerts.length === 0) return;
    const named = opts.channelIds;
    if (named?.length === 0) return;
    const subscribers = await db
      .select({ id: channels.id, scopes: channels.scopes, kinds: channels.kinds })
      .from(channels)
      .where(and(isNull(channels.disabledAt), named ? inArray(channels.id, named) : undefined));
    const budgetIds = [...new Set(alerts.flatMap((a) => (a.budget ? [a.budget.id] : [])))];
    const mutes = await activeMutes(db, budgetIds, new Date());
    const routed = route(
      alerts,
      subscribers.map((s) => ({ id: s.id, scopes: s.scopes, kinds: s.kinds as SubscriptionKind[] })),
      mutes,
      named,
    );
    if (routed.size === 0) return;
    const rows = [...routed].map(([channelId, group]) => ({
      channelId,
      dedupeKey: dedupeKey(channelId, group),
      payload: { alerts: group.map(storedAlert), follows: follows(group) } satisfies StoredPayload,
    }));
    await db.insert(notifications).values(rows).onConflictDoNothing({ target: notifications.dedupeKey });
    for (const l of this.listeners) l();
  }

  /**
   * Takes up to `limit` due rows of channels on these platforms, at most one per channel. A row
   * waits behind an earlier pending row of its channel that is due, on its first try, or a message
   * it updates; a row that failed and waits for its retry holds nothing back (it lost its place),
   * nor does a dead one. So a channel's healthy messages go out in order, one at a time, and one
   * failing message does not stop the rest. A taken row counts an attempt and is hidden for
   * `leaseMs`; a worker that dies holding it only delays it by that much.
   * A row this gateway cannot read (an alert version it does not know) goes dead at once with the
   * reason as its error, where operators see it and can resend it after an upgrade, and the
   * channel's next message is not held up behind it.
   */
  async claim(platforms: readonly string[], limit: number, leaseMs: number): Promise<Claimed[]> {
    if (platforms.length === 0 || limit <= 0) return [];
    const { db } = this.database;
    // Raw SQL with aliases, as drizzle cannot alias the table here. `later` follows `earlier` when it
    // is an update of it. A channel's head is its lowest pending row that is next in line (due or on
    // its first try) and not waiting for an earlier pending message it updates: every later row
    // waits behind the head, and no row before it holds anything back (it failed and waits for its
    // retry, or waits for a message it updates). So the head is the channel's one candidate, taken
    // when due. Each channel's head is found by walking its pending rows in id order through
    // `notifications_due` and stopping at the first that qualifies: the rows skipped are only the
    // waiting ones, so a backlog of thousands costs one row per channel, not a scan per row.
    const follows = (later: SQL, earlier: string) =>
      sql`exists (select 1 from jsonb_array_elements(coalesce(${later}->'follows', '[]'::jsonb)) f where ${sql.raw(earlier)}.payload->'alerts' @> jsonb_build_array(f.value))`;
    const updating = sql`exists (select 1 from ${notifications} u where u.channel_id = h.channel_id and u.status = 'pending' and u.id < h.id and ${follows(sql.raw("h.payload"), "u")})`;
    const heads = sql`select head.id from ${channels} c cross join lateral (
        select h.id from ${notifications} h
        where h.channel_id = c.id and h.status = 'pending' and (h.last_error is null or h.next_attempt_at <= now()) and not ${updating}
        order by h.id limit 1
      ) head
      where c.disabled_at is null and c.platform in (${sql.join(
        platforms.map((p) => sql`${p}`),
        sql`, `,
      )})`;
    const due = db
      .select({ id: notifications.id })
      .from(notifications)
      .where(and(sql`${notifications.id} in (${heads})`, eq(notifications.status, "pending"), lte(notifications.nextAttemptAt, sql`now()`)))
      .orderBy(asc(notifications.id))
      .limit(limit)
      .for("update", { skipLocked: true });
    const rows = await db
      .update(notifications)
      .set({ attempts: sql`${notifications.attempts} + 1`, nextAttemptAt: nowPlus(leaseMs) })
      .where(inArray(notifications.id, due))
      .returning();
    const claimed: Claimed[] = [];
    for (const r of rows.sort((a, b) => a.id - b.id)) {
      const read = readPayload(r.payload);
      if (read.ok) claimed.push({ id: r.id, channelId: r.channelId, dedupeKey: r.dedupeKey, attempt: r.attempts, payload: read.payload, createdAt: r.createdAt });
      else await this.settleUnreadable(r.id, r.attempts, read.message);
    }
    return claimed;
  }

  private async settleUnreadable(id: number, attempt: number, message: string): Promise<void> {
    await this.database.db
      .update(notifications)
      .set({ status: "dead", lastError: `unreadable: ${message}` })
      .where(and(eq(notifications.id, id), eq(notifications.attempts, attempt), eq(notifications.status, "pending")));
    // The channel's next message is due now that this one is out of the way.
    for (const l of this.listeners) l();
  }

  /**
   * Records how a try went. Only the holder of the claim settles it (the attempt count must still
   * match), so a worker whose lease ran out cannot overwrite a later try's result.
   */
  async settle(claimed: Claimed, outcome: DeliveryOutcome, random?: () => number): Promise<NotificationStatus> {
    const mine = and(eq(notifications.id, claimed.id), eq(notifications.attempts, claimed.attempt), eq(notifications.status, "pending"));
    const update = (set: PgUpdateSetSource<typeof notifications>) => this.database.db.update(notifications).set(set).where(mine);
    if (outcome.kind === "delivered") {
      await update({ status: "delivered", deliveredAt: sql`now()`, lastError: null, externalRef: outcome.externalRef ?? null });
      return "delivered";
    }
    if (outcome.kind === "gone") {
      // Due again at once, for when the channel is enabled again.
      await update({ nextAttemptAt: sql`now()`, lastError: outcome.message });
      return "pending";
    }
    if (outcome.kind === "refused") {
      // Trying again would be refused again: dead now, with why, to be resent once it is fixed.
      await update({ status: "dead", lastError: outcome.message });
      return "dead";
    }
    const next = afterFailure(claimed.attempt, outcome.retryAfterMs, this.policy, random);
    if (next.dead) {
      await update({ status: "dead", lastError: outcome.message });
      return "dead";
    }
    await update({ nextAttemptAt: nowPlus(next.delayMs), lastError: outcome.message });
    return "pending";
  }

  /**
   * The platform reference of the newest message delivered to the row's channel that the row's one
   * alert is a later state of (src/alerts/threads.ts), for deliverers that update messages in place.
   * Messages of several alerts are never replaced by, nor replace, one alert.
   */
  async replaced(claimed: Claimed): Promise<Record<string, unknown> | undefined> {
    const [alert, ...others] = claimed.payload.alerts;
    const patterns = alert && others.length === 0 ? earlierStates(alert) : [];
    if (patterns.length === 0) return undefined;
    const alerts = sql`${notifications.payload}->'alerts'`;
    const [row] = await this.database.db
      .select({ ref: notifications.externalRef })
      .from(notifications)
      .where(
        and(
          eq(notifications.channelId, claimed.channelId),
          eq(notifications.status, "delivered"),
          isNotNull(notifications.externalRef),
          lt(notifications.id, claimed.id),
          sql`jsonb_array_length(${alerts}) = 1`,
          or(...patterns.map((p) => sql`${alerts} @> ${JSON.stringify([p])}::jsonb`)),
        ),
      )
      .orderBy(desc(notifications.id))
      .limit(1);
    return row?.ref ?? undefined;
  }

  async list(filter: { status?: NotificationStatus; limit: number }): Promise<NotificationInfo[]> {
    const rows = await this.database.db
      .select({ n: notifications, channel: { id: channels.id, name: channels.name, platform: channels.platform } })
      .from(notifications)
      .innerJoin(channels, eq(channels.id, notifications.channelId))
      .where(filter.status ? eq(notifications.status, filter.status) : undefined)
      .orderBy(desc(notifications.id))
      .limit(filter.limit);
    return rows.map(({ n, channel }) => notificationInfo(n, channel));
  }

  /** Gives a dead message its tries back; it goes out before the channel's later messages. */
  async resend(id: number): Promise<ResendResult> {
    const [row] = await this.database.db
      .update(notifications)
      .set({ status: "pending", attempts: 0, nextAttemptAt: sql`now()` })
      .where(and(eq(notifications.id, id), eq(notifications.status, "dead")))
      .returning({ id: notifications.id });
    const [found] = await this.database.db
      .select({ n: notifications, channel: { id: channels.id, name: channels.name, platform: channels.platform } })
      .from(notifications)
      .innerJoin(channels, eq(channels.id, notifications.channelId))
      .where(eq(notifications.id, id));
    if (!found) return { ok: false, kind: "not_found", message: `no notification with id ${id}` };
    if (!row) return { ok: false, kind: "conflict", message: `notification ${id} is ${found.n.status}; only dead notifications are resent` };
    for (const l of this.listeners) l();
    return { ok: true, notification: notificationInfo(found.n, found.channel) };
  }
}

function notificationInfo(n: typeof notifications.$inferSelect, channel: NotificationInfo["channel"]): NotificationInfo {
  const read = readPayload(n.payload);
  return {
    id: n.id,
    channel,
    status: n.status,
    attempts: n.attempts,
    next_attempt_at: n.status === "pending" ? n.nextAttemptAt.toISOString() : null,
    last_error: n.lastError,
    dedupe_key: n.dedupeKey,
    // An unreadable row lists no alerts; why it cannot be read is its last_error once a worker has tried it.
    alerts: read.ok ? read.payload.alerts.map((a) => ({ id: a.id, kind: a.kind, title: a.title, budget: a.budget && { id: a.budget.id, name: a.budget.name } })) : [],
    created_at: n.createdAt.toISOString(),
    delivered_at: n.deliveredAt?.toISOString() ?? null,
  };
}
