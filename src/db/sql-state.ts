/*
 * What a database error is, read off the error the driver gave (drizzle wraps it in an error that
 * quotes the whole query, so the driver's is found down the cause chain).
 */

/** The errors down a cause chain, outermost first. */
export function* causes(err: unknown): Generator<unknown> {
  for (let e = err; e !== undefined && e !== null; e = (e as { cause?: unknown }).cause) yield e;
}

/**
 * The SQLSTATE of an error the database itself returned; undefined for a broken link or a
 * timeout. Both drivers give the database's errors a severity; a refused or reset connection has
 * a `code` too (ECONNREFUSED, CONNECTION_CLOSED), which is not a SQLSTATE, so the severity decides.
 */
export function sqlState(err: unknown): string | undefined {
  for (const e of causes(err)) {
    const { code, severity } = e as { code?: unknown; severity?: unknown };
    if (typeof code === "string" && typeof severity === "string") return code;
  }
  return undefined;
}

/**
 * Whether a SQLSTATE refuses the statement's data itself (data exceptions, constraints, program
 * limits such as an index row too large), which only some events can cause. Every other refusal is
 * about the server's state, whatever the events: read-only, out of disk, memory or connections, a
 * lock, a schema this build does not know, an operator's shutdown.
 */
export function refusesTheData(code: string): boolean {
  const cls = code.slice(0, 2);
  return cls === "22" || cls === "23" || cls === "54";
}

/** The class of a SQLSTATE (its first two characters), as PostgreSQL's appendix A names them. */
export function sqlStateClass(code: string): string {
  return SQLSTATE_CLASSES[code.slice(0, 2)] ?? `class ${code.slice(0, 2)}`;
}
const SQLSTATE_CLASSES: Record<string, string> = {
  "08": "connection_exception",
  "22": "data_exception",
  "23": "integrity_constraint_violation",
  "25": "invalid_transaction_state",
  "40": "transaction_rollback",
  "42": "syntax_error_or_access_rule_violation",
  "53": "insufficient_resources",
  "54": "program_limit_exceeded",
  "55": "object_not_in_prerequisite_state",
  "57": "operator_intervention",
  "58": "system_error",
  XX: "internal_error",
};
