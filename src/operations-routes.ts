import { Router } from "express";
import { sql } from "drizzle-orm";
import type { Database } from "./db/connection.ts";
import { migrationsApplied } from "./db/migrate.ts";
import type { UsageSink } from "./ledger/usage-sink.ts";
import { registry } from "./metrics.ts";

/** Liveness, readiness and Prometheus metrics: unauthenticated, for orchestrators and scrapers. */
export function operationsRouter(database: Database, usage: Pick<UsageSink, "status">): Router {
  const router = Router();
  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/readyz", async (_req, res) => {
    const reachable = await database.rows(sql`select 1 as ok`).then(
      () => true,
      () => false,
    );
    // Without its database the gateway still proxies, spooling usage to disk: degraded, not down.
    if (!reachable) return res.json({ status: "degraded", database: "unreachable", spool: usage.status() });
    const migrated = await migrationsApplied(database);
    res.status(migrated ? 200 : 503).json({ status: migrated ? "ok" : "starting", database: "reachable", migrations: migrated ? "applied" : "pending", spool: usage.status() });
  });
  router.get("/metrics", async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return router;
}
