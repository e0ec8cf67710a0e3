import { randomUUID } from "node:crypto";
import { asc, eq } from "drizzle-orm";
import { audit } from "../audit/log.ts";
import type { Database, Db } from "../db/connection.ts";
import { budgets } from "../db/schema.ts";
import type { Failure } from "../errors.ts";
import { budgetJson } from "./budget-json.ts";
import type { Budget, BudgetInput, BudgetPeriod, Scope } from "./budget.ts";

export type BudgetRow = typeof budgets.$inferSelect;

export function budgetOf(row: BudgetRow): Budget {
  return {
    id: row.id,
    name: row.name,
    scope: row.scope as Scope,
    amount: BigInt(row.amount),
    period: row.period as BudgetPeriod,
    timezone: row.timezone,
    thresholds: row.thresholds,
    mode: row.mode as Budget["mode"],
    paused: row.paused,
    created_at: row.createdAt,
    updated_at: row.updatedAt,
  };
}

const columns = (input: BudgetInput) => ({
  name: input.name,
  scope: input.scope,
  amount: input.amount_usd.toString(),
  period: input.period,
  timezone: input.timezone,
  thresholds: input.thresholds,
  mode: input.mode,
  paused: input.paused,
});

export type Deleted = { id: string; deleted: true };

export type BudgetChange = { ok: true; budget: Budget } | Failure<"not_found" | "conflict">;

/**
 * Budgets in Postgres, every change audited in the same transaction. Listeners hear each change
 * made through this process at once (the proxy's hard stops lift a block without waiting).
 */
export class BudgetStore {
  private listeners: ((change: Budget | Deleted) => void)[] = [];

  /** `heard` collects the changes of a store bound to a transaction, told to listeners once it commits. */
  constructor(
    private readonly database: Pick<Database, "db">,
    private readonly heard?: (Budget | Deleted)[],
  ) {}

  onChange(listener: (change: Budget | Deleted) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Several changes as one: all or none. `work` gets a store bound to the transaction (and the
   * transaction, to write its own rows in it); listeners hear the changes only once it commits.
   */
  async transaction<T>(work: (store: BudgetStore, tx: Db) => Promise<T>): Promise<T> {
    const heard: (Budget | Deleted)[] = [];
    const result = await this.database.db.transaction((tx) => work(new BudgetStore({ db: tx }, heard), tx));
    for (const change of heard) this.emit(change);
    return result;
  }

  async list(): Promise<Budget[]> {
    return (await this.database.db.select().from(budgets).orderBy(asc(budgets.name))).map(budgetOf);
  }

  /** By id or by name. */
  async find(idOrName: string): Promise<Budget | undefined> {
    const [row] = await this.database.db.select().from(budgets).where(eq(budgets.id, idOrName));
    if (row) return budgetOf(row);
    const [byName] = await this.database.db.select().from(budgets).where(eq(budgets.name, idOrName));
    return byName ? budgetOf(byName) : undefined;
  }

  async create(input: BudgetInput, actor: string): Promise<BudgetChange> {
    const budget = await this.database.db.transaction(async (tx) => {
      const [row] = await tx.insert(budgets).values({ id: randomUUID(), ...columns(input) }).onConflictDoNothing().returning();
      if (!row) return undefined;
      const created = budgetOf(row);
      await audit(tx, { actor, action: "create", entity: "budget", entityId: row.id, after: budgetJson(created) });
      return created;
    });
    if (!budget) return { ok: false, kind: "conflict", message: `a budget named ${input.name} already exists` };
    this.emit(budget);
    return { ok: true, budget };
  }

  /** Replaces a budget's definition; a new amount counts against the spend already made in the period. */
  async update(idOrName: string, change: (current: Budget) => BudgetInput, actor: string): Promise<BudgetChange> {
    let wanted = idOrName;
    const result = await this.database.db
      .transaction(async (tx): Promise<BudgetChange> => {
        // Read through the transaction: PGlite has one connection, held by the transaction.
        const current = await new BudgetStore({ db: tx }).find(idOrName);
        if (!current) return { ok: false, kind: "not_found", message: `no budget ${idOrName}` };
        const [locked] = await tx.select().from(budgets).where(eq(budgets.id, current.id)).for("update");
        if (!locked) return { ok: false, kind: "not_found", message: `no budget ${idOrName}` };
        const before = budgetOf(locked);
        const next = change(before);
        wanted = next.name;
        const [row] = await tx
          .update(budgets)
          .set({ ...columns(next), updatedAt: new Date() })
          .where(eq(budgets.id, before.id))
          .returning();
        const after = budgetOf(row!);
        await audit(tx, { actor, action: "update", entity: "budget", entityId: before.id, before: budgetJson(before), after: budgetJson(after) });
        return { ok: true, budget: after };
      })
      .catch((err: unknown): BudgetChange => {
        // A failed statement spoils its transaction, so a taken name is answered once it has rolled
        // back. drizzle wraps the driver's error: the SQLSTATE is on its cause.
        const failed = err as { code?: string; cause?: { code?: string } };
        if ((failed.code ?? failed.cause?.code) === "23505") return { ok: false, kind: "conflict", message: `a budget named ${wanted} already exists` };
        throw err;
      });
    if (result.ok) this.emit(result.budget);
    return result;
  }

  async remove(idOrName: string, actor: string): Promise<BudgetChange> {
    const current = await this.find(idOrName);
    if (!current) return { ok: false, kind: "not_found", message: `no budget ${idOrName}` };
    await this.database.db.transaction(async (tx) => {
      await tx.delete(budgets).where(eq(budgets.id, current.id));
      await audit(tx, { actor, action: "delete", entity: "budget", entityId: current.id, before: budgetJson(current) });
    });
    this.emit({ id: current.id, deleted: true });
    return { ok: true, budget: current };
  }

  private emit(change: Budget | Deleted): void {
    if (this.heard) this.heard.push(change);
    else for (const l of this.listeners) l(change);
  }
}

/** A budget back in the shape it was written in, so an update can change one field of it. */
export function inputOf(budget: Budget): BudgetInput {
  return {
    name: budget.name,
    scope: budget.scope,
    amount_usd: budget.amount,
    period: budget.period,
    timezone: budget.timezone,
    thresholds: budget.thresholds,
    mode: budget.mode,
    paused: budget.paused,
  };
}
