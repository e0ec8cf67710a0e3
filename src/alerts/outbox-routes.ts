import { Router } from "express";
import { z } from "zod";
import type { Database } from "../db/connection.ts";
import { NOTIFICATION_STATUSES } from "../db/schema.ts";
import { sendProblem } from "../http/problem.ts";
import { parseQuery } from "../http/request.ts";
import { labelText } from "../keys/api-keys.ts";
import { recentFirings } from "./firings.ts";
import type { OutboxNotifier } from "./outbox.ts";

const LIMIT = { error: "a whole number from 1 to 500" };
const limit = z.coerce.number(LIMIT).int(LIMIT).min(1, LIMIT).max(500, LIMIT).default(50);

/** A notification status as a filter: the admin API's and the dashboard's. */
export const StatusFilter = z.enum(NOTIFICATION_STATUSES, { error: `one of ${NOTIFICATION_STATUSES.join(", ")}` }).optional();

/** A notification id from a path, or undefined when it is not one (ids are whole numbers). */
export const notificationId = (text: string) => (/^[1-9]\d{0,14}$/.test(text) ? Number(text) : undefined);

const OutboxQuery = z.strictObject({ status: StatusFilter, limit });
const AlertsQuery = z.strictObject({ budget: labelText.optional(), limit });

/** `/api/outbox` (messages and their delivery, resending dead ones) and `/api/alerts` (what fired). */
export function outboxRouter(deps: { outbox: OutboxNotifier; database: Database }): Router {
  const router = Router();
  router.get("/outbox", async (req, res) => {
    const q = parseQuery(OutboxQuery, req, res);
    if (q) res.json({ notifications: await deps.outbox.list(q) });
  });
  router.post("/outbox/:id/resend", async (req, res) => {
    const id = notificationId(req.params.id);
    if (id === undefined) return sendProblem(res, "invalid", `"${req.params.id}" is not a notification id; ids are whole numbers`, { errors: [{ path: "id", message: "a whole number" }] });
    const result = await deps.outbox.resend(id);
    if (result.ok) return res.json(result.notification);
    sendProblem(res, result.kind, result.message);
  });
  router.get("/alerts", async (req, res) => {
    const q = parseQuery(AlertsQuery, req, res);
    if (q) res.json({ alerts: await recentFirings(deps.database, q) });
  });
  return router;
}
