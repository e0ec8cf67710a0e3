import { bigint, index, jsonb, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";
import { type ScopeColumn, budgets } from "../../src/db/schema.ts";

/*
 * Telegram's own tables, beside the gateway's (drizzle.config.ts reads both for migrations):
 * only this integration reads or writes them.
 */

/**
 * One-time codes that bind a Telegram chat to a scope (`tollgate telegram link`). Only the code's
 * SHA-256 is kept: whoever reads the table cannot link a chat with it.
 */
export const telegramLinks = pgTable(
  "telegram_links",
  {
    codeHash: text("code_hash").primaryKey(),
    scope: jsonb("scope").$type<ScopeColumn>().notNull(),
    kinds: text("kinds").array().notNull(),
    createdBy: text("created_by").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    /** Set once, when a chat used the code: a second use finds it taken. */
    usedAt: timestamp("used_at", { withTimezone: true }),
    usedByChat: bigint("used_by_chat", { mode: "number" }),
  },
  (t) => [index("telegram_links_expires_at").on(t.expiresAt)],
);

/**
 * Telegram updates already taken in, per bot: a webhook retry, a second gateway process or a
 * restart that polls an update again finds it here and leaves it alone. Kept two days, well past
 * Telegram's 24 hours of redelivery.
 */
export const telegramUpdates = pgTable(
  "telegram_updates",
  {
    botId: bigint("bot_id", { mode: "number" }).notNull(),
    updateId: bigint("update_id", { mode: "number" }).notNull(),
    receivedAt: timestamp("received_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.botId, t.updateId] }), index("telegram_updates_received_at").on(t.receivedAt)],
);

/** "Request raise" questions sent into a Telegram chat, waiting for their reply: one reply files one request. */
export const telegramPrompts = pgTable(
  "telegram_prompts",
  {
    chatId: bigint("chat_id", { mode: "number" }).notNull(),
    /** The question's message, which the reply answers. */
    messageId: bigint("message_id", { mode: "number" }).notNull(),
    budgetId: text("budget_id")
      .notNull()
      .references(() => budgets.id, { onDelete: "cascade" }),
    /** The Telegram user who pressed the button: only their reply files the request. */
    userId: text("user_id").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    answeredAt: timestamp("answered_at", { withTimezone: true }),
  },
  (t) => [primaryKey({ columns: [t.chatId, t.messageId] }), index("telegram_prompts_expires_at").on(t.expiresAt)],
);
