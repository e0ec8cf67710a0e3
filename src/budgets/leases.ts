import { type SQL, sql } from "drizzle-orm";
import { type Database, rowsOf } from "../db/connection.ts";
import type { Period } from "../ledger/period.ts";
import { arrayLiteral } from "../db/arrays.ts";
import type { Budget } from "./budget.ts";
import { spendForBudgets } from "./spend-batch.ts";

/*
 * Leases of a hard budget, one row per gateway process (holder) and period in budget_leases: the
 * share of what is left that the holder may spend without asking Postgres. Every grant happens
 * with the budget's row locked, after reading the ledger's spend and every other holder's lease,
 * so spend in the ledger plus all leases never exceeds the amount when a grant is made.
 *
 * A holder's lease covers its calls still in flight or not yet in the ledger. Each sync looks up
 * which of its finished calls the ledger has by now, just before reading the spend: those, and the
 * calls the holder's recorder reported committed (by their sum), leave the lease, since the spend
 * counts them instead. A call written between the two readings counts twice for one sync, which
 * only makes a budget stop early.
 */

export interface LeaseSync {
  budget: Budget;
  period: Period;
  holder: string;
  /**
   * Read once the budget is locked: pico-USD the holder's calls in flight hold, the real cost of
   * each finished call (by ledger id, source `proxy`) the holder does not know to be in the ledger,
   * and the summed real cost of those its recorder committed (already in the ledger: the spend,
   * read after, counts them).
   */
  measure(): { inflight: bigint; finished: ReadonlyMap<string, bigint>; committed: bigint };
  /** pico-USD the holder gave up before this sync (it no longer spends from it). */
  released: bigint;
  /** pico-USD the holder's waiting calls need on top of what it has unused. */
  want: bigint;
  /** The most a holder takes ahead of need. */
  cap: bigint;
  /** false to hand back everything unused and drop the row once nothing is held. */
  keep: boolean;
  ttlMs: number;
}

export interface LeaseState {
  /** The finished calls the ledger had, found by id: they no longer count against the lease. */
  inLedger: string[];
  /** What left the lease as now in the ledger: the cost of `inLedger` and the committed sum measured. */
  recorded: bigint;
  /** What the holder's calls held that the ledger did not have, as the sync counted it. */
  consumed: bigint;
  /** The holder's lease after the sync: its consumption plus what it may still spend. */
  granted: bigint;
  /** amount − ledger spend − other holders' leases: the most the holder's consumption may reach. */
  ceiling: bigint;
  spend: bigint;
  holders: number;
}

/**
 * How much a holder keeps unused: half of the room it could have, split between the live holders,
 * at most `cap` — but what its waiting calls need if the room allows. Near the end of a budget
 * the shares shrink with the room, so little is stranded in idle processes.
 */
export function leaseTarget(room: bigint, holders: number, cap: bigint, want: bigint): bigint {
  if (room <= 0n) return 0n;
  const share = room / (2n * BigInt(Math.max(1, holders)));
  const ahead = share < cap ? share : cap;
  const target = want > ahead ? want : ahead;
  return target < room ? target : room;
}

const max = (a: bigint, b: bigint) => (a > b ? a : b);

/** Renews (or hands back) one holder's lease of one budget's period, in one transaction. */
export async function syncLease(database: Database, s: LeaseSync): Promise<LeaseState | undefined> {
  const start = s.period.start.toISOString();
  return database.db.transaction(async (tx) => {
    const q = async <T extends Record<string, unknown>>(query: SQL) => rowsOf<T>(await tx.execute(query));
    // The lock every grant of this budget takes, and the one a budget change takes.
    const [row] = await q<{ amount: string }>(sql`select amount::text as amount from budgets where id = ${s.budget.id} for update`);
    if (!row) return undefined;
    // Expired leases (their holder is gone or cut off) and earlier periods' leases free their share.
    await q(sql`delete from budget_leases where budget_id = ${s.budget.id}
      and (expires_at < now() or period_start < ${start}::timestamptz)`);
    const leases = await q<{ holder: string; granted: string }>(sql`select holder, granted::text as granted
      from budget_leases where budget_id = ${s.budget.id} and period_start = ${start}::timestamptz`);
    const { inflight, finished, committed } = s.measure();
    const calls = [...finished];
    const inLedger = calls.length === 0 ? new Set<string>() : new Set(
      (await q<{ id: string }>(sql`select id from usage_events where source = 'proxy' and id = any(${arrayLiteral(calls.map(([id]) => id))}::text[])`)).map((r) => r.id),
    );
    let consumed = inflight;
    let recorded = committed;
    for (const [id, cost] of calls) {
      if (inLedger.has(id)) recorded += cost;
      else consumed += cost;
    }
    // Read after the calls were looked up: one written in between counts twice, never not at all.
    const [spent] = await spendForBudgets({ rows: q }, [s.budget], s.period.start);
    const spend = spent?.spend ?? 0n;
    let others = 0n;
    let mine = 0n;
    for (const lease of leases) {
      if (lease.holder === s.holder) mine = BigInt(lease.granted);
      else others += BigInt(lease.granted);
    }
    const ceiling = BigInt(row.amount) - spend - others;
    const holders = leases.filter((l) => l.holder !== s.holder).length + 1;
    // Never below what the holder's calls hold: a lease that expired under it still covers them.
    const outstanding = max(consumed, mine - recorded - s.released);
    const unused = outstanding - consumed;
    const target = s.keep ? leaseTarget(ceiling - consumed, holders, s.cap, s.want) : 0n;
    const granted = s.keep ? outstanding + max(0n, target - unused) : consumed;
    if (!s.keep && granted === 0n)
      await q(sql`delete from budget_leases where budget_id = ${s.budget.id} and period_start = ${start}::timestamptz and holder = ${s.holder}`);
    else
      await q(sql`insert into budget_leases (budget_id, period_start, holder, granted, expires_at)
        values (${s.budget.id}, ${start}::timestamptz, ${s.holder}, ${granted.toString()}::numeric, now() + ${s.ttlMs}::int * interval '1 millisecond')
        on conflict (budget_id, period_start, holder)
        do update set granted = excluded.granted, expires_at = excluded.expires_at`);
    return { granted, ceiling, spend, holders, inLedger: [...inLedger], recorded, consumed };
  });
}

/** Extends every lease of a holder; answers which (budget id, period start in ms) it still holds. */
export async function renewLeases(database: Database, holder: string, ttlMs: number): Promise<Set<string>> {
  const rows = await database.rows<{ budget_id: string; start_ms: string }>(sql`
    update budget_leases set expires_at = now() + ${ttlMs}::int * interval '1 millisecond'
    where holder = ${holder}
    returning budget_id, (extract(epoch from period_start) * 1000)::bigint::text as start_ms`);
  return new Set(rows.map((r) => leaseKey(r.budget_id, Number(r.start_ms))));
}

export const leaseKey = (budgetId: string, periodStartMs: number) => `${budgetId} ${periodStartMs}`;

/** Drops a holder's leases (of one budget, or all): for a budget no longer enforced, or at shutdown. */
export async function dropLeases(database: Database, holder: string, budgetId?: string): Promise<void> {
  await database.rows(sql`delete from budget_leases where holder = ${holder}
    ${budgetId === undefined ? sql`` : sql`and budget_id = ${budgetId}`}`);
}
