import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  index,
  integer,
  jsonb,
  numeric,
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
  },
  (t) => [primaryKey({ columns: [t.source, t.id] }), index("usage_events_ts_idx").on(t.ts)],
);

/**
 * Sums of usage_events, kept in step with them in the same statement, at three grains:
 * - `hour`: per UTC hour and attribution without the user;
 * - `day`: the same per UTC day, so a month is ~30 buckets rather than ~720;
 * - `user-day`: per UTC day including the user, whose many values would swell the other grains.
 * Absent attribution is '' rather than NULL so the unique key groups it.
 */
export const ROLLUP_GRAINS = ["hour", "day", "user-day"] as const;
export type RollupGrain = (typeof ROLLUP_GRAINS)[number];

export const usageRollups = pgTable(
  "usage_rollups",
  {
    grain: text("grain").$type<RollupGrain>().notNull(),
    bucket: timestamp("bucket", { withTimezone: true }).notNull(),
    team: text("team").notNull().default(""),
    project: text("project").notNull().default(""),
    feature: text("feature").notNull().default(""),
    user: text("user").notNull().default(""),
    provider: text("provider").notNull().default(""),
    model: text("model").notNull().default(""),
    apiKeyId: text("api_key_id").notNull().default(""),
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
  },
  (t) => [
    uniqueIndex("usage_rollups_key").on(t.grain, t.bucket, t.team, t.project, t.feature, t.user, t.provider, t.model, t.apiKeyId),
  ],
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
