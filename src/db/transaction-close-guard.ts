import type { Sql, TransactionSql } from "postgres";

type Body = (tx: TransactionSql) => unknown;
/** begin() and savepoint() both take an optional first argument (options, a name) and the body last. */
type Opener = (...args: [...unknown[], Body]) => Promise<unknown>;

/**
 * Keeps postgres.js (3.4.x, up to 3.4.10 and 4.x not checked) from writing to a connection that
 * has closed, which kills the process: when a transaction's body settles, postgres.js writes its
 * COMMIT, ROLLBACK or ROLLBACK TO on the transaction's connection whether or not that connection
 * closed meanwhile; after a close its socket is null, the write (deferred to a setImmediate)
 * throws a TypeError no caller can catch, and the process dies (porsager/postgres#1208, #1154).
 * A body settles after its connection closed when one of its queries fails with the connection,
 * and when it outlives it doing other work (withAdvisoryLock's transaction holds a lock while its
 * work runs over the pool).
 *
 * So a body whose transaction's connection has closed is never settled: postgres.js then writes
 * nothing, and begin() rejects all the same, with CONNECTION_CLOSED, as it races the body against
 * the connection's close. That race is also how the close is known here: begin()'s rejection
 * arrives in the same turn of the event loop as the close, so each body waits for the next turn
 * before it is settled. The body left pending holds nothing but its own closures, freed with them.
 */
export function guardTransactions(client: Sql): void {
  const begin = client.begin.bind(client) as unknown as Opener;
  (client as unknown as { begin: Opener }).begin = (...args) => {
    const state = { gone: false };
    const body = args.pop() as Body;
    const run = begin(...args, (tx: TransactionSql) => settleWhileOpen(guardSavepoints(tx, state), body, state));
    // begin() rejects at the close, or once the body has settled (the write is then already made).
    run.catch(() => (state.gone = true));
    return run;
  };
}

/** A savepoint's body is settled the same way: its ROLLBACK TO is a write on the same connection. */
function guardSavepoints(tx: TransactionSql, state: { gone: boolean }): TransactionSql {
  const savepoint = tx.savepoint.bind(tx) as unknown as Opener;
  (tx as unknown as { savepoint: Opener }).savepoint = (...args) => {
    const body = args.pop() as Body;
    return savepoint(...args, (inner: TransactionSql) => settleWhileOpen(guardSavepoints(inner, state), body, state));
  };
  return tx;
}

async function settleWhileOpen(tx: TransactionSql, body: Body, state: { gone: boolean }): Promise<unknown> {
  let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: await body(tx) };
  } catch (error) {
    outcome = { ok: false, error };
  }
  await new Promise((next) => setImmediate(next));
  if (state.gone) return new Promise(() => {});
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}
