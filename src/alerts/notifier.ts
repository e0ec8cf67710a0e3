import type { Db } from "../db/connection.ts";
import type { Alert } from "./alert.ts";

/** The database handle or the transaction the caller is in. */
export type Writer = Pick<Db, "insert" | "select" | "update" | "execute">;

/**
 * The one way alerts leave `src/budgets` and `src/approvals`: routed to the channels subscribed to
 * their scope and kind (mutes respected), grouped into one message per channel per call, written
 * to the outbox. Call it in the transaction that records why the alerts exist (the firing, the
 * approval), so both land or neither does; delivery happens later, from the outbox.
 */
export interface Notifier {
  enqueue(db: Writer, alerts: Alert[], opts?: { channelIds?: string[] }): Promise<void>;
}
