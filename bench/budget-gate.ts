import { setImmediate as yieldToLoop } from "node:timers/promises";
import { BudgetInput } from "../src/budgets/budget.ts";
import { Enforcer, enforcerOptions } from "../src/budgets/enforcer.ts";
import { BudgetStore } from "../src/budgets/store.ts";
import { loadConfig } from "../src/config.ts";
import { openDatabase } from "../src/db/connection.ts";
import { migrate } from "../src/db/migrate.ts";
import { type EventBuilder, eventBuilder } from "../src/ledger/build-event.ts";
import { type UsageEvent, ZERO_TOKENS } from "../src/ledger/event.ts";
import { createLogger } from "../src/logger.ts";
import { loadCatalog, priceEvent } from "../src/pricing/index.ts";
import { type BudgetGate, type GateCall, OPEN_GATE } from "../src/proxy/budget-gate.ts";
import { percentile } from "./postgres.ts";

/**
 * What the hard-budget check adds to a proxied call (DESIGN.md §6: ≤ 50 µs p99): `check` plus the
 * `settle` that follows it, with 1, 10 and 1,000 hard budgets configured, of which the call falls
 * in one. Leases are taken before timing starts; background work (lease syncs) runs between timed
 * calls, as it would between requests. The open gate (no budgets wired) is the baseline.
 */
export interface GateBenchRow {
  budgets: number;
  calls: number;
  p50Us: number;
  p99Us: number;
  /** Calls that had to wait for a lease sync (should be none once warm). */
  waited: number;
}

const USD = 1_000_000_000_000n;

/** Budgets of three scope shapes; only the first matches the benchmarked call. */
function budgetInputs(count: number): BudgetInput[] {
  return Array.from({ length: count }, (_, i) => {
    const scope = i === 0 ? { team: "search" } : i % 3 === 0 ? { team: `team-${i}` } : i % 3 === 1 ? { project: `project-${i}` } : { feature: `feature-${i}`, model: "gpt-4o" };
    return BudgetInput.parse({ name: `budget-${i}`, scope, amount_usd: "1000000000", period: "month", mode: "hard" });
  });
}

const body = { model: "gpt-4o", max_tokens: 500, messages: [{ role: "user", content: "Summarise the attached report in three bullet points.".repeat(20) }] };
const bodyBytes = Buffer.byteLength(JSON.stringify(body));

function call(id: string): GateCall {
  return { id, provider: "openai", model: "gpt-4o", body, bodyBytes, team: "search", project: "web", feature: "summarize", user: "u-1", session: null, tags: {}, api_key_id: "key-1" };
}

function event(id: string): UsageEvent {
  return {
    source: "proxy",
    id,
    ts: new Date(),
    provider: "openai",
    model: "gpt-4o",
    tokens: { ...ZERO_TOKENS, input: 300, output: 200 },
    service_tier: "standard",
    reported_cost: null,
    latency_ms: 300,
    status: "ok",
    team: "search",
    project: "web",
    feature: "summarize",
    user: "u-1",
    session: null,
    api_key_id: "key-1",
    tags: {},
    request_id: null,
  };
}

async function timeGate(gate: BudgetGate, builder: EventBuilder, calls: number): Promise<{ us: number[]; waited: number }> {
  const us: number[] = [];
  let waited = 0;
  for (let i = 0; i < calls; i++) {
    const id = `c-${i}`;
    const done = event(id);
    const started = process.hrtime.bigint();
    let verdict = gate.check(call(id));
    if (verdict instanceof Promise) {
      waited++;
      verdict = await verdict;
    }
    if (!verdict.admitted) throw new Error(`benchmark call refused by ${verdict.block.budget}`);
    // The proxy builds (and so prices) the call's event once, then settles with it: both are timed.
    const built = builder.build(done);
    verdict.hold.settle(built.ok ? [built.event] : []);
    us.push(Number(process.hrtime.bigint() - started) / 1000);
    if (i % 256 === 255) await yieldToLoop();
  }
  return { us: us.sort((a, b) => a - b), waited };
}

const row = (budgets: number, timed: { us: number[]; waited: number }): GateBenchRow => ({
  budgets,
  calls: timed.us.length,
  p50Us: Math.round(percentile(timed.us, 50) * 10) / 10,
  p99Us: Math.round(percentile(timed.us, 99) * 10) / 10,
  waited: timed.waited,
});

export async function benchBudgetGate(options: { calls?: number; sizes?: number[] } = {}): Promise<{ open: GateBenchRow; enforced: GateBenchRow[] }> {
  const calls = options.calls ?? 50_000;
  const catalog = loadCatalog();
  const builder = eventBuilder((e) => priceEvent(catalog, e));
  const logger = createLogger("silent");
  const open = row(0, await timeGate(OPEN_GATE, builder, calls));
  const enforced: GateBenchRow[] = [];
  for (const size of options.sizes ?? [1, 10, 1000]) {
    const database = await openDatabase({ dataDir: "memory://" });
    await migrate(database);
    const budgets = new BudgetStore(database);
    await budgets.transaction(async (store) => {
      for (const input of budgetInputs(size)) await store.create(input, "bench");
    });
    const gate = new Enforcer({
      database,
      catalog,
      budgets,
      logger,
      // Leases large enough that no timed call waits for one: the check alone is measured.
      options: { ...enforcerOptions(loadConfig({})), leaseCap: 1_000_000n * USD },
    });
    await gate.start();
    await timeGate(gate, builder, 1000); // warm: the first call takes the lease, the JIT settles
    enforced.push(row(size, await timeGate(gate, builder, calls)));
    await gate.close();
    await database.close();
  }
  return { open, enforced };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await benchBudgetGate());
