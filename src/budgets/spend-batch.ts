/**
 * Spend in the current period for many budgets at once. Budgets are grouped by their period's
 * window and by which dimensions their scope fixes; each group is one statement over the rollups,
 * grouped by those dimensions and joined to the values the group's budgets ask for, so 10,000
 * budgets cost a handful of queries rather than 10,000.
 */
import { type SQL, sql } from "drizzle-orm";
import type { Database } from "../db/connection.ts";
import { usageEvents, usageRollups } from "../db/schema.ts";
import { DIMENSIONS, type Dimension } from "../ledger/event.ts";
import type { Period } from "../ledger/period.ts";
import { type Piece, type Range, coverRange, keyColumn, pieceFrom } from "../ledger/spend.ts";
import { type Attributes, type Budget, type Scope, budgetPeriod } from "./budget.ts";
import { recentWindowStart } from "./forecast.ts";

/** The dimensions a scope fixes, in their canonical order. */
export const scopeDims = (scope: Scope): Dimension[] => DIMENSIONS.filter((d) => scope[d] !== undefined);

/** The values of `dims` in `attributes` as one lookup key; absent attribution is '' as in rollups. */
export const valuesKey = (dims: readonly Dimension[], attributes: Attributes): string => JSON.stringify(dims.map((d) => attributes[d] ?? ""));

/** One key per scope, whatever dimensions it fixes (no scope value is '', so none collide). */
export const scopeKey = (scope: Attributes): string => valuesKey(DIMENSIONS, scope);

/** Items whose scopes fix the same dimensions, looked up by the values they fix. */
export interface ScopeGroup<T> {
  dims: Dimension[];
  byValues: Map<string, T[]>;
}

export function groupByScope<T extends { scope: Scope }>(items: readonly T[]): ScopeGroup<T>[] {
  const groups = new Map<string, ScopeGroup<T>>();
  for (const item of items) {
    const dims = scopeDims(item.scope);
    const id = dims.join(",");
    let group = groups.get(id);
    if (!group) groups.set(id, (group = { dims, byValues: new Map() }));
    const key = valuesKey(dims, item.scope);
    group.byValues.set(key, [...(group.byValues.get(key) ?? []), item]);
  }
  return [...groups.values()];
}

/** The items of these groups whose scope matches the attributes. */
export function matching<T>(groups: readonly ScopeGroup<T>[], attributes: Attributes): T[] {
  return groups.flatMap((g) => g.byValues.get(valuesKey(g.dims, attributes)) ?? []);
}

/** Output column of the i-th grouped dimension. */
const dimColumn = (i: number) => sql.identifier(`d${i}`);

/**
 * A join to the value tuples a group asks for, passed as one JSON parameter: any text a scope
 * holds travels as data, and the list's length never meets the parameter limit.
 */
export function joinWanted(dims: readonly Dimension[], keys: Iterable<string>, source: string): SQL {
  if (dims.length === 0) return sql``;
  const rows = [...keys].map((k) => Object.fromEntries((JSON.parse(k) as string[]).map((v, i) => [`d${i}`, v])));
  const columns = sql.raw(dims.map((_, i) => `d${i} text`).join(", "));
  const on = sql.join(
    dims.map((_, i) => sql`${sql.identifier(source)}.${dimColumn(i)} = w.${dimColumn(i)}`),
    sql` and `,
  );
  return sql`join json_to_recordset(${JSON.stringify(rows)}::json) as w(${columns}) on ${on}`;
}

/** `d0, d1, ...` of a grouped query, qualified by its source. */
export function dimList(dims: readonly Dimension[], source: string): SQL[] {
  return dims.map((_, i) => sql`${sql.identifier(source)}.${dimColumn(i)}`);
}

/** The scope values of a result row's d0, d1, ... */
export const rowScope = (dims: readonly Dimension[], row: Record<string, unknown>): Attributes =>
  Object.fromEntries(dims.map((d, i) => [d, String(row[`d${i}`] ?? "")]));

/** The grouped dimensions of one piece, as d0, d1, ... */
export function dimSelect(piece: Piece, dims: readonly Dimension[]): SQL[] {
  return dims.map((d, i) => sql`${keyColumn(piece, d)}::text as ${dimColumn(i)}`);
}

export interface BudgetSpend {
  budget: Budget;
  period: Period;
  /** pico-USD recorded in the period, whole period: an event is counted by the time it happened. */
  spend: bigint;
  /** pico-USD since recentWindowStart(period, now), the run rate behind the forecast. */
  recentSpend: bigint;
}

interface Totals {
  spend: bigint;
  recent: bigint;
}

/** Spend of each budget in its current period at `now`. */
export async function spendForBudgets(database: Database, budgets: readonly Budget[], now: Date): Promise<BudgetSpend[]> {
  const windows = new Map<string, { period: Period; budgets: Budget[] }>();
  for (const budget of budgets) {
    const period = budgetPeriod(budget, now);
    const id = `${period.start.toISOString()} ${period.end.toISOString()}`;
    const window = windows.get(id) ?? { period, budgets: [] };
    window.budgets.push(budget);
    windows.set(id, window);
  }
  const answers = await Promise.all(
    [...windows.values()].flatMap(({ period, budgets: inWindow }) =>
      groupByScope(inWindow).map(async (group) => {
        const totals = await groupSpend(database, period, group, recentWindowStart(period, now));
        return [...group.byValues].flatMap(([key, members]) =>
          members.map((budget): BudgetSpend => {
            const t = totals.get(key);
            return { budget, period, spend: t?.spend ?? 0n, recentSpend: t?.recent ?? 0n };
          }),
        );
      }),
    ),
  );
  return answers.flat();
}

/** When a piece's rows happened: a rollup's bucket, an event's own time. */
const atColumn = (piece: Piece) => (piece.source === "events" ? sql`${usageEvents.ts}` : sql`${usageRollups.bucket}`);

async function groupSpend(database: Database, period: Period, group: ScopeGroup<unknown>, recentStart: Date): Promise<Map<string, Totals>> {
  const range: Range = { start: period.start.getTime(), end: period.end.getTime() };
  const pieces = coverRange(range, group.dims.includes("user"));
  if (pieces.length === 0) return new Map();
  const parts = pieces.map(
    (piece) => sql`select ${sql.join([...dimSelect(piece, group.dims), sql`${atColumn(piece)} as at`, sql`cost`], sql`, `)} ${pieceFrom(piece, {})}`,
  );
  const keys = dimList(group.dims, "src");
  const rows = await database.rows<Record<string, string>>(sql`
    with src as (${sql.join(parts, sql` union all `)})
    select ${keys.length > 0 ? sql`${sql.join(keys, sql`, `)},` : sql``}
      coalesce(sum(src.cost), 0)::text as spend,
      coalesce(sum(src.cost) filter (where src.at >= ${recentStart.toISOString()}::timestamptz), 0)::text as recent
    from src ${joinWanted(group.dims, group.byValues.keys(), "src")}
    ${keys.length > 0 ? sql`group by ${sql.join(keys, sql`, `)}` : sql``}`);
  return new Map(rows.map((r) => [valuesKey(group.dims, rowScope(group.dims, r)), { spend: BigInt(r.spend ?? "0"), recent: BigInt(r.recent ?? "0") }]));
}
