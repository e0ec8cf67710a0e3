import { Router } from "express";
import { sql } from "drizzle-orm";
import type { Database } from "../db/connection.ts";
import { migrationsApplied } from "../db/migrate.ts";
import { registry } from "../metrics.ts";

/** Liveness, readiness and Prometheus metrics: unauthenticated, for orchestrators and scrapers. */
export function operationsRouter(database: Database): Router {
  const router = Router();
  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/readyz", async (_req, res) => {
    const reachable = await database.rows(sql`select 1 as ok`).then(
      () => true,
      () => false,
    );
    const migrated = reachable && (await migrationsApplied(database));
    res.status(reachable && migrated ? 200 : 503).json({ database: reachable ? "reachable" : "unreachable", migrations: migrated ? "applied" : "pending" });
  });
  router.get("/metrics", async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return router;
}
