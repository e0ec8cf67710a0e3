import { createHash, randomBytes } from "node:crypto";
import { and, eq, gt, isNull, lt, sql } from "drizzle-orm";
import type { Scope } from "../../src/budgets/budget.ts";
import type { Database } from "../../src/db/connection.ts";
import { telegramLinks } from "./schema.ts";
import type { SubscriptionKind } from "../../src/alerts/alert.ts";

/*
 * One-time codes that bind a Telegram chat to a scope and kinds. Every door makes them (the admin
 * API and CLI, and `telegram-link` typed in any chat, both contributed by this integration); the
 * bot takes them when a chat sends `/link CODE` or `/start CODE`. Taking a code is a conditional
 * update, never a check followed by a write, so a code links one chat once.
 */

/** How long a link code may be used. */
export const LINK_TTL_MS = 15 * 60_000;
/** Used and expired codes are kept a while for whoever wonders what happened. */
const SPENT_MEMORY = "7 days";

/** Crockford's base32: no I, L, O or U, so a code read aloud or typed from a phone survives. */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** 16 characters, 80 random bits. */
function newLinkCode(): string {
  return [...randomBytes(16)].map((b) => ALPHABET[b & 31]).join("");
}

/** What people type back: any case, with spaces or dashes, and the letters base32 reads as digits. */
const normalizeCode = (code: string) => code.toUpperCase().replace(/[\s-]/g, "").replace(/[IL]/g, "1").replace(/O/g, "0");

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

  /** Forgets codes long spent. */
  async prune(): Promise<void> {
    await this.database.db.delete(telegramLinks).where(lt(telegramLinks.expiresAt, sql`now() - ${SPENT_MEMORY}::interval`));
  }
}
