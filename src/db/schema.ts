import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  index,
  integer,
  jsonb,
  numeric,
  pgSequence,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

const tokenCount = (name: string) => bigint(name, { mode: "number" }).notNull().default(0);

/** One row per LLM call. Append-only; prompts and responses are never stored. */
export const usageEvents = pgTable(
  "usage_events",
  {
    source: text("source").notNull(),
    id: text("id").notNull(),
    ts: timestamp("ts", { withTimezone: true }).notNull(),
    provider: text("provider").notNull().default(""),
    model: text("model").notNull().default(""),
    inputTokens: tokenCount("input_tokens"),
    cachedInputTokens: tokenCount("cached_input_tokens"),
    cacheWriteTokens: tokenCount("cache_write_tokens"),
    cacheWrite1hTokens: tokenCount("cache_write_1h_tokens"),
    outputTokens: tokenCount("output_tokens"),
    reasoningTokens: tokenCount("reasoning_tokens"),
    serviceTier: text("service_tier").notNull().default("standard"),
    /** pico-USD (1e-12 USD): every published per-token price is a whole number of them. */
    cost: bigint("cost", { mode: "bigint" }).notNull(),
    priced: boolean("priced").notNull(),
    /** The token counts are the gateway's estimate, not the provider's report (a stream cut before its usage). */
    estimated: boolean("estimated").notNull().default(false),
    reportedCost: bigint("reported_cost", { mode: "bigint" }),
    latencyMs: integer("latency_ms"),
    status: text("status").notNull().default("ok"),
    team: text("team"),
    project: text("project"),
    feature: text("feature"),
    user: text("user"),
    session: text("session"),
    apiKeyId: text("api_key_id"),
    tags: jsonb("tags").$type<Record<string, string>>().notNull().default({}),
    requestId: text("request_id"),
    receivedAt: timestamp("received_at", { withTimezone: true }).notNull().defaultNow(),
    /**
     * The fold batch the recorder wrote the event in: while it is in usageRollupQueue the event is
     * in no rollup yet (src/ledger/fold.ts). NULL for events from before folds existed.
     */
    foldBatch: bigint("fold_batch", { mode: "number" }),
  },
  (t) => [primaryKey({ columns: [t.source, t.id] }), index("usage_events_ts_idx").on(t.ts), index("usage_events_fold_batch").on(t.foldBatch).where(sql`fold_batch is not null`)],
);

/** Numbers the recorder's writes for folds (usage_events.fold_batch). */
export const usageFoldBatch = pgSequence("usage_fold_batch");

/**
 * Fold batches written but not yet added to the rollups (usageRollups, usageUserDays, usageUserMonths): the
 * recorder queues one per write, in the write's transaction; a fold deletes the ones it adds in
 * the same statement as its upserts (migrations 0015 and 0017).
 */
export const usageRollupQueue = pgTable("usage_rollup_queue", {
  batch: bigint("batch", { mode: "number" }).primaryKey(),
});

/** The sum columns every rollup table carries (new builders per table, as drizzle binds each to one table). */
const rollupSums = () => ({
  requests: bigint("requests", { mode: "number" }).notNull().default(0),
  errors: bigint("errors", { mode: "number" }).notNull().default(0),
  unpriced: bigint("unpriced", { mode: "number" }).notNull().default(0),
  inputTokens: numeric("input_tokens").notNull().default("0"),
  cachedInputTokens: numeric("cached_input_tokens").notNull().default("0"),
  cacheWriteTokens: numeric("cache_write_tokens").notNull().default("0"),
  outputTokens: numeric("output_tokens").notNull().default("0"),
  reasoningTokens: numeric("reasoning_tokens").notNull().default("0"),
  /** pico-USD, exact. */
  cost: numeric("cost").notNull().default("0"),
});

/** The attribution columns of the rollup tables keyed by all of it (an absent one is ''). */
const rollupAttribution = () => ({
  team: text("team").notNull().default(""),
  project: text("project").notNull().default(""),
  feature: text("feature").notNull().default(""),
  user: text("user").notNull().default(""),
  provider: text("provider").notNull().default(""),
  model: text("model").notNull().default(""),
  apiKeyId: text("api_key_id").notNull().default(""),
});

/**
 * Sums of usage_events at four grains (two here, kept in step with them in the write's transaction):
 * - `hour`: per UTC hour and attribution without the user;
 * - `day`: the same per UTC day, so a month is ~30 buckets rather than ~720;
 * - `user-day`: per UTC day including the user, whose many values would swell the other grains;
 *   kept in its own table, usageUserDays, not here;
 * - `user-month`: per UTC month and user only, so a user's month, and a month by user, is one row
 *   per user; kept in its own table, usageUserMonths, not here.
 * Every grain is folded in after the write (usageRollupQueue); its readers add what is not folded
 * yet from usage_events.
 * Absent attribution is '' rather than NULL so the unique key groups it.
 * usage_rollups' one index is that key (which leads with grain and bucket, as every read of it
 * asks), holding no sum, and half of each page is free (fillfactor 50, migration 0016), so folds'
 * updates of the hour and day rows are HOT, as the user tables' are.
 */
export const ROLLUP_GRAINS = ["hour", "day", "user-day", "user-month"] as const;
export type RollupGrain = (typeof ROLLUP_GRAINS)[number];

export const usageRollups = pgTable(
  "usage_rollups",
  {
    grain: text("grain").$type<RollupGrain>().notNull(),
    bucket: timestamp("bucket", { withTimezone: true }).notNull(),
    ...rollupAttribution(),
    ...rollupSums(),
  },
  (t) => [
    uniqueIndex("usage_rollups_key").on(t.grain, t.bucket, t.team, t.project, t.feature, t.user, t.provider, t.model, t.apiKeyId),
  ],
);

/**
 * The `user-day` grain: usage_events' sums per UTC day and full attribution including the user
 * (absent ones ''), brought up to date by folds (src/ledger/fold.ts), not by each write. The busiest
 * grain (about one row per user in every batch the recorder writes), so, like usageUserMonths, a
 * table of its own whose indexes hold no sum, with half of each page free (fillfactor 50, migration
 * 0014): its updates are HOT.
 */
export const usageUserDays = pgTable(
  "usage_user_days",
  {
    bucket: timestamp("bucket", { withTimezone: true }).notNull(),
    ...rollupAttribution(),
    ...rollupSums(),
  },
  (t) => [
    primaryKey({ name: "usage_user_days_pk", columns: [t.bucket, t.user, t.team, t.project, t.feature, t.provider, t.model, t.apiKeyId] }),
    index("usage_user_days_user").on(t.user, t.bucket),
  ],
);

/**
 * The `user-month` grain: usage_events' sums per UTC month and user (absent user ''), brought up
 * to date by folds, as usageUserDays is. A table of its own with only its
 * primary key and free room in each page (fillfactor 75 in migration 0013, 50 since 0014): every batch the
 * recorder writes updates about one row per user, and with no index over the sums and room on the
 * page those updates are HOT (no new index entries), where in usage_rollups each wrote new
 * entries in the covering indexes (dropped in 0016).
 */
export const usageUserMonths = pgTable(
  "usage_user_months",
  {
    bucket: timestamp("bucket", { withTimezone: true }).notNull(),
    user: text("user").notNull().default(""),
    ...rollupSums(),
  },
  (t) => [primaryKey({ columns: [t.bucket, t.user] })],
);

/** Keys handed to clients: `ingest` keys post usage, `virtual` keys call providers through the proxy. */
export const apiKeys = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    kind: text("kind").notNull(),
    name: text("name").notNull(),
    /** The first characters of the key, shown in listings so people can tell keys apart. */
    prefix: text("prefix").notNull(),
    /** SHA-256 of the key; the key itself is shown once and never stored. */
    hash: text("hash").notNull(),
    team: text("team"),
    project: text("project"),
    feature: text("feature"),
    user: text("user"),
    /** Proxy routes a virtual key may call; null allows every route. */
    allowedProviders: text("allowed_providers").array(),
    /** Model patterns (`gpt-4o`, `claude-*`) a virtual key may ask for; null allows every model. */
    allowedModels: text("allowed_models").array(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [uniqueIndex("api_keys_hash").on(t.hash)],
);

/** Upstream API keys stored through the admin API, sealed with the master key; they win over the environment's. */
export const providerKeys = pgTable("provider_keys", {
  provider: text("provider").primaryKey(),
  keyEncrypted: text("key_encrypted").notNull(),
  /** The last characters of the key, so people can tell which one is in use. */
  hint: text("hint").notNull(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

/** Senders that sign their usage webhooks (Standard Webhooks) instead of using an ingest key. */
export const ingestSources = pgTable("ingest_sources", {
  id: text("id").primaryKey(),
  name: text("name").notNull().unique(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

/** Several active secrets per source allow rotation; each is encrypted with the master key. */
export const ingestSourceSecrets = pgTable(
  "ingest_source_secrets",
  {
    id: text("id").primaryKey(),
    sourceId: text("source_id")
      .notNull()
      .references(() => ingestSources.id, { onDelete: "cascade" }),
    secretEncrypted: text("secret_encrypted").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [index("ingest_source_secrets_source").on(t.sourceId).where(sql`revoked_at is null`)],
);

/** A scope: a filter over the attribution dimensions (`{}` is all spend). */
export type ScopeColumn = Partial<Record<"team" | "project" | "feature" | "user" | "model" | "provider" | "key", string>>;

/** Spending limits over a scope and a calendar period in the budget's time zone. */
export const budgets = pgTable("budgets", {
  id: text("id").primaryKey(),
  name: text("name").notNull().unique(),
  scope: jsonb("scope").$type<ScopeColumn>().notNull().default({}),
  /** pico-USD, exact; numeric because a yearly company budget can outgrow bigint pico-dollars. */
  amount: numeric("amount").notNull(),
  period: text("period").notNull(),
  timezone: text("timezone").notNull().default("UTC"),
  thresholds: integer("thresholds").array().notNull(),
  mode: text("mode").notNull().default("soft"),
  paused: boolean("paused").notNull().default(false),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

/** The "at most once" of alerts: a second evaluation finding the same crossing inserts nothing. */
export const alertFirings = pgTable(
  "alert_firings",
  {
    id: text("id").primaryKey(),
    budgetId: text("budget_id")
      .notNull()
      .references(() => budgets.id, { onDelete: "cascade" }),
    /** The budget's period; for an anomaly, the hour found anomalous. */
    periodStart: timestamp("period_start", { withTimezone: true }).notNull(),
    kind: text("kind").notNull(),
    /** The percent crossed for threshold alerts; 0 for kinds without one. */
    threshold: integer("threshold").notNull().default(0),
    /** pico-USD spent in the period when it fired. */
    spend: numeric("spend").notNull(),
    amount: numeric("amount").notNull(),
    firedAt: timestamp("fired_at", { withTimezone: true }).notNull().defaultNow(),
  },
  // The amount is part of the key: after a raise from $500 to $800, 80 % of $800 is a new line to
  // cross, while 80 % of $500 still never fires twice.
  (t) => [
    uniqueIndex("alert_firings_once").on(t.budgetId, t.periodStart, t.kind, t.threshold, t.amount),
    index("alert_firings_fired_at").on(t.firedAt),
  ],
);

/** Where messages go, and which of them it wants. */
export const channels = pgTable("channels", {
  id: text("id").primaryKey(),
  platform: text("platform").notNull(),
  name: text("name").notNull(),
  /** Platform address, as the platform's deliverer reads it: a webhook URL, a chat's channel or conversation reference. */
  address: jsonb("address").$type<Record<string, unknown>>().notNull(),
  /** Secrets of the address (a webhook's signing secret), sealed with the master key. */
  secretEncrypted: text("secret_encrypted"),
  /** Scopes whose alerts it receives (empty = every scope) and the kinds it wants. */
  scopes: jsonb("scopes").$type<ScopeColumn[]>().notNull().default([]),
  kinds: text("kinds").array().notNull(),
  timezone: text("timezone").notNull().default("UTC"),
  /**
   * Opened to all spend by an admin (`--scope all`): everyone in the conversation reads everything.
   * A chat channel without it and without scopes reads as each asker may (commands/read-scope.ts).
   */
  readsAll: boolean("reads_all").notNull().default(false),
  disabledAt: timestamp("disabled_at", { withTimezone: true }),
  disabledReason: text("disabled_reason"),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

/** A budget silenced in one channel until a time. */
export const mutes = pgTable(
  "mutes",
  {
    channelId: text("channel_id")
      .notNull()
      .references(() => channels.id, { onDelete: "cascade" }),
    budgetId: text("budget_id")
      .notNull()
      .references(() => budgets.id, { onDelete: "cascade" }),
    until: timestamp("until", { withTimezone: true }).notNull(),
    mutedBy: text("muted_by").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.channelId, t.budgetId] })],
);

export const NOTIFICATION_STATUSES = ["pending", "delivered", "dead"] as const;

/** The outbox: one row per message to one channel, delivered in order, at most once per dedupe key. */
export const notifications = pgTable(
  "notifications",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    channelId: text("channel_id")
      .notNull()
      .references(() => channels.id, { onDelete: "cascade" }),
    dedupeKey: text("dedupe_key").notNull().unique(),
    /** Platform-neutral content (alerts, replies); each integration renders it when delivering. */
    payload: jsonb("payload").$type<Record<string, unknown>>().notNull(),
    status: text("status").$type<(typeof NOTIFICATION_STATUSES)[number]>().notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }).notNull().defaultNow(),
    lastError: text("last_error"),
    /** What the platform calls the delivered message (its message id or timestamp), for later updates. */
    externalRef: jsonb("external_ref").$type<Record<string, unknown>>(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    deliveredAt: timestamp("delivered_at", { withTimezone: true }),
  },
  (t) => [index("notifications_due").on(t.channelId, t.id).where(sql`status = 'pending'`)],
);

export const ROLES = ["viewer", "requester", "approver", "admin"] as const;

/** People on the chat platforms and what they may do. */
export const members = pgTable(
  "members",
  {
    platform: text("platform").notNull(),
    userId: text("user_id").notNull(),
    role: text("role").$type<(typeof ROLES)[number]>().notNull(),
    name: text("name"),
    /** The scopes a viewer may see on the dashboard; the other roles see all spend. */
    scopes: jsonb("scopes").$type<ScopeColumn[]>().notNull().default([]),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.platform, t.userId] })],
);

/** Budget-raise requests and their one decision. */
export const approvals = pgTable(
  "approvals",
  {
    id: text("id").primaryKey(),
    budgetId: text("budget_id")
      .notNull()
      .references(() => budgets.id, { onDelete: "cascade" }),
    /** pico-USD: the amount when asked and the amount asked for. */
    fromAmount: numeric("from_amount").notNull(),
    toAmount: numeric("to_amount").notNull(),
    reason: text("reason").notNull(),
    requestedBy: text("requested_by").notNull(),
    /** The requester's and the decider's names as the cards show them, fixed when they acted so every card of a request agrees. */
    requestedByName: text("requested_by_name"),
    /** Where the requester asked (platform, channel, user), to tell them the outcome there. */
    requestedVia: jsonb("requested_via").$type<Record<string, unknown>>(),
    status: text("status").notNull().default("pending"),
    decidedBy: text("decided_by"),
    decidedByName: text("decided_by_name"),
    decisionReason: text("decision_reason"),
    decidedAt: timestamp("decided_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  },
  (t) => [index("approvals_pending").on(t.expiresAt).where(sql`status = 'pending'`)],
);

/** Every change to budgets, keys, channels, members and approvals: who, when, before, after. */
export const auditLog = pgTable(
  "audit_log",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    at: timestamp("at", { withTimezone: true }).notNull().defaultNow(),
    actor: text("actor").notNull(),
    action: text("action").notNull(),
    entity: text("entity").notNull(),
    entityId: text("entity_id").notNull(),
    before: jsonb("before"),
    after: jsonb("after"),
  },
  (t) => [index("audit_log_entity").on(t.entity, t.entityId)],
);

/**
 * Shares of a hard budget's remaining amount handed to one gateway process for one period: the
 * process spends from its lease without asking Postgres, so the sum of leases bounds the overshoot
 * across processes.
 */
export const budgetLeases = pgTable(
  "budget_leases",
  {
    budgetId: text("budget_id")
      .notNull()
      .references(() => budgets.id, { onDelete: "cascade" }),
    periodStart: timestamp("period_start", { withTimezone: true }).notNull(),
    holder: text("holder").notNull(),
    /** pico-USD granted to the holder and not yet given back. */
    granted: numeric("granted").notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.budgetId, t.periodStart, t.holder] })],
);

/**
 * The latest tick each scheduled job ran for, across every gateway on the database: a process
 * whose clock is late finds its tick taken and skips it, however late it is.
 */
export const jobTicks = pgTable("job_ticks", {
  job: text("job").primaryKey(),
  lastTick: timestamp("last_tick", { withTimezone: true }).notNull(),
});

/**
 * Dashboard sign-ins, kept here so they can be revoked: the cookie carries a random id (signed),
 * the table only its SHA-256, so a copy of the table opens no session.
 */
export const webSessions = pgTable(
  "web_sessions",
  {
    idHash: text("id_hash").primaryKey(),
    /** `admin` (signed in with the admin token) or `oidc`. */
    kind: text("kind").$type<"admin" | "oidc">().notNull(),
    /** The member's user id for `oidc` (the verified email or subject); the name given for `admin`. */
    subject: text("subject").notNull(),
    name: text("name").notNull(),
    /** The CSRF token every form of this session carries. */
    csrf: text("csrf").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [index("web_sessions_expires").on(t.expiresAt)],
);
