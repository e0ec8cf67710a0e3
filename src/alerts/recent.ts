import { desc } from "drizzle-orm";
import type { Database } from "../db/connection.ts";
import { notifications } from "../db/schema.ts";
import type { Alert } from "./alert.ts";
import { readPayload } from "./outbox.ts";

/**
 * The latest alerts as they were sent, newest first: a message may carry several, and one alert
 * may have gone to several channels, so each is counted once. Alerts of every stored version are
 * read; a row this gateway cannot read is left to the delivery worker, which dead-letters it with
 * the reason.
 */
export async function recentAlerts(database: Pick<Database, "db">, limit: number): Promise<Alert[]> {
  const rows = await database.db.select({ payload: notifications.payload }).from(notifications).orderBy(desc(notifications.id)).limit(limit * 5);
  const seen = new Map<string, Alert>();
  for (const row of rows) {
    const read = readPayload(row.payload);
    for (const alert of read.ok ? read.payload.alerts : []) if (!seen.has(alert.id)) seen.set(alert.id, alert);
  }
  return [...seen.values()].sort((a, b) => b.at.localeCompare(a.at)).slice(0, limit);
}
