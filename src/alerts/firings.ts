import { desc, eq, or } from "drizzle-orm";
import type { Database } from "../db/connection.ts";
import { alertFirings, budgets } from "../db/schema.ts";
import { picoToDecimalString } from "../pricing/money.ts";

/** One alert that fired, as `GET /api/alerts` and `tollgate alerts` show it. */
export interface FiringInfo {
  id: string;
  budget: { id: string; name: string };
  kind: string;
  /** The percent crossed, for threshold alerts. */
  threshold: number | null;
  period_start: string;
  spend_usd: string;
  amount_usd: string;
  fired_at: string;
}

/** The latest firings, newest first, of every budget or of one (by id or name). */
export async function recentFirings(database: Database, opts: { limit: number; budget?: string }): Promise<FiringInfo[]> {
  const rows = await database.db
    .select({ f: alertFirings, budgetName: budgets.name })
    .from(alertFirings)
    .innerJoin(budgets, eq(budgets.id, alertFirings.budgetId))
    .where(opts.budget === undefined ? undefined : or(eq(budgets.id, opts.budget), eq(budgets.name, opts.budget)))
    .orderBy(desc(alertFirings.firedAt), desc(alertFirings.id))
    .limit(opts.limit);
  return rows.map(({ f, budgetName }) => ({
    id: f.id,
    budget: { id: f.budgetId, name: budgetName },
    kind: f.kind,
    threshold: f.kind === "threshold" ? f.threshold : null,
    period_start: f.periodStart.toISOString(),
    spend_usd: picoToDecimalString(BigInt(f.spend)),
    amount_usd: picoToDecimalString(BigInt(f.amount)),
    fired_at: f.firedAt.toISOString(),
  }));
}
