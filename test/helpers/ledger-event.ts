import assert from "node:assert/strict";
import type { EventBuilder, LedgerEvent } from "../../src/ledger/build-event.ts";
import type { UsageEvent } from "../../src/ledger/event.ts";

/** A test's event built as every door builds it; a test event the builder refuses is the test's own mistake. */
export function ledgerEvent(builder: EventBuilder, seen: UsageEvent): LedgerEvent {
  const built = builder.build(seen);
  if (!built.ok) assert.fail(`test event ${seen.id} not built: ${built.reason}`);
  return built.event;
}
