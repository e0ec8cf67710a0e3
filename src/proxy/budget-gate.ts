import type { Attribution } from "./attribution.ts";

/** Why a hard budget stops a call: enough for the client to know what and until when. */
export interface BudgetBlock {
  budget: string;
  /** Decimal USD. */
  spend_usd: string;
  amount_usd: string;
  resets_at: Date;
}

/**
 * The single pre-request check point the budgets part fills in. Returning a plain value (not a
 * promise) when nothing applies keeps the proxy's hot path free of an await.
 */
export interface BudgetGate {
  check(call: Attribution & { provider: string; model: string | undefined }): BudgetBlock | null | Promise<BudgetBlock | null>;
}

export const OPEN_GATE: BudgetGate = { check: () => null };
