import { LineCounter, Scalar, isScalar, parseDocument, visit } from "yaml";
import { z } from "zod";
import type { Failure } from "../errors.ts";
import { DIMENSIONS } from "../ledger/event.ts";
import { picoToDecimalString } from "../pricing/money.ts";
import { type Budget, BudgetInput } from "./budget.ts";
import { type BudgetPatch, patchOf } from "./patch.ts";
import { type BudgetStore, inputOf } from "./store.ts";

/**
 * Budgets declared in a file (`tollgate apply budgets.yaml`) against the ones stored: a diff by
 * name, and its application in one transaction. Budgets are matched by name; a field the file
 * leaves out keeps its value on a budget that exists and takes its default on a new one.
 */

/** `budgets: [...]`, each entry a budget as POST /api/budgets takes it; names unique in the file. */
const DeclaredBudgets = z.array(BudgetInput, { error: "a list of budgets" }).superRefine((budgets, ctx) => {
  const first = new Map<string, number>();
  budgets.forEach((b, i) => {
    const seen = first.get(b.name);
    if (seen === undefined) first.set(b.name, i);
    else ctx.addIssue({ code: "custom", path: [i, "name"], message: `${b.name} is declared twice (first at budgets[${seen}])` });
  });
});

export const BudgetsFile = z.strictObject({ budgets: DeclaredBudgets }, { error: (iss) => (iss.code === "unrecognized_keys" ? "a budgets file has only a budgets list" : undefined) });

/** The body of POST /api/budgets/apply. */
export const ApplyRequest = z.strictObject({
  budgets: DeclaredBudgets,
  /** Also delete stored budgets the file does not name. */
  prune: z.boolean().default(false),
  dry_run: z.boolean().default(false),
});

export interface DesiredBudget {
  input: BudgetInput;
  /** The fields the file wrote; only these change on a budget that exists. */
  patch: BudgetPatch;
}

/** Pairs each validated budget with the raw entry it came from, to know which fields were written. */
export function desiredOf(raw: readonly object[], parsed: readonly BudgetInput[]): DesiredBudget[] {
  return parsed.map((input, i) => ({ input, patch: patchOf(raw[i] ?? {}, input) }));
}

const FIELDS = ["scope", "amount_usd", "period", "timezone", "thresholds", "mode", "paused"] as const;
type Field = (typeof FIELDS)[number];

/** A budget's fields as compared and shown: exact decimal amount, dimensions in their usual order. */
export type BudgetFields = { [F in Field]: F extends "amount_usd" ? string : BudgetInput[F] };

function fieldsOf(input: BudgetInput): BudgetFields {
  const scope = Object.fromEntries(DIMENSIONS.flatMap((d) => (input.scope[d] !== undefined ? [[d, input.scope[d]]] : [])));
  return { scope, amount_usd: picoToDecimalString(input.amount_usd), period: input.period, timezone: input.timezone, thresholds: input.thresholds, mode: input.mode, paused: input.paused };
}

export interface FieldChange {
  field: Field;
  before: unknown;
  after: unknown;
}

export type PlannedChange =
  | { action: "create"; name: string; budget: BudgetFields }
  | { action: "update"; name: string; id: string; fields: FieldChange[] }
  | { action: "delete"; name: string; id: string };

export interface Plan {
  changes: PlannedChange[];
  /** Declared and already as declared. */
  unchanged: string[];
  /** Stored, not declared, and kept because prune was not asked for. */
  left_alone: string[];
}

/** What applying `desired` to `current` would change: creates and updates in file order, then deletes. */
export function planApply(desired: readonly DesiredBudget[], current: readonly Budget[], prune: boolean): Plan {
  const byName = new Map(current.map((b) => [b.name, b]));
  const plan: Plan = { changes: [], unchanged: [], left_alone: [] };
  for (const { input, patch } of desired) {
    const stored = byName.get(input.name);
    if (!stored) {
      plan.changes.push({ action: "create", name: input.name, budget: fieldsOf(input) });
      continue;
    }
    const before = fieldsOf(inputOf(stored));
    const after = fieldsOf({ ...inputOf(stored), ...patch });
    const fields = FIELDS.flatMap((field) => (JSON.stringify(before[field]) === JSON.stringify(after[field]) ? [] : [{ field, before: before[field], after: after[field] }]));
    if (fields.length > 0) plan.changes.push({ action: "update", name: stored.name, id: stored.id, fields });
    else plan.unchanged.push(stored.name);
  }
  const declared = new Set(desired.map((d) => d.input.name));
  for (const stored of [...current].sort((a, b) => a.name.localeCompare(b.name))) {
    if (declared.has(stored.name)) continue;
    if (prune) plan.changes.push({ action: "delete", name: stored.name, id: stored.id });
    else plan.left_alone.push(stored.name);
  }
  return plan;
}

export type ApplyOutcome = { ok: true; plan: Plan; applied: boolean } | Failure<"conflict">;

/** Thrown inside the transaction only to roll it back; turned into an outcome before it leaves. */
class RolledBack extends Error {}

/**
 * Plans against the budgets as they are now and carries the plan out in one transaction: all of
 * it or none. Every change goes through the store, so each one is audited with `actor`.
 */
export async function applyBudgets(store: BudgetStore, desired: readonly DesiredBudget[], opts: { prune: boolean; dryRun: boolean; actor: string }): Promise<ApplyOutcome> {
  if (opts.dryRun) return { ok: true, plan: planApply(desired, await store.list(), opts.prune), applied: false };
  const inputs = new Map(desired.map((d) => [d.input.name, d]));
  try {
    return await store.transaction(async (s) => {
      const plan = planApply(desired, await s.list(), opts.prune);
      for (const change of plan.changes) {
        const wanted = inputs.get(change.name);
        const result =
          change.action === "create"
            ? await s.create(wanted!.input, opts.actor)
            : change.action === "update"
              ? await s.update(change.id, (b) => ({ ...inputOf(b), ...wanted!.patch }), opts.actor)
              : await s.remove(change.id, opts.actor);
        // Another writer got there between the plan and the change: nothing of this apply stays.
        if (!result.ok) throw new RolledBack(`${change.action} ${change.name}: ${result.message}; nothing was applied, run it again`);
      }
      return { ok: true as const, plan, applied: plan.changes.length > 0 };
    });
  } catch (err) {
    if (err instanceof RolledBack) return { ok: false, kind: "conflict", message: err.message };
    throw err;
  }
}

/** A budgets file read as YAML (JSON is YAML too), and where in the file each value was written. */
export interface BudgetsSource {
  value: unknown;
  /** The 1-based line of the value at `path`, or of its nearest ancestor that is in the file. */
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

/**
 * Parses the file's text. Amounts are kept as they were written: `amount_usd: 12.10` reaches the
 * validator as the text "12.10", never as a float.
 */
export function parseBudgetsSource(text: string): { ok: true; source: BudgetsSource } | { ok: false; kind: "syntax"; message: string } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const [error] = doc.errors;
  if (error) return { ok: false, kind: "syntax", message: `line ${lines.linePos(error.pos[0]).line}: ${error.message.split("\n")[0]}` };
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.value === "amount_usd" && isScalar(pair.value) && typeof pair.value.value === "number" && pair.value.source !== undefined) {
        const exact = new Scalar(pair.value.source);
        exact.range = pair.value.range;
        pair.value = exact;
      }
    },
  });
  return {
    ok: true,
    source: {
      value: doc.toJS(),
      lineOf(path) {
        for (let depth = path.length; depth >= 0; depth--) {
          const node = doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
          if (node?.range) return lines.linePos(node.range[0]).line;
        }
        return undefined;
      },
    },
  };
}
