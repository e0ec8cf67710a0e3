import type { Dimension } from "../src/ledger/event.ts";
import type { BudgetPeriod, Scope } from "../src/budgets/budget.ts";
import type { SubscriptionKind } from "../src/alerts/alert.ts";

/** A parsed chat or CLI command: what was asked, with every value already checked. */
export type Command =
  | { verb: "spend"; period: string; by?: Dimension; filters: Scope; share: boolean }
  | { verb: "budget.list" }
  | { verb: "budget.show"; name: string }
  | { verb: "budget.set"; scope: Scope; amount: bigint; period: BudgetPeriod; mode: "soft" | "hard" }
  | { verb: "budget.raise"; name: string; amount: bigint; reason: string }
  | { verb: "budget.approve"; id: string }
  | { verb: "budget.reject"; id: string; reason: string }
  | { verb: "budget.pause"; name: string }
  | { verb: "budget.resume"; name: string }
  | { verb: "alerts.recent" }
  | { verb: "alerts.mute"; name: string; durationMs: number; duration: string }
  | { verb: "alerts.unmute"; name: string }
  | { verb: "subscribe"; scope: Scope; kinds: SubscriptionKind[] }
  | { verb: "unsubscribe" }
  | { verb: "telegram-link"; scope: Scope; kinds: SubscriptionKind[] }
  | { verb: "help"; topic?: Topic };

export const TOPICS = ["spend", "budget", "alerts", "subscribe", "unsubscribe", "telegram-link", "help"] as const;
export type Topic = (typeof TOPICS)[number];

/** Why a text is not a command: what was wrong, what was expected there, and the nearest valid form. */
export interface ParseError {
  kind: "parse";
  message: string;
  expected: string;
  suggestion?: string;
  /** The command the error is about, so help can be offered for it. */
  topic?: Topic;
}

export type ParseResult = { ok: true; command: Command } | { ok: false; error: ParseError };
