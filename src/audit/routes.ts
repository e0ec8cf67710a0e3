import { Router } from "express";
import { z } from "zod";
import type { Database } from "../db/connection.ts";
import { unknownFieldError } from "../errors.ts";
import { parseQuery } from "../http/request.ts";
import { AUDIT_ENTITIES, auditPage } from "./log.ts";

const LIMIT = "a whole number from 1 to 500";
const BEFORE = "an entry id from next_before";

const auditFields = {
  entity: z.enum(AUDIT_ENTITIES, { error: `one of ${AUDIT_ENTITIES.join(", ")}` }).optional(),
  entity_id: z.string().min(1).max(200).optional(),
  actor: z.string().min(1).max(200).optional(),
  limit: z.coerce.number({ error: LIMIT }).int(LIMIT).min(1, LIMIT).max(500, LIMIT).default(50),
  before: z.coerce.number({ error: BEFORE }).int(BEFORE).min(1, BEFORE).optional(),
};
const AuditQuery = z.strictObject(auditFields, { error: unknownFieldError("the query", Object.keys(auditFields)) });

/** GET /api/audit: who changed what, newest first, a page at a time. */
export function auditRouter(database: Database): Router {
  const router = Router();
  router.get("/audit", async (req, res) => {
    const q = parseQuery(AuditQuery, req, res);
    if (q) res.json(await auditPage(database, q));
  });
  return router;
}
