import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Budget } from "../src/budgets/budget.ts";
import { HardBudget } from "../src/budgets/hard-budget.ts";
import { leaseTarget } from "../src/budgets/leases.ts";
import { requestedOutput, reservationFor, roundedInput } from "../src/budgets/reservation.ts";
import { ZERO_TOKENS } from "../src/ledger/event.ts";
import { createCatalog, priceEvent } from "../src/pricing/index.ts";

/*
 * The pure parts of hard budgets: what a call holds while in flight, how big a lease is, and how
 * one budget's state in a process moves across a period's end. Fixed clocks throughout.
 */

const catalog = createCatalog();
const at = new Date("2026-03-10T12:00:00Z");
const policy = { unknownModel: 100_000_000_000n, defaultOutputTokens: 65_536 };
const USD = 1_000_000_000_000n;

const shape = (provider: string, model: string | undefined, body: Record<string, unknown>) => ({
  provider,
  model,
  body,
  bodyBytes: Buffer.byteLength(JSON.stringify(body)),
});

describe("what a call holds", () => {
  test("gpt-4o with max_tokens: input at the dearest input rate for the body's bytes, output at the output rate", () => {
    const body = { model: "gpt-4o", max_tokens: 300, messages: [{ role: "user", content: "x".repeat(1300) }] };
    // 1,377 bytes rounded up to 1,408 (steps of 128 between 1,024 and 2,048) × $2.50/M + 300 × $10/M.
    assert.equal(reservationFor(catalog, shape("openai", "gpt-4o", body), policy, at), 1408n * 2_500_000n + 300n * 10_000_000n);
  });

  test("it never falls short of what the call can really cost", () => {
    const body = { model: "claude-sonnet-4-5", max_tokens: 1000, messages: [{ role: "user", content: "y".repeat(5000) }] };
    const held = reservationFor(catalog, shape("anthropic", "claude-sonnet-4-5", body), policy, at);
    // The dearest way 5,000 input tokens can be billed (all one-hour cache writes) and all 1,000 output.
    const tokens = { ...ZERO_TOKENS, input: 5000, cache_write: 5000, cache_write_1h: 5000, output: 1000 };
    const real = priceEvent(catalog, { provider: "anthropic", model: "claude-sonnet-4-5", ts: at, tokens, service_tier: "standard" });
    assert.ok(held >= real.cost, `${held} ≥ ${real.cost}`);
  });

  test("without an output cap the model's context window bounds the answer; several answers count in full", () => {
    const one = reservationFor(catalog, shape("openai", "gpt-4o", { model: "gpt-4o", messages: [] }), policy, at);
    assert.equal(one, 1024n * 2_500_000n + 128_000n * 10_000_000n);
    const three = reservationFor(catalog, shape("openai", "gpt-4o", { model: "gpt-4o", n: 3, max_completion_tokens: 100 }), policy, at);
    assert.equal(three, 1024n * 2_500_000n + 300n * 10_000_000n);
  });

  test("priority processing holds twice the standard rates", () => {
    const standard = reservationFor(catalog, shape("openai", "gpt-4o", { max_tokens: 100 }), policy, at);
    const priority = reservationFor(catalog, shape("openai", "gpt-4o", { max_tokens: 100, service_tier: "priority" }), policy, at);
    assert.equal(priority, 2n * standard);
  });

  test("an unknown model holds the configured default; a body-less request holds nothing", () => {
    assert.equal(reservationFor(catalog, shape("openai", "my-finetune-xyz", { max_tokens: 10 }), policy, at), policy.unknownModel);
    assert.equal(reservationFor(catalog, { provider: "openai", model: undefined, body: undefined, bodyBytes: 0 }, policy, at), 0n);
  });

  test("output caps are read from each API's own field", () => {
    assert.deepEqual(requestedOutput({ max_completion_tokens: 50, max_tokens: 20 }), { tokens: 50, answers: 1 });
    assert.deepEqual(requestedOutput({ max_output_tokens: 70 }), { tokens: 70, answers: 1 });
    assert.deepEqual(requestedOutput({ generationConfig: { maxOutputTokens: 80, candidateCount: 2 } }), { tokens: 80, answers: 2 });
    assert.deepEqual(requestedOutput({ max_tokens: "lots", n: -1 }), { tokens: undefined, answers: 1 });
  });

  test("input sizes round up by at most an eighth", () => {
    assert.equal(roundedInput(10), 1024);
    assert.equal(roundedInput(1025), 1152);
    assert.equal(roundedInput(1_000_000), 1_048_576);
    for (const n of [1500, 33_333, 777_777]) assert.ok(roundedInput(n) >= n && roundedInput(n) <= n * 1.125);
  });
});

describe("how much of the room a process takes", () => {
  test("half the room split between holders, capped, but what waiting calls need if it fits", () => {
    assert.equal(leaseTarget(100n * USD, 1, 10n * USD, 0n), 10n * USD);
    assert.equal(leaseTarget(8n * USD, 2, 10n * USD, 0n), 2n * USD);
    assert.equal(leaseTarget(8n * USD, 2, 10n * USD, 5n * USD), 5n * USD);
    assert.equal(leaseTarget(8n * USD, 2, 10n * USD, 9n * USD), 8n * USD);
    assert.equal(leaseTarget(-1n, 1, 10n * USD, 1n), 0n);
  });
});

describe("one hard budget in one process", () => {
  const budget: Budget = {
    id: "b1",
    name: "daily",
    scope: { team: "search" },
    amount: 5n * USD,
    period: "day",
    timezone: "Europe/Berlin",
    thresholds: [100],
    mode: "hard",
    paused: false,
    created_at: at,
    updated_at: at,
  };
  // Berlin's last minute of 28 March 2026; the night after, clocks go forward an hour.
  const lastMinute = new Date("2026-03-28T22:59:30Z");
  const exhausted = (now: Date) => {
    const b = new HardBudget(budget, now);
    b.applySync({ granted: 0n, ceiling: 0n, spend: 5n * USD, holders: 1, inLedger: [], recorded: 0n, consumed: 0n }, { generation: 0, at: 0 }, 60_000);
    return b;
  };

  test("an exhausted budget refuses until its period ends, then a new period starts from a sync", () => {
    const b = exhausted(lastMinute);
    assert.equal(b.fit(1n, 1), "exhausted");
    assert.equal(b.roll(Date.parse("2026-03-28T22:59:59.999Z")), false);
    assert.equal(b.roll(Date.parse("2026-03-28T23:00:00Z")), true);
    assert.equal(b.fit(1n, 1), "sync");
    // The new Berlin day is 23 hours long.
    assert.deepEqual([b.period.start.toISOString(), b.period.end.toISOString()], ["2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z"]);
  });

  test("a raise makes the next call sync first; a sync from before the period ended is ignored", () => {
    const b = exhausted(lastMinute);
    b.redefine({ ...budget, amount: 6n * USD, updated_at: new Date(at.getTime() + 1) }, lastMinute);
    assert.equal(b.fit(1n, 1), "sync");
    b.roll(Date.parse("2026-03-29T00:00:00Z"));
    const stale = b.applySync({ granted: USD, ceiling: USD, spend: 5n * USD, holders: 1, inLedger: [], recorded: 0n, consumed: 0n }, { generation: 0, at: 0 }, 60_000);
    assert.equal(stale, false);
    assert.equal(b.fit(1n, 1), "sync");
  });

  test("a call's real cost stays counted until the ledger has it; a lease lapses without renewal", () => {
    const b = new HardBudget(budget, lastMinute);
    b.applySync({ granted: 2n * USD, ceiling: 3n * USD, spend: 2n * USD, holders: 1, inLedger: [], recorded: 0n, consumed: 0n }, { generation: 0, at: 1000 }, 60_000);
    b.inflight += 2n * USD;
    assert.equal(b.fit(1n, 1000), "sync", "beyond the lease but within the room: ask for more");
    b.finish("call-1", 2n * USD, USD);
    assert.equal(b.available(), USD);
    b.applySync({ granted: 2n * USD, ceiling: 2n * USD, spend: 3n * USD, holders: 1, inLedger: ["call-1"], recorded: USD, consumed: 0n }, { generation: 0, at: 2000 }, 60_000);
    assert.equal(b.available(), 2n * USD);
    assert.equal(b.fit(USD, 2000 + 29_999), "ok");
    assert.equal(b.fit(USD, 2000 + 30_000), "sync");
  });

  /** A budget synced with a lease of 2 USD and a room of 3, with one call of 1 USD finished. */
  const oneFinished = () => {
    const b = new HardBudget(budget, lastMinute);
    b.applySync({ granted: 2n * USD, ceiling: 3n * USD, spend: 2n * USD, holders: 1, inLedger: [], recorded: 0n, consumed: 0n }, { generation: 0, at: 1000 }, 60_000);
    b.inflight += 2n * USD;
    b.finish("call-1", 2n * USD, USD);
    return b;
  };

  test("a call the recorder committed keeps its cost held until a sync reads the spend that has it, and gives it back once", () => {
    const b = oneFinished();
    b.committed("call-1");
    assert.equal(b.finished.size, 0, "no entry per call waits for the sync");
    assert.equal(b.available(), USD, "the spend this process knows is the last sync's: the call still counts");
    assert.equal(b.fit(USD + 1n, 1000), "sync");
    b.committed("call-1");
    b.committed("call-unknown");
    assert.equal(b.available(), USD, "a second report of the call, or one of a call not held here, changes nothing");
    // The sync counted the committed sum as spend (3 USD now) and took it off the lease.
    b.applySync({ granted: 2n * USD, ceiling: 2n * USD, spend: 3n * USD, holders: 1, inLedger: [], recorded: USD, consumed: 0n }, { generation: 0, at: 2000 }, 60_000);
    assert.equal(b.used(), 0n);
    assert.equal(b.available(), 2n * USD);
  });

  test("a call committed while a sync ran leaves the count once, whether the sync found it by id or not", () => {
    const b = oneFinished();
    b.finish("call-2", 0n, USD);
    // The sync measured both calls as finished; then the recorder committed both.
    b.committed("call-1");
    b.committed("call-2");
    // It found call-1 in the ledger by id, not call-2 (written after its look-up): call-2 stays held.
    b.applySync({ granted: 3n * USD, ceiling: 3n * USD, spend: 3n * USD, holders: 1, inLedger: ["call-1"], recorded: USD, consumed: USD }, { generation: 0, at: 2000 }, 60_000);
    assert.equal(b.used(), USD);
    assert.equal(b.available(), 2n * USD);
    // The next sync counts call-2 by the committed sum it measures.
    b.applySync({ granted: 3n * USD, ceiling: 2n * USD, spend: 4n * USD, holders: 1, inLedger: [], recorded: USD, consumed: 0n }, { generation: 0, at: 3000 }, 60_000);
    assert.equal(b.used(), 0n);
    assert.equal(b.available(), 2n * USD);
  });
});
