import type { LedgerEvent } from "../ledger/build-event.ts";
import type { Attribution } from "../ledger/event.ts";

/**
 * Why a hard budget stops a call: enough for the client to know what and until when.
 * - `exhausted`: nothing is left in the period;
 * - `insufficient`: something is left, but less than this call could cost at worst;
 * - `unchecked`: the budget could not be checked (its database unreachable for longer than a lease lasts).
 */
export interface BudgetBlock {
  kind: "exhausted" | "insufficient" | "unchecked";
  budget: string;
  /** Decimal USD. */
  spend_usd: string;
  amount_usd: string;
  /** What is left for new calls, and what this call could cost at worst (decimal USD). */
  remaining_usd: string;
  reserve_usd: string;
  resets_at: Date;
}

/** What the gate sees of a call before it is forwarded. */
export interface GateCall extends Attribution {
  /** The call's id, which its ledger event will carry. */
  id: string;
  provider: string;
  model: string | undefined;
  /** The request body as JSON (undefined when it is not JSON) and its size in bytes. */
  body: unknown;
  bodyBytes: number;
}

/**
 * What an admitted call holds against its budgets until it is over. `settle` is told the call's
 * ledger events: usually one, none when the call was never recorded, one per result when it read a
 * batch's results back. Only its first call counts.
 */
export interface Hold {
  settle(events: readonly LedgerEvent[]): void;
}

export type GateVerdict = { admitted: true; hold: Hold } | { admitted: false; block: BudgetBlock };

/**
 * The single pre-request check point the budgets part fills in. Returning a plain value (not a
 * promise) when the answer is known in memory keeps the proxy's hot path free of an await.
 */
export interface BudgetGate {
  check(call: GateCall): GateVerdict | Promise<GateVerdict>;
}

const NOTHING_HELD: Hold = { settle: () => {} };
/** What a call that recorded nothing settles its hold with. */
export const NOTHING_RECORDED: readonly LedgerEvent[] = [];
/** The verdict for a call no hard budget applies to: shared, so it costs no allocation. */
export const ADMITTED: GateVerdict = { admitted: true, hold: NOTHING_HELD };

export const OPEN_GATE: BudgetGate = { check: () => ADMITTED };
