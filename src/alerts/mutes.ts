import { and, asc, eq, gt, inArray, or } from "drizzle-orm";
import { audit } from "../audit/log.ts";
import type { Database } from "../db/connection.ts";
import { budgets, channels, mutes } from "../db/schema.ts";
import type { Failure } from "../errors.ts";
import type { Writer } from "./notifier.ts";
import { type ActiveMutes, muteKey } from "./routing.ts";

export interface MuteInfo {
  channel_id: string;
  budget: { id: string; name: string };
  until: string;
  muted_by: string;
  created_at: string;
}

export type MuteChange = { ok: true; mute: MuteInfo } | Failure<"not_found">;

const columns = {
  channelId: mutes.channelId,
  budgetId: mutes.budgetId,
  budgetName: budgets.name,
  until: mutes.until,
  mutedBy: mutes.mutedBy,
  createdAt: mutes.createdAt,
};

function muteInfo(row: { channelId: string; budgetId: string; budgetName: string; until: Date; mutedBy: string; createdAt: Date }): MuteInfo {
  return {
    channel_id: row.channelId,
    budget: { id: row.budgetId, name: row.budgetName },
    until: row.until.toISOString(),
    muted_by: row.mutedBy,
    created_at: row.createdAt.toISOString(),
  };
}

/** A budget silenced in one channel until a time; muting again moves the time, unmuting ends it early. */
export class MuteStore {
  constructor(private readonly database: Database) {}

  /** `budget` is a budget's id or name. */
  async mute(channelId: string, budget: string, until: Date, by: string): Promise<MuteChange> {
    return this.database.db.transaction(async (tx): Promise<MuteChange> => {
      const [channel] = await tx.select({ id: channels.id }).from(channels).where(eq(channels.id, channelId));
      if (!channel) return { ok: false, kind: "not_found", message: `no channel with id ${channelId}` };
      const [found] = await tx.select({ id: budgets.id, name: budgets.name }).from(budgets).where(or(eq(budgets.id, budget), eq(budgets.name, budget)));
      if (!found) return { ok: false, kind: "not_found", message: `no budget ${budget}` };
      const [row] = await tx
        .insert(mutes)
        .values({ channelId, budgetId: found.id, until, mutedBy: by })
        .onConflictDoUpdate({ target: [mutes.channelId, mutes.budgetId], set: { until, mutedBy: by, createdAt: new Date() } })
        .returning();
      const mute = muteInfo({ ...row!, budgetName: found.name });
      await audit(tx, { actor: by, action: "mute", entity: "mute", entityId: `${channelId}/${found.id}`, after: mute });
      return { ok: true, mute };
    });
  }

  async unmute(channelId: string, budget: string, by: string, now = new Date()): Promise<MuteChange> {
    return this.database.db.transaction(async (tx): Promise<MuteChange> => {
      const [found] = await tx
        .select(columns)
        .from(mutes)
        .innerJoin(budgets, eq(budgets.id, mutes.budgetId))
        .where(and(eq(mutes.channelId, channelId), or(eq(budgets.id, budget), eq(budgets.name, budget)), gt(mutes.until, now)));
      if (!found) return { ok: false, kind: "not_found", message: `budget ${budget} is not muted in channel ${channelId}` };
      await tx.delete(mutes).where(and(eq(mutes.channelId, channelId), eq(mutes.budgetId, found.budgetId)));
      const mute = muteInfo(found);
      await audit(tx, { actor: by, action: "unmute", entity: "mute", entityId: `${channelId}/${found.budgetId}`, before: mute });
      return { ok: true, mute };
    });
  }

  /** Mutes in force at `now`, of one channel or of all. */
  async list(channelId: string | undefined, now = new Date()): Promise<MuteInfo[]> {
    const rows = await this.database.db
      .select(columns)
      .from(mutes)
      .innerJoin(budgets, eq(budgets.id, mutes.budgetId))
      .where(and(gt(mutes.until, now), channelId === undefined ? undefined : eq(mutes.channelId, channelId)))
      .orderBy(asc(mutes.until));
    return rows.map(muteInfo);
  }
}

/** The mutes of these budgets in force at `now`, read in the caller's transaction. */
export async function activeMutes(db: Writer, budgetIds: string[], now: Date): Promise<ActiveMutes> {
  if (budgetIds.length === 0) return new Set();
  const rows = await db
    .select({ channelId: mutes.channelId, budgetId: mutes.budgetId })
    .from(mutes)
    .where(and(inArray(mutes.budgetId, budgetIds), gt(mutes.until, now)));
  return new Set(rows.map((r) => muteKey(r.channelId, r.budgetId)));
}
