import { desc } from "drizzle-orm";
import type { Database } from "../db/connection.ts";
import { notifications } from "../db/schema.ts";
import { Alert } from "./alert.ts";

/**
 * The latest alerts as they were sent, newest first: a message may carry several, and one alert
 * may have gone to several channels, so each is counted once.
 */
export async function recentAlerts(database: Pick<Database, "db">, limit: number): Promise<Alert[]> {
  const rows = await database.db.select({ payload: notifications.payload }).from(notifications).orderBy(desc(notifications.id)).limit(limit * 5);
  const seen = new Map<string, Alert>();
  for (const row of rows)
    for (const raw of (row.payload as { alerts?: unknown[] }).alerts ?? []) {
      const alert = Alert.safeParse(raw);
      if (alert.success && !seen.has(alert.data.id)) seen.set(alert.data.id, alert.data);
    }
  return [...seen.values()].sort((a, b) => b.at.localeCompare(a.at)).slice(0, limit);
}
