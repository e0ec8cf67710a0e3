import { Router } from "express";
import { sql } from "drizzle-orm";
import type { Database } from "./db/connection.ts";
import { type MigrationState, migrationState } from "./db/migrate.ts";
import { within } from "./deadline.ts";
import type { UsageSink } from "./ledger/journal-drain.ts";
import type { Logger } from "./logger.ts";
import { registry } from "./metrics.ts";

/**
 * Liveness, readiness and Prometheus metrics: unauthenticated, for orchestrators and scrapers.
 * Readiness asks the database within `timeoutMs`: a database that does not answer is as unreachable
 * as one that refuses, and the probe must answer either way.
 */
export function operationsRouter(database: Database, usage: Pick<UsageSink, "status">, timeoutMs: number | undefined, logger: Pick<Logger, "error">): Router {
  const router = Router();
  // Probes come every few seconds: a database a newer build migrated is logged once, not per probe.
  let toldAhead = false;
  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/readyz", async (_req, res) => {
    const migrations = await within(
      database.rows(sql`select 1 as ok`).then(
        () => migrationState(database),
        () => undefined,
      ),
      timeoutMs,
    ).catch(() => undefined);
    // Without its database the gateway still proxies, journaling usage to disk: degraded, not down.
    if (migrations === undefined) return res.json({ status: "degraded", database: "unreachable", journal: usage.status() });
    if (migrations.state === "ahead" && !toldAhead) {
      toldAhead = true;
      logger.error({ detail: migrations.detail }, "the database was migrated by a newer Tollgate while this one runs; /readyz answers 503 until this gateway is replaced");
    }
    res.status(migrations.state === "applied" ? 200 : 503).json({ ...readiness(migrations), database: "reachable", journal: usage.status() });
  });
  router.get("/metrics", async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return router;
}

/** The readiness answer's status and migrations fields for where the migrations stand. */
function readiness(migrations: MigrationState) {
  if (migrations.state === "applied") return { status: "ok", migrations: "applied" };
  if (migrations.state === "pending") return { status: "starting", migrations: "pending" };
  return { status: "outdated", migrations: "ahead", detail: migrations.detail };
}
