import type { Built } from "../ledger/build-event.ts";
import { proxyRequestsTotal } from "../metrics.ts";
import type { Operation } from "../providers/types.ts";

/*
 * What of a proxied call reaches the ledger, by what the call does (its provider's `operation`):
 * inference is recorded; a batch read is recorded only when its answer carries a finished batch's
 * usage (built under the batch's own id, not the call's), once per batch; everything else is
 * counted per operation for the operator and never recorded.
 */

/** Batch ids this process has recorded: later polls of the same batch are not built into events again. */
const RECORDED_BATCHES_MAX = 10_000;
const recordedBatches = new Set<string>();

function firstTime(id: string): boolean {
  if (recordedBatches.has(id)) return false;
  // Bounded; a batch forgotten here is still recorded once, since the ledger keeps one row per id.
  if (recordedBatches.size >= RECORDED_BATCHES_MAX) recordedBatches.clear();
  recordedBatches.add(id);
  return true;
}

/** Counts the call under its operation and says which of its built events to record (undefined: none). */
export function ledgerFilter(provider: string, operation: Operation, callId: string): (built: Built) => Built | undefined {
  proxyRequestsTotal.inc({ provider, operation: operation.kind === "inference" ? "inference" : operation.name });
  if (operation.kind === "inference") return (built) => built;
  if (operation.kind === "other") return () => undefined;
  return (built) => (built.ok && built.event.id !== callId && firstTime(built.event.id) ? built : undefined);
}
