import { Router } from "express";
import type { Database } from "../db/connection.ts";
import { budgetStatus } from "../budgets/status.ts";
import type { BudgetStore } from "../budgets/store.ts";
import { sendProblem } from "../problem.ts";

/** `GET /api/budgets/:id/status`, by id or name: spend, percent, forecast, state, top contributors. */
export function budgetStatusRouter(database: Database, store: BudgetStore): Router {
  const router = Router();
  router.get("/budgets/:id/status", async (req, res) => {
    const budget = await store.find(req.params.id);
    if (!budget) return sendProblem(res, 404, "Not Found", `no budget ${req.params.id}`);
    res.json(await budgetStatus(database, budget, new Date()));
  });
  return router;
}
