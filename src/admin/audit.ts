import type { Request } from "express";
import type { Db } from "../db/connection.ts";
import { auditLog } from "../db/schema.ts";

/** Anything a transaction or the database handle can run an insert on. */
type Writer = Pick<Db, "insert">;

export const AUDIT_ENTITIES = ["budget", "key", "provider_key", "ingest_source", "channel", "member", "approval", "mute", "usage"] as const;

export interface AuditEntry {
  /** Who: `admin` for the admin token, `slack:U123`, `cli`, `system` for jobs. */
  actor: string;
  /** What happened: `create`, `update`, `delete`, `revoke`, `approve`, ... */
  action: string;
  entity: (typeof AUDIT_ENTITIES)[number];
  entityId: string;
  before?: unknown;
  after?: unknown;
}

/** JSON has no BigInt: money in audit records is written as decimal pico-USD text. */
const plain = (value: unknown) => (value === undefined ? null : JSON.parse(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v))));

/** Records a change; pass the transaction that makes the change so both land or neither does. */
export async function audit(db: Writer, entry: AuditEntry): Promise<void> {
  await db.insert(auditLog).values({
    actor: entry.actor,
    action: entry.action,
    entity: entry.entity,
    entityId: entry.entityId,
    before: plain(entry.before),
    after: plain(entry.after),
  });
}

/** The actor of an admin API request: the admin token, optionally naming the person (`x-tollgate-actor`). */
export function actorOf(req: Request): string {
  const named = req.get("x-tollgate-actor")?.trim();
  return named && /^[^\u0000-\u001f]{1,200}$/.test(named) ? `admin:${named}` : "admin";
}
