import type { Database } from "../db/connection.ts";
import type { Dimension } from "../ledger/event.ts";
import type { Period } from "../ledger/period.ts";
import { OTHER_KEY, type SpendReport, querySpend } from "../ledger/spend.ts";
import { picoToDecimalString } from "../pricing/money.ts";
import type { Scope } from "./budget.ts";

/**
 * The dimension that best says where a scope's money goes: the first in this order the scope does
 * not fix. Teams first, as they own budgets; users last, as they are read from the largest grain.
 */
const TELLING: readonly Dimension[] = ["team", "project", "feature", "model", "provider", "key", "user"];

export function contributorDimension(scope: Scope): Dimension | undefined {
  return TELLING.find((d) => scope[d] === undefined);
}

export interface Contributor {
  dimension: Dimension;
  key: string;
  spend_usd: string;
}

/** The named groups of a report grouped by `by`, largest first. */
export function contributorsOf(report: SpendReport, by: Dimension): Contributor[] {
  return report.groups
    .filter((g) => g.key !== OTHER_KEY && g.cost > 0n)
    .map((g) => ({ dimension: by, key: g.key, spend_usd: picoToDecimalString(g.cost) }));
}

/** The largest spenders within a scope in a period up to `now`, largest first. */
export async function topContributors(database: Database, scope: Scope, period: Period, now: Date, top = 3): Promise<Contributor[]> {
  const by = contributorDimension(scope);
  if (!by) return [];
  return contributorsOf(await querySpend(database, { period, by, filters: scope, top, now }), by);
}
