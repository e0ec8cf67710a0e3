import { and, desc, eq, lt, type SQL } from "drizzle-orm";
import type { Database, Db } from "../db/connection.ts";
import { auditLog } from "../db/schema.ts";

/** Anything a transaction or the database handle can run an insert on. */
type Writer = Pick<Db, "insert">;

export const AUDIT_ENTITIES = ["budget", "key", "provider_key", "ingest_source", "channel", "member", "approval", "mute", "usage", "session"] as const;
export type AuditEntity = (typeof AUDIT_ENTITIES)[number];

export interface AuditEntry {
  /** Who: `admin` for the admin token, `PLATFORM:USER_ID`, `cli`, `system` for jobs. */
  actor: string;
  /** What happened: `create`, `update`, `delete`, `revoke`, `approve`, ... */
  action: string;
  entity: AuditEntity;
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

export interface AuditFilter {
  entity?: AuditEntity;
  entity_id?: string;
  actor?: string;
  limit: number;
  /** The next_before of the previous page: entries older than that one. */
  before?: number;
}

export interface AuditPage {
  entries: { id: number; at: string; actor: string; action: string; entity: string; entity_id: string; before: unknown; after: unknown }[];
  /** Where the next (older) page starts; null on the last page. */
  next_before: number | null;
}

/** Who changed what, newest first, a page at a time. */
export async function auditPage(database: Database, q: AuditFilter): Promise<AuditPage> {
  const filters: SQL[] = [];
  if (q.entity) filters.push(eq(auditLog.entity, q.entity));
  if (q.entity_id) filters.push(eq(auditLog.entityId, q.entity_id));
  if (q.actor) filters.push(eq(auditLog.actor, q.actor));
  if (q.before) filters.push(lt(auditLog.id, q.before));
  // Keyset paging on the identity column: pages stay stable while new entries arrive.
  const rows = await database.db
    .select()
    .from(auditLog)
    .where(and(...filters))
    .orderBy(desc(auditLog.id))
    .limit(q.limit + 1);
  const page = rows.slice(0, q.limit);
  return {
    entries: page.map((r) => ({ id: r.id, at: r.at.toISOString(), actor: r.actor, action: r.action, entity: r.entity, entity_id: r.entityId, before: r.before, after: r.after })),
    next_before: rows.length > q.limit ? page[page.length - 1]!.id : null,
  };
}
