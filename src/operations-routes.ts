import { Router } from "express";
import { sql } from "drizzle-orm";
import type { Database } from "./db/connection.ts";
import { migrationsApplied } from "./db/migrate.ts";
import { within } from "./deadline.ts";
import type { UsageSink } from "./ledger/journal-drain.ts";
import { registry } from "./metrics.ts";

/**
 * Liveness, readiness and Prometheus metrics: unauthenticated, for orchestrators and scrapers.
 * Readiness asks the database within `timeoutMs`: a database that does not answer is as unreachable
 * as one that refuses, and the probe must answer either way.
 */
export function operationsRouter(database: Database, usage: Pick<UsageSink, "status">, timeoutMs: number | undefined): Router {
  const router = Router();
  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/readyz", async (_req, res) => {
    const migrated = await within(
      database.rows(sql`select 1 as ok`).then(
        () => migrationsApplied(database),
        () => undefined,
      ),
      timeoutMs,
    ).catch(() => undefined);
    // Without its database the gateway still proxies, journaling usage to disk: degraded, not down.
    if (migrated === undefined) return res.json({ status: "degraded", database: "unreachable", journal: usage.status() });
    res.status(migrated ? 200 : 503).json({ status: migrated ? "ok" : "starting", database: "reachable", migrations: migrated ? "applied" : "pending", journal: usage.status() });
  });
  router.get("/metrics", async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return router;
}
