import { type Response, Router } from "express";
import type { Database } from "../db/connection.ts";
import { sendProblem } from "../http/problem.ts";
import { actorOf, parseBody } from "../http/request.ts";
import { ApplyRequest, applyBudgets, desiredOf } from "./apply.ts";
import { BudgetInput } from "./budget.ts";
import { budgetJson } from "./budget-json.ts";
import { patchOf } from "./patch.ts";
import { budgetStatus } from "./status.ts";
import { type BudgetChange, type BudgetStore, inputOf } from "./store.ts";

const BudgetPatchRequest = BudgetInput.partial();

function answer(res: Response, change: BudgetChange, status = 200): void {
  if (change.ok) res.status(status).json(budgetJson(change.budget));
  else sendProblem(res, change.kind, change.message);
}

/**
 * /api/budgets: create, list, show (by id or name), change some fields, delete, apply a declared
 * set, and each budget's status (spend, percent, forecast, state, top contributors).
 */
export function budgetsRouter(store: BudgetStore, database: Database): Router {
  const router = Router();

  router.post("/budgets", async (req, res) => {
    const body = parseBody(BudgetInput, req, res);
    if (body) answer(res, await store.create(body, actorOf(req)), 201);
  });

  router.get("/budgets", async (_req, res) => {
    res.json({ budgets: (await store.list()).map(budgetJson) });
  });

  router.post("/budgets/apply", async (req, res) => {
    const body = parseBody(ApplyRequest, req, res);
    if (!body) return;
    const desired = desiredOf((req.body as { budgets: object[] }).budgets, body.budgets);
    const outcome = await applyBudgets(store, desired, { prune: body.prune, dryRun: body.dry_run, actor: actorOf(req) });
    if (!outcome.ok) return sendProblem(res, outcome.kind, outcome.message);
    res.json({ dry_run: body.dry_run, applied: outcome.applied, ...outcome.plan });
  });

  router.get("/budgets/:id", async (req, res) => {
    const budget = await store.find(req.params.id);
    if (!budget) return sendProblem(res, "not_found", `no budget ${req.params.id}`);
    res.json(budgetJson(budget));
  });

  router.get("/budgets/:id/status", async (req, res) => {
    const budget = await store.find(req.params.id);
    if (!budget) return sendProblem(res, "not_found", `no budget ${req.params.id}`);
    res.json(await budgetStatus(database, budget, new Date()));
  });

  // Only the fields given change; a new amount counts at once against the spend already made.
  router.patch("/budgets/:id", async (req, res) => {
    const body = parseBody(BudgetPatchRequest, req, res);
    if (!body) return;
    const patch = patchOf(req.body as object, body);
    if (Object.keys(patch).length === 0) return sendProblem(res, "invalid", "nothing to change", { errors: [{ path: "", message: "give at least one field to change" }] });
    answer(res, await store.update(req.params.id, (current) => ({ ...inputOf(current), ...patch }), actorOf(req)));
  });

  router.delete("/budgets/:id", async (req, res) => {
    answer(res, await store.remove(req.params.id, actorOf(req)));
  });

  return router;
}
