import { randomUUID } from "node:crypto";
import { and, asc, eq, sql } from "drizzle-orm";
import { z } from "zod";
import { audit } from "../audit/log.ts";
import { BudgetInput, Scope } from "../budgets/budget.ts";
import { lockKey } from "../db/advisory-lock.ts";
import type { Database } from "../db/connection.ts";
import { channels } from "../db/schema.ts";
import type { Failure } from "../errors.ts";
import type { DeliveryTarget } from "../integration.ts";
import { labelText } from "../keys/api-keys.ts";
import type { SecretBox } from "../keys/secret-box.ts";
import { newWebhookSecret } from "../signing/standard-webhooks.ts";
import { SUBSCRIPTION_KINDS, type SubscriptionKind } from "./alert.ts";

const Kinds = z
  .array(z.enum(SUBSCRIPTION_KINDS, { error: `one of ${SUBSCRIPTION_KINDS.join(", ")}` }))
  .min(1, "at least one of alerts, approvals, daily, weekly")
  .transform((kinds) => [...new Set(kinds)]);
const Scopes = z.array(Scope).max(50, "at most 50 scopes");

/** What a channel wants: alerts of budgets within any of `scopes` (none = every scope), of these kinds. */
export const Subscriptions = z.strictObject({ scopes: Scopes.default([]), kinds: Kinds.default(["alerts"]) });

/** A Standard Webhooks secret: `whsec_` and 24 to 64 random bytes in base64. */
export const WebhookSecret = z.string().refine((s) => {
  const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(s);
  const bytes = match ? Buffer.from(match[1]!, "base64").length : 0;
  return bytes >= 24 && bytes <= 64;
}, "whsec_ followed by 24 to 64 bytes in base64, as Standard Webhooks secrets are");

const WebhookUrl = z.url({ protocol: /^https?$/, error: "an http:// or https:// URL" });
const Timezone = BudgetInput.shape.timezone;
/** The same check without the default, so a patch that leaves the zone out leaves it alone. */
const TimezoneChange = z.string().refine((tz) => Timezone.safeParse(tz).success, "an IANA time zone such as UTC or Europe/Berlin");

/** `POST /api/channels`: chat channels are added from the chat itself, so the API adds webhooks. */
export const CreateChannelRequest = z.strictObject({
  platform: z.literal("webhook", { error: "webhook (chat channels are added from the chat itself)" }),
  name: labelText,
  url: WebhookUrl,
  secret: WebhookSecret.optional(),
  subscriptions: Subscriptions.default({ scopes: [], kinds: ["alerts"] }),
  timezone: Timezone,
});
export type CreateChannelRequest = z.infer<typeof CreateChannelRequest>;

/** `PATCH /api/channels/:id`: any of these; `enabled: true` brings back a channel a platform turned away. */
export const UpdateChannelRequest = z
  .strictObject({
    name: labelText,
    url: WebhookUrl,
    secret: WebhookSecret,
    subscriptions: z.strictObject({ scopes: Scopes, kinds: Kinds }).partial(),
    timezone: TimezoneChange,
    enabled: z.boolean(),
  })
  .partial()
  .refine((patch) => Object.keys(patch).length > 0, "give at least one of name, url, secret, subscriptions, timezone, enabled");
export type UpdateChannelRequest = z.infer<typeof UpdateChannelRequest>;

/** What any door may create: a platform address and a subscription. */
export interface ChannelSpec {
  platform: string;
  name: string;
  address: Record<string, unknown>;
  /** The part of the address that names the conversation, when the rest may change (a service URL the platform may move): the stored address follows it. */
  key?: Record<string, unknown>;
  secret: string | null;
  scopes: Scope[];
  /**
   * An admin's `--scope all`: the conversation gets every scope's messages and everyone in it reads
   * all spend; on an existing channel, empty `scopes` open it rather than keep the ones it has.
   */
  everything?: boolean;
  kinds: SubscriptionKind[];
  timezone: string;
}

/** A channel as the API shows it: never its secret. */
export interface ChannelInfo {
  id: string;
  platform: string;
  name: string;
  address: Record<string, unknown>;
  subscriptions: { scopes: Scope[]; kinds: SubscriptionKind[] };
  /** Opened to all spend by an admin (`--scope all`): everyone in the conversation reads everything (commands/read-scope.ts). */
  reads_all: boolean;
  timezone: string;
  enabled: boolean;
  disabled_at: string | null;
  disabled_reason: string | null;
  created_at: string;
}

type ChannelRow = typeof channels.$inferSelect;

export function channelInfo(row: ChannelRow): ChannelInfo {
  return {
    id: row.id,
    platform: row.platform,
    name: row.name,
    address: row.address,
    subscriptions: { scopes: row.scopes as Scope[], kinds: row.kinds as SubscriptionKind[] },
    reads_all: row.readsAll,
    timezone: row.timezone,
    enabled: row.disabledAt === null,
    disabled_at: row.disabledAt?.toISOString() ?? null,
    disabled_reason: row.disabledReason,
    created_at: row.createdAt.toISOString(),
  };
}

export type ChannelChange = { ok: true; channel: ChannelInfo } | Failure<"not_found" | "invalid">;

/**
 * Channels in Postgres. Secrets (a webhook's signing secret, later a bot token) are sealed with the
 * master key and only opened to deliver; every change is audited in its own transaction.
 */
export class ChannelStore {
  constructor(
    private readonly database: Database,
    private readonly box: SecretBox,
  ) {}

  async create(spec: ChannelSpec, actor: string): Promise<ChannelInfo> {
    return this.database.db.transaction(async (tx) => {
      const [row] = await tx
        .insert(channels)
        .values({
          id: randomUUID(),
          platform: spec.platform,
          name: spec.name,
          address: spec.address,
          secretEncrypted: spec.secret === null ? null : this.box.seal(spec.secret),
          scopes: spec.scopes,
          kinds: spec.kinds,
          timezone: spec.timezone,
        })
        .returning();
      const created = channelInfo(row!);
      await audit(tx, { actor, action: "create", entity: "channel", entityId: created.id, after: created });
      return created;
    });
  }

  /** A webhook channel from the API; its secret is generated when not given, and shown only in this answer. */
  async createWebhook(request: CreateChannelRequest, actor: string): Promise<{ channel: ChannelInfo; secret: string }> {
    const secret = request.secret ?? newWebhookSecret();
    const channel = await this.create(
      {
        platform: "webhook",
        name: request.name,
        address: { url: request.url },
        secret,
        scopes: request.subscriptions.scopes,
        kinds: request.subscriptions.kinds,
        timezone: request.timezone,
      },
      actor,
    );
    return { channel, secret };
  }

  async list(): Promise<ChannelInfo[]> {
    return (await this.database.db.select().from(channels).orderBy(asc(channels.createdAt), asc(channels.id))).map(channelInfo);
  }

  async get(id: string): Promise<ChannelInfo | undefined> {
    const [row] = await this.database.db.select().from(channels).where(eq(channels.id, id));
    return row && channelInfo(row);
  }

  /** The channel of a chat conversation, by the part of its platform address that names it (jsonb containment: key order does not matter). */
  async findByAddress(platform: string, key: Record<string, unknown>): Promise<ChannelInfo | undefined> {
    const [row] = await this.database.db
      .select()
      .from(channels)
      .where(and(eq(channels.platform, platform), sql`${channels.address} @> ${JSON.stringify(key)}::jsonb`))
      .orderBy(asc(channels.createdAt))
      .limit(1);
    return row && channelInfo(row);
  }

  /**
   * Subscribes a chat conversation, from the chat: its channel is created on the first subscribe and
   * widened by later ones (kinds and scopes added; no scope keeps the ones it has, `everything`
   * opens it to all scopes), and enabled
   * again if a platform had turned it away. Serialised per address, so a double click or a
   * platform's retry never makes two channels of one conversation.
   */
  async subscribe(spec: ChannelSpec, actor: string): Promise<ChannelInfo> {
    const key = JSON.stringify(spec.key ?? spec.address);
    return this.database.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${lockKey(`channel ${spec.platform} ${key}`)}::bigint)`);
      const [row] = await tx
        .select()
        .from(channels)
        .where(and(eq(channels.platform, spec.platform), sql`${channels.address} @> ${key}::jsonb`))
        .orderBy(asc(channels.createdAt))
        .limit(1)
        .for("update");
      if (!row) {
        const [created] = await tx
          .insert(channels)
          .values({
            id: randomUUID(),
            platform: spec.platform,
            name: spec.name,
            address: spec.address,
            secretEncrypted: null,
            scopes: spec.scopes,
            readsAll: spec.everything === true,
            kinds: spec.kinds,
            timezone: spec.timezone,
          })
          .returning();
        const info = channelInfo(created!);
        await audit(tx, { actor, action: "create", entity: "channel", entityId: info.id, after: info });
        return info;
      }
      const before = channelInfo(row);
      const known = new Set(before.subscriptions.scopes.map((s) => JSON.stringify(s)));
      const scopes = spec.everything ? [] : [...before.subscriptions.scopes, ...spec.scopes.filter((s) => !known.has(JSON.stringify(s)))];
      const kinds = [...new Set([...before.subscriptions.kinds, ...spec.kinds])];
      // A scope narrows what it reads as well as what it gets; only `everything` opens it.
      const readsAll = spec.everything === true || (scopes.length === 0 && before.reads_all);
      const [updated] = await tx
        .update(channels)
        .set({ address: spec.address, scopes, readsAll, kinds, disabledAt: null, disabledReason: null })
        .where(eq(channels.id, row.id))
        .returning();
      const after = channelInfo(updated!);
      await audit(tx, { actor, action: "update", entity: "channel", entityId: after.id, before, after });
      return after;
    });
  }

  /** A conversation now reached at another address (the platform moved it to another service URL): its channel follows, audited. */
  async readdress(id: string, address: Record<string, unknown>, actor: string): Promise<void> {
    await this.database.db.transaction(async (tx) => {
      const [row] = await tx.select().from(channels).where(eq(channels.id, id)).for("update");
      if (!row || JSON.stringify(row.address) === JSON.stringify(address)) return;
      const [updated] = await tx.update(channels).set({ address }).where(eq(channels.id, id)).returning();
      await audit(tx, { actor, action: "update", entity: "channel", entityId: id, before: channelInfo(row), after: channelInfo(updated!) });
    });
  }

  async update(id: string, patch: UpdateChannelRequest, actor: string): Promise<ChannelChange> {
    return this.database.db.transaction(async (tx): Promise<ChannelChange> => {
      const [row] = await tx.select().from(channels).where(eq(channels.id, id)).for("update");
      if (!row) return { ok: false, kind: "not_found", message: `no channel with id ${id}` };
      if (row.platform !== "webhook" && (patch.url !== undefined || patch.secret !== undefined))
        return { ok: false, kind: "invalid", message: `url and secret belong to webhook channels; this is a ${row.platform} channel` };
      const before = channelInfo(row);
      const [updated] = await tx
        .update(channels)
        .set({
          name: patch.name,
          address: patch.url === undefined ? undefined : { ...row.address, url: patch.url },
          secretEncrypted: patch.secret === undefined ? undefined : this.box.seal(patch.secret),
          scopes: patch.subscriptions?.scopes,
          kinds: patch.subscriptions?.kinds,
          timezone: patch.timezone,
          ...(patch.enabled === undefined ? {} : patch.enabled ? { disabledAt: null, disabledReason: null } : { disabledAt: new Date(), disabledReason: `disabled by ${actor}` }),
        })
        .where(eq(channels.id, id))
        .returning();
      const after = channelInfo(updated!);
      await audit(tx, { actor, action: "update", entity: "channel", entityId: id, before, after: patch.secret === undefined ? after : { ...after, secret_replaced: true } });
      return { ok: true, channel: after };
    });
  }

  /** Removes the channel with its mutes and outbox rows. */
  async remove(id: string, actor: string): Promise<ChannelChange> {
    return this.database.db.transaction(async (tx): Promise<ChannelChange> => {
      const [row] = await tx.delete(channels).where(eq(channels.id, id)).returning();
      if (!row) return { ok: false, kind: "not_found", message: `no channel with id ${id}` };
      const before = channelInfo(row);
      await audit(tx, { actor, action: "delete", entity: "channel", entityId: id, before });
      return { ok: true, channel: before };
    });
  }

  /** Stops deliveries to a channel the platform turned away; its pending messages wait, visible, until it is enabled again. */
  async disable(id: string, reason: string, actor: string): Promise<void> {
    await this.database.db.transaction(async (tx) => {
      const [row] = await tx.select().from(channels).where(eq(channels.id, id)).for("update");
      if (!row || row.disabledAt !== null) return;
      const [updated] = await tx.update(channels).set({ disabledAt: new Date(), disabledReason: reason }).where(eq(channels.id, id)).returning();
      await audit(tx, { actor, action: "disable", entity: "channel", entityId: id, before: channelInfo(row), after: channelInfo(updated!) });
    });
  }

  /** The channel with its secret opened, for a deliverer; undefined once the channel is gone. */
  async target(id: string): Promise<DeliveryTarget | undefined> {
    const [row] = await this.database.db.select().from(channels).where(eq(channels.id, id));
    if (!row) return undefined;
    return {
      id: row.id,
      platform: row.platform,
      name: row.name,
      address: row.address,
      secret: row.secretEncrypted === null ? null : this.box.open(row.secretEncrypted),
      timezone: row.timezone,
    };
  }
}
