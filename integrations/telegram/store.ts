import { createHash, randomBytes } from "node:crypto";
import { and, eq, gt, isNull, lt, sql } from "drizzle-orm";
import type { SubscriptionKind } from "../../src/alerts/alert.ts";
import type { Scope } from "../../src/budgets/budget.ts";
import type { Database } from "../../src/db/connection.ts";
import { telegramLinks, telegramPrompts, telegramUpdates } from "../../src/db/schema.ts";

/*
 * What the Telegram integration keeps in Postgres, so any gateway process can answer any update:
 * one-time link codes, the updates already taken in, and raise questions awaiting their reply.
 * Every "once" here is a conditional update or a primary key, never a check followed by a write.
 */

/** How long a link code may be used. */
export const LINK_TTL_MS = 15 * 60_000;
/** How long a "Request raise" question waits for its reply. */
export const PROMPT_TTL_MS = 60 * 60_000;
/** Updates are remembered well past Telegram's 24 hours of redelivery. */
const UPDATE_MEMORY = "2 days";
/** Used and expired codes and answered questions are kept a while for whoever wonders what happened. */
const SPENT_MEMORY = "7 days";

/** Crockford's base32: no I, L, O or U, so a code read aloud or typed from a phone survives. */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** 16 characters, 80 random bits. */
export function newLinkCode(): string {
  return [...randomBytes(16)].map((b) => ALPHABET[b & 31]).join("");
}

/** What people type back: any case, with spaces or dashes, and the letters base32 reads as digits. */
export const normalizeCode = (code: string) => code.toUpperCase().replace(/[\s-]/g, "").replace(/[IL]/g, "1").replace(/O/g, "0");

const hashCode = (code: string) => createHash("sha256").update(normalizeCode(code)).digest("hex");

export type LinkUse = { ok: true; scope: Scope; kinds: SubscriptionKind[] } | { ok: false; reason: "unknown" | "expired" | "used" };

/** One-time codes binding a chat to a scope; only their hashes are stored. */
export class LinkCodes {
  constructor(private readonly database: Pick<Database, "db">) {}

  async create(request: { scope: Scope; kinds: SubscriptionKind[]; by: string }, now: Date): Promise<{ code: string; expiresAt: Date }> {
    const code = newLinkCode();
    const expiresAt = new Date(now.getTime() + LINK_TTL_MS);
    await this.database.db.insert(telegramLinks).values({ codeHash: hashCode(code), scope: request.scope, kinds: request.kinds, createdBy: request.by, createdAt: now, expiresAt });
    return { code, expiresAt };
  }

  /** Takes the code for `chatId`: only the first use of an unexpired code succeeds. */
  async use(code: string, chatId: number, now: Date): Promise<LinkUse> {
    const codeHash = hashCode(code);
    const [taken] = await this.database.db
      .update(telegramLinks)
      .set({ usedAt: now, usedByChat: chatId })
      .where(and(eq(telegramLinks.codeHash, codeHash), isNull(telegramLinks.usedAt), gt(telegramLinks.expiresAt, now)))
      .returning({ scope: telegramLinks.scope, kinds: telegramLinks.kinds });
    if (taken) return { ok: true, scope: taken.scope as Scope, kinds: taken.kinds as SubscriptionKind[] };
    const [found] = await this.database.db.select({ usedAt: telegramLinks.usedAt }).from(telegramLinks).where(eq(telegramLinks.codeHash, codeHash));
    return { ok: false, reason: !found ? "unknown" : found.usedAt ? "used" : "expired" };
  }

  /** Gives a taken code back, when binding the chat failed after taking it. */
  async giveBack(code: string): Promise<void> {
    await this.database.db.update(telegramLinks).set({ usedAt: null, usedByChat: null }).where(eq(telegramLinks.codeHash, hashCode(code)));
  }
}

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

/** Forgets updates past redelivery, and codes and questions long spent. */
export async function pruneTelegram(database: Pick<Database, "db">, botId: number): Promise<void> {
  const { db } = database;
  await db.delete(telegramUpdates).where(and(eq(telegramUpdates.botId, botId), lt(telegramUpdates.receivedAt, sql`now() - ${UPDATE_MEMORY}::interval`)));
  await db.delete(telegramLinks).where(lt(telegramLinks.expiresAt, sql`now() - ${SPENT_MEMORY}::interval`));
  await db.delete(telegramPrompts).where(lt(telegramPrompts.expiresAt, sql`now() - ${SPENT_MEMORY}::interval`));
}
