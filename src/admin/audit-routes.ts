import { Router } from "express";
import { and, desc, eq, lt, type SQL } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "../db/connection.ts";
import { auditLog } from "../db/schema.ts";
import { unknownFieldError } from "../problem.ts";
import { AUDIT_ENTITIES } from "./audit.ts";
import { parseQuery } from "./spend-routes.ts";

const LIMIT = "a whole number from 1 to 500";
const BEFORE = "an entry id from next_before";

const auditFields = {
  entity: z.enum(AUDIT_ENTITIES, { error: `one of ${AUDIT_ENTITIES.join(", ")}` }).optional(),
  entity_id: z.string().min(1).max(200).optional(),
  actor: z.string().min(1).max(200).optional(),
  limit: z.coerce.number({ error: LIMIT }).int(LIMIT).min(1, LIMIT).max(500, LIMIT).default(50),
  /** The next_before of the previous page: entries older than that one. */
  before: z.coerce.number({ error: BEFORE }).int(BEFORE).min(1, BEFORE).optional(),
};
const AuditQuery = z.strictObject(auditFields, { error: unknownFieldError("the query", Object.keys(auditFields)) });

/** GET /api/audit: who changed what, newest first, a page at a time. */
export function auditRouter(database: Database): Router {
  const router = Router();
  router.get("/audit", async (req, res) => {
    const q = parseQuery(AuditQuery, req, res);
    if (!q) return;
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
    res.json({
      entries: page.map((r) => ({ id: r.id, at: r.at.toISOString(), actor: r.actor, action: r.action, entity: r.entity, entity_id: r.entityId, before: r.before, after: r.after })),
      next_before: rows.length > q.limit ? page[page.length - 1]!.id : null,
    });
  });
  return router;
}
