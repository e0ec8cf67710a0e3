import { z } from "zod";
import { type Dimension, DIMENSIONS } from "../ledger/event.ts";
import { modelFamily } from "../ledger/model-family.ts";
import { type Period, isTimeZone, resolvePeriod } from "../ledger/period.ts";
import { decimalUsdToPico } from "../pricing/money.ts";
import { labelText } from "../keys/api-keys.ts";
import { unknownFieldError } from "../errors.ts";

/** A filter over the attribution dimensions; `{}` is all spend. */
export const Scope = z
  .record(z.string(), labelText)
  .superRefine((scope, ctx) => {
    for (const key of Object.keys(scope))
      if (!(DIMENSIONS as readonly string[]).includes(key)) ctx.addIssue({ code: "custom", path: [key], message: `not a dimension; one of ${DIMENSIONS.join(", ")}` });
  })
  .transform((scope) => scope as Partial<Record<Dimension, string>>)
  .default({});
export type Scope = z.infer<typeof Scope>;

export const BUDGET_PERIODS = ["day", "week", "month", "quarter", "year"] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

/** A positive decimal USD amount ("500", "0.25") read exactly into pico-USD. */
export const UsdAmount = z
  .string({ error: (iss) => (iss.input === undefined ? "required" : "a decimal amount of USD as a string, such as \"500\" or \"12.50\" (a JSON number would not be exact)") })
  .transform((text, ctx) => {
    const pico = decimalUsdToPico(text);
    if (pico instanceof Error || pico <= 0n) {
      ctx.addIssue({ code: "custom", message: pico instanceof Error ? pico.message : "must be more than 0, such as \"500\" or \"12.50\"" });
      return z.NEVER;
    }
    return pico;
  });

const PERCENTAGE = "a whole percentage from 1 to 1000";

const budgetFields = {
  name: labelText.regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits, dot, dash and underscore, starting with a letter or digit"),
  scope: Scope,
  amount_usd: UsdAmount,
  period: z.enum(BUDGET_PERIODS, { error: `one of ${BUDGET_PERIODS.join(", ")}` }),
  timezone: z.string().default("UTC").refine(isTimeZone, "an IANA time zone such as UTC or Europe/Berlin"),
  thresholds: z
    .array(z.number({ error: PERCENTAGE }).int(PERCENTAGE).min(1, PERCENTAGE).max(1000, PERCENTAGE), { error: "a list of whole percentages from 1 to 1000" })
    .min(1)
    .max(10)
    .default([50, 80, 100])
    .transform((t) => [...new Set(t)].sort((a, b) => a - b)),
  mode: z.enum(["soft", "hard"], { error: "soft (alerts only) or hard (alerts and blocks)" }).default("soft"),
  paused: z.boolean().default(false),
};

/** What a budget is, as the admin API and `tollgate apply` write it. */
export const BudgetInput = z.strictObject(budgetFields, { error: unknownFieldError("a budget", Object.keys(budgetFields)) });
export type BudgetInput = z.infer<typeof BudgetInput>;

/** A stored budget: its input plus identity. Amounts are pico-USD. */
export interface Budget {
  id: string;
  name: string;
  scope: Scope;
  amount: bigint;
  period: BudgetPeriod;
  timezone: string;
  thresholds: number[];
  mode: "soft" | "hard";
  paused: boolean;
  created_at: Date;
  updated_at: Date;
}

const CURRENT: Record<BudgetPeriod, string> = { day: "today", week: "this-week", month: "this-month", quarter: "this-quarter", year: "this-year" };

/**
 * The last period resolved per budget period and zone. A current period stays the one resolved
 * until its end (each starts at a local midnight and ends at a later one), so evaluation after
 * every write asks Intl for the local date only when a period has rolled, not per budget per run.
 */
const resolvedPeriods = new Map<string, Period>();
/** Keys are period and zone pairs of stored budgets: few, but bounded all the same. */
const RESOLVED_LIMIT = 1000;

/** The calendar period a budget is in at `now`, in its own time zone (ISO weeks). */
export function budgetPeriod(budget: Pick<Budget, "period" | "timezone">, now: Date): Period {
  const key = `${budget.period} ${budget.timezone}`;
  const t = now.getTime();
  const known = resolvedPeriods.get(key);
  if (known && known.start.getTime() <= t && t < known.end.getTime()) return known;
  const resolved = resolvePeriod(CURRENT[budget.period], { now, timeZone: budget.timezone });
  if (!resolved.ok) throw new Error(resolved.error.message);
  if (resolvedPeriods.size >= RESOLVED_LIMIT) resolvedPeriods.clear();
  resolvedPeriods.set(key, resolved.period);
  return resolved.period;
}

/** What a call or an event is attributed to, as scopes see it. */
export type Attributes = Partial<Record<Dimension, string | null>>;

/** Whether a scope giving `dim` the value `wanted` takes spend recorded with `value`: the same value, or a dated model of that family. */
export const valueInScope = (dim: Dimension, wanted: string, value: string): boolean => wanted === value || (dim === "model" && modelFamily(value) === wanted);

/** Whether spend with these attributes counts against a budget of this scope. */
export function scopeMatches(scope: Scope, attributes: Attributes): boolean {
  for (const dim of DIMENSIONS) {
    const wanted = scope[dim];
    // No scope value is '', so spend without a value for the dimension is in no scope fixing it.
    if (wanted !== undefined && !valueInScope(dim, wanted, attributes[dim] ?? "")) return false;
  }
  return true;
}

/** Whether some spend can count against both scopes: in every dimension both fix, one takes the other's value. */
export function scopesOverlap(a: Scope, b: Scope): boolean {
  return DIMENSIONS.every((d) => {
    const [x, y] = [a[d], b[d]];
    return x === undefined || y === undefined || valueInScope(d, x, y) || valueInScope(d, y, x);
  });
}

/** `team:search model:gpt-4o`, or `everything`: how people read a scope. */
export function describeScope(scope: Scope): string {
  const parts = DIMENSIONS.flatMap((d) => (scope[d] !== undefined ? [`${d}:${scope[d]}`] : []));
  return parts.length > 0 ? parts.join(" ") : "everything";
}
