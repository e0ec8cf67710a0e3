import { and, eq, gt, isNull, lt, sql } from "drizzle-orm";
import type { Database } from "../../src/db/connection.ts";
import { telegramPrompts, telegramUpdates } from "./schema.ts";

/*
 * What the Telegram integration keeps in Postgres, so any gateway process can answer any update:
 * the updates already taken in, and raise questions awaiting their reply (link codes are kept by
 * link-codes.ts).
 * Every "once" here is a conditional update or a primary key, never a check followed by a write.
 */

/** How long a "Request raise" question waits for its reply. */
export const PROMPT_TTL_MS = 60 * 60_000;
/** Updates are remembered well past Telegram's 24 hours of redelivery. */
const UPDATE_MEMORY = "2 days";
/** Answered questions are kept a while for whoever wonders what happened. */
const SPENT_MEMORY = "7 days";

/** Telegram updates already taken in, by bot: the record is made before an update is acknowledged or processed. */
export class UpdateInbox {
  constructor(
    private readonly database: Pick<Database, "db">,
    private readonly botId: number,
  ) {}

  /** True the first time an update is seen; false for a retry or a second delivery. */
  async record(updateId: number): Promise<boolean> {
    const rows = await this.database.db
      .insert(telegramUpdates)
      .values({ botId: this.botId, updateId })
      .onConflictDoNothing()
      .returning({ updateId: telegramUpdates.updateId });
    return rows.length > 0;
  }
}

export type PromptTake = { ok: true; budgetId: string } | { ok: false; reason: "none" | "expired" | "answered" | "someone_else" };

/** "Request raise" questions: the reply to one files one request, from the person who pressed the button. */
export class RaisePrompts {
  constructor(private readonly database: Pick<Database, "db">) {}

  async ask(prompt: { chatId: number; messageId: number; budgetId: string; userId: string }, now: Date): Promise<void> {
    await this.database.db
      .insert(telegramPrompts)
      .values({ ...prompt, createdAt: now, expiresAt: new Date(now.getTime() + PROMPT_TTL_MS) })
      .onConflictDoNothing();
  }

  /** Marks the question answered by `userId`, if it is theirs, open and unexpired; says why not otherwise. */
  async take(chatId: number, messageId: number, userId: string, now: Date): Promise<PromptTake> {
    const key = and(eq(telegramPrompts.chatId, chatId), eq(telegramPrompts.messageId, messageId));
    const [taken] = await this.database.db
      .update(telegramPrompts)
      .set({ answeredAt: now })
      .where(and(key, eq(telegramPrompts.userId, userId), isNull(telegramPrompts.answeredAt), gt(telegramPrompts.expiresAt, now)))
      .returning({ budgetId: telegramPrompts.budgetId });
    if (taken) return { ok: true, budgetId: taken.budgetId };
    const [found] = await this.database.db.select().from(telegramPrompts).where(key);
    if (!found) return { ok: false, reason: "none" };
    if (found.userId !== userId) return { ok: false, reason: "someone_else" };
    return { ok: false, reason: found.answeredAt ? "answered" : "expired" };
  }

  /** Opens the question again, when the request it was answered with was refused (an amount too low, say). */
  async reopen(chatId: number, messageId: number): Promise<void> {
    await this.database.db
      .update(telegramPrompts)
      .set({ answeredAt: null })
      .where(and(eq(telegramPrompts.chatId, chatId), eq(telegramPrompts.messageId, messageId)));
  }
}

/** Forgets updates past redelivery, and questions long spent. */
export async function pruneTelegram(database: Pick<Database, "db">, botId: number): Promise<void> {
  const { db } = database;
  await db.delete(telegramUpdates).where(and(eq(telegramUpdates.botId, botId), lt(telegramUpdates.receivedAt, sql`now() - ${UPDATE_MEMORY}::interval`)));
  await db.delete(telegramPrompts).where(lt(telegramPrompts.expiresAt, sql`now() - ${SPENT_MEMORY}::interval`));
}
