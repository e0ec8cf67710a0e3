import { type Response, Router } from "express";
import { ApplyRequest, applyBudgets, desiredOf } from "../budgets/apply.ts";
import { BudgetInput } from "../budgets/budget.ts";
import { budgetJson } from "../budgets/budget-json.ts";
import { patchOf } from "../budgets/patch.ts";
import { type BudgetChange, type BudgetStore, inputOf } from "../budgets/store.ts";
import { sendProblem } from "../problem.ts";
import { actorOf } from "./audit.ts";
import { parseBody } from "./keys-routes.ts";

const BudgetPatchRequest = BudgetInput.partial();

function answer(res: Response, change: BudgetChange, status = 200): void {
  if (change.ok) {
    res.status(status).json(budgetJson(change.budget));
    return;
  }
  if (change.kind === "not_found") return sendProblem(res, 404, "Not Found", change.message);
  sendProblem(res, 409, "Conflict", change.message);
}

/** /api/budgets: create, list, show (by id or name), change some fields, delete, and apply a declared set. */
export function budgetsRouter(store: BudgetStore): Router {
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
    if (!outcome.ok) return sendProblem(res, 409, "Conflict", outcome.message);
    res.json({ dry_run: body.dry_run, applied: outcome.applied, ...outcome.plan });
  });

  router.get("/budgets/:id", async (req, res) => {
    const budget = await store.find(req.params.id);
    if (!budget) return sendProblem(res, 404, "Not Found", `no budget ${req.params.id}`);
    res.json(budgetJson(budget));
  });

  // Only the fields given change; a new amount counts at once against the spend already made.
  router.patch("/budgets/:id", async (req, res) => {
    const body = parseBody(BudgetPatchRequest, req, res);
    if (!body) return;
    const patch = patchOf(req.body as object, body);
    if (Object.keys(patch).length === 0)
      return sendProblem(res, 400, "Bad Request", "nothing to change", { errors: [{ path: "", message: "give at least one field to change" }] });
    answer(res, await store.update(req.params.id, (current) => ({ ...inputOf(current), ...patch }), actorOf(req)));
  });

  router.delete("/budgets/:id", async (req, res) => {
    answer(res, await store.remove(req.params.id, actorOf(req)));
  });

  return router;
}
