import { sql } from "drizzle-orm";
import type { Database } from "../db/connection.ts";
import type { Dimension } from "../ledger/event.ts";
import type { Period } from "../ledger/period.ts";
import { OTHER_KEY, type SpendReport, coverRange, keyColumn } from "../ledger/spend.ts";
import { picoToDecimalString } from "../pricing/money.ts";
import type { Scope } from "./budget.ts";
import { dimList, rowScope, scopeDims, valuesKey, wantedCte, wantedRows } from "./spend-batch.ts";

/**
 * The dimension that best says where a scope's money goes: the first in this order the scope does
 * not fix. Teams first, as they own budgets; users last, as they are read from the largest grain.
 */
const TELLING: readonly Dimension[] = ["team", "project", "feature", "model", "provider", "key", "user"];

export function contributorDimension(scope: Scope): Dimension | undefined {
  return TELLING.find((d) => scope[d] === undefined);
}

/** Every dimension the scope does not fix, most telling first. */
const openDimensions = (scope: Scope): Dimension[] => TELLING.filter((d) => scope[d] === undefined);

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

export interface ContributorQuery {
  scope: Scope;
  period: Period;
}

/**
 * The largest spenders within each scope over its whole period, largest first, `top` of them, by
 * the first dimension (in TELLING order) under which its spend has named values: spend with no
 * value ("(none)", such as no project set) is never listed as a contributor, and a scope whose
 * spend has no project tries features next. One query per period, scope shape and dimension tried.
 */
export async function topContributors(database: Database, queries: readonly ContributorQuery[], top = 3): Promise<Contributor[][]> {
  const answers: Contributor[][] = queries.map(() => []);
  let open = queries.map((q, i) => ({ i, q, dims: openDimensions(q.scope) }));
  while (open.length > 0) {
    const found = await contributorsBy(database, open.map(({ q, dims }) => ({ ...q, by: dims[0]! })), top);
    open.forEach(({ i }, j) => (answers[i] = found[j]!));
    open = open.filter(({ i, dims }) => answers[i]!.length === 0 && dims.length > 1).map((o) => ({ ...o, dims: o.dims.slice(1) }));
  }
  return answers;
}

/** The named contributors of each query by its dimension `by`. */
async function contributorsBy(database: Database, queries: readonly (ContributorQuery & { by: Dimension })[], top: number): Promise<Contributor[][]> {
  const groups = new Map<string, { by: Dimension; dims: Dimension[]; period: Period; keys: Set<string> }>();
  const placed = queries.map((q) => {
    const by = q.by;
    const dims = scopeDims(q.scope);
    const id = `${q.period.start.toISOString()} ${q.period.end.toISOString()} ${dims.join(",")} ${by}`;
    const group = groups.get(id) ?? { by, dims, period: q.period, keys: new Set<string>() };
    const key = valuesKey(dims, q.scope);
    group.keys.add(key);
    groups.set(id, group);
    return { id, key };
  });
  const answers = new Map<string, Map<string, Contributor[]>>();
  await Promise.all(
    [...groups].map(async ([id, group]) => {
      answers.set(id, await groupContributors(database, group, top));
    }),
  );
  return placed.map((p) => answers.get(p.id)?.get(p.key) ?? []);
}

async function groupContributors(database: Database, group: { by: Dimension; dims: Dimension[]; period: Period; keys: Set<string> }, top: number): Promise<Map<string, Contributor[]>> {
  const { by, dims, period } = group;
  const range = { start: period.start.getTime(), end: period.end.getTime() };
  const parts = coverRange(range, dims.includes("user") || by === "user").map((piece) =>
    wantedRows(piece, dims, [sql`${keyColumn(piece, by)}::text as contributor`, sql`cost`]),
  );
  if (parts.length === 0) return new Map();
  const keys = [...dimList(dims, "src"), sql`src.contributor`];
  const rows = await database.rows<Record<string, string>>(sql`
    with ${wantedCte(dims, group.keys)} src as (${sql.join(parts, sql` union all `)})
    select ${sql.join(keys, sql`, `)}, sum(src.cost)::text as spend
    from src
    group by ${sql.join(keys, sql`, `)}`);
  const byScope = new Map<string, { key: string; cost: bigint }[]>();
  for (const r of rows) {
    const cost = BigInt(r.spend ?? "0");
    // Spend with no value for the dimension names no contributor.
    if (cost <= 0n || !r.contributor) continue;
    const scope = valuesKey(dims, rowScope(dims, r));
    const list = byScope.get(scope) ?? [];
    list.push({ key: r.contributor, cost });
    byScope.set(scope, list);
  }
  return new Map(
    [...byScope].map(([scope, list]) => [
      scope,
      list
        .sort((a, b) => (a.cost === b.cost ? a.key.localeCompare(b.key) : a.cost > b.cost ? -1 : 1))
        .slice(0, top)
        .map((c) => ({ dimension: by, key: c.key, spend_usd: picoToDecimalString(c.cost) })),
    ]),
  );
}
