import { sql } from "drizzle-orm";
import type { Database } from "../../src/db/connection.ts";

/** The actor (as `x-tollgate-actor` names it) whose audit entries `failAuditFor` refuses. */
export const FAILING_ACTOR = "audit-fails";

/**
 * Makes the database refuse every audit entry by `admin:<FAILING_ACTOR>` until the returned
 * function is called: a real database error at the last step of a change, so a test can show the
 * change rolled back with its entry. Changes by anyone else are audited as usual meanwhile.
 */
export async function failAuditFor(database: Database): Promise<() => Promise<void>> {
  const actor = `admin:${FAILING_ACTOR}`.replaceAll("'", "''");
  await database.rows(sql.raw(`create function tollgate_test_refuse_audit() returns trigger language plpgsql as $$ begin raise exception 'audit entry refused by the test'; end $$`));
  await database.rows(sql.raw(`create trigger tollgate_test_refuse_audit before insert on audit_log for each row when (new.actor = '${actor}') execute function tollgate_test_refuse_audit()`));
  return async () => {
    await database.rows(sql.raw("drop trigger tollgate_test_refuse_audit on audit_log"));
    await database.rows(sql.raw("drop function tollgate_test_refuse_audit()"));
  };
}
