import type { BudgetInput } from "./budget.ts";

/** Only the fields a caller wrote: what a PATCH or an applied file changes on a budget that exists. */
export type BudgetPatch = Partial<BudgetInput>;

/**
 * The fields of `parsed` that `raw` actually gave: validation fills defaults in, and a default
 * must not overwrite what a budget already has (a paused budget stays paused through an apply).
 */
export function patchOf(raw: object, parsed: Partial<BudgetInput>): BudgetPatch {
  return Object.fromEntries(Object.keys(raw).flatMap((key) => (key in parsed ? [[key, parsed[key as keyof BudgetInput]]] : [])));
}
