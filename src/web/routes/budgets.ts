import type { Response, Router } from "express";
import { recentFirings } from "../../alerts/firings.ts";
import { actorText } from "../../approvals/members.ts";
import { auditPage } from "../../audit/log.ts";
import { BudgetInput } from "../../budgets/budget.ts";
import { type BudgetChange, inputOf } from "../../budgets/store.ts";
import { ERROR_KINDS } from "../../errors.ts";
import { html } from "../html.ts";
import { page } from "../layout.ts";
import type { PageKit } from "../page-kit.ts";
import { budgetsTable, problemPage, scopeNote } from "../pages.ts";
import { type BudgetFormValues, type FieldErrors, budgetForm, budgetPage, budgetRequest, budgetValues, formErrors, newBudgetValues, postedValues } from "../pages/budgets.ts";
import { visibleBudgets } from "../reads.ts";
import { type Viewer, may, withinScope } from "../viewer.ts";

/** What each change says on the budget's page afterwards. */
const DONE: Record<string, string> = { created: "Budget created.", updated: "Budget saved.", paused: "Budget paused: it neither alerts nor blocks until resumed.", resumed: "Budget resumed." };

/**
 * The budget pages: the list, one budget with its history, and for admins the forms that create,
 * edit, pause and resume one. Changes go through the budget store as `/api/budgets` makes them,
 * checked by the same schema and audited under the person's name.
 */
export function budgetRoutes(router: Router, kit: PageKit): void {
  const { parts, send, shell, signedIn, scopeOr, form } = kit;
  const budgets = parts.services.budgets;

  router.get(
    "/budgets",
    signedIn("viewer", async (req, res, viewer) => {
      const scope = scopeOr(req, res, viewer, "Budgets", "/budgets");
      if (!scope) return;
      const standings = await parts.services.spend.standings(await visibleBudgets(kit.reads, scope), new Date());
      const create = may(viewer, "admin") ? html`<p><a href="/budgets/new">New budget</a></p>` : "";
      send(res, 200, page(shell(viewer, "Budgets", "/budgets"), html`<h1>Budgets</h1>${scopeNote(scope)}${create}${budgetsTable(standings)}`));
    }),
  );

  const formPage = (res: Response, viewer: Viewer, status: number, title: string, action: string, values: BudgetFormValues, errors: FieldErrors, submit: string) =>
    send(res, status, page(shell(viewer, title, "/budgets"), html`<h1>${title}</h1>${budgetForm({ action, csrf: viewer.session.csrf, values, errors, submit })}`));

  /** A refused change back on its form: a taken name at the name field, anything else above the form. */
  const refused = (change: Exclude<BudgetChange, { ok: true }>): FieldErrors => new Map([[change.kind === "conflict" ? "name" : "", change.message]]);

  const after = (res: Response, change: BudgetChange & { ok: true }, done: keyof typeof DONE) => res.redirect(303, `/budgets/${encodeURIComponent(change.budget.id)}?done=${done}`);

  router.get(
    "/budgets/new",
    signedIn("admin", async (_req, res, viewer) => formPage(res, viewer, 200, "New budget", "/budgets", newBudgetValues(kit.reads.timeZone), new Map(), "Create budget")),
  );

  router.post(
    "/budgets",
    form,
    signedIn("admin", async (req, res, viewer) => {
      const values = postedValues(req.body);
      const request = budgetRequest(values);
      const parsed = BudgetInput.safeParse(request);
      if (!parsed.success) return formPage(res, viewer, 400, "New budget", "/budgets", values, formErrors(parsed.error.issues, request), "Create budget");
      const change = await budgets.create(parsed.data, actorText(viewer.actor));
      if (!change.ok) return formPage(res, viewer, ERROR_KINDS[change.kind].status, "New budget", "/budgets", values, refused(change), "Create budget");
      after(res, change, "created");
    }),
  );

  router.get(
    "/budgets/:id",
    signedIn("viewer", async (req, res, viewer) => {
      const scope = scopeOr(req, res, viewer, "Budget", "/budgets");
      if (!scope) return;
      const budget = await budgets.find(String(req.params.id));
      if (!budget || !withinScope(budget.scope, scope)) return void send(res, 404, page(shell(viewer, "Budget", "/budgets"), problemPage("No such budget", `There is no budget ${req.params.id} you may see.`)));
      const admin = may(viewer, "admin");
      const [[standing], firings, raises, changes] = await Promise.all([
        parts.services.spend.standings([budget], new Date()),
        recentFirings(parts.database, { limit: 50, budget: budget.id }),
        parts.services.approvals.list({ budgetId: budget.id, limit: 100 }),
        admin ? auditPage(parts.database, { entity: "budget", entity_id: budget.id, limit: 50 }) : undefined,
      ]);
      const done = typeof req.query.done === "string" && Object.hasOwn(DONE, req.query.done) ? DONE[req.query.done] : undefined;
      const manage = admin ? { csrf: viewer.session.csrf } : undefined;
      send(res, 200, page(shell(viewer, budget.name, "/budgets"), budgetPage({ budget, standing, firings, raises, changes: changes?.entries, manage, notice: done })));
    }),
  );

  const editTitle = (name: string) => `Edit budget ${name}`;

  router.get(
    "/budgets/:id/edit",
    signedIn("admin", async (req, res, viewer) => {
      const budget = await budgets.find(String(req.params.id));
      if (!budget) return void send(res, 404, page(shell(viewer, "Budget", "/budgets"), problemPage("No such budget", `There is no budget ${req.params.id}.`)));
      formPage(res, viewer, 200, editTitle(budget.name), `/budgets/${encodeURIComponent(budget.id)}`, budgetValues(budget), new Map(), "Save budget");
    }),
  );

  router.post(
    "/budgets/:id",
    form,
    signedIn("admin", async (req, res, viewer) => {
      const id = String(req.params.id);
      const values = postedValues(req.body);
      const request = budgetRequest(values);
      const parsed = BudgetInput.safeParse(request);
      const title = editTitle(values.name || id);
      const action = `/budgets/${encodeURIComponent(id)}`;
      if (!parsed.success) return formPage(res, viewer, 400, title, action, values, formErrors(parsed.error.issues, request), "Save budget");
      // The form has every field but paused: pausing is its own button, and an edit keeps it.
      const change = await budgets.update(id, (current) => ({ ...parsed.data, paused: current.paused }), actorText(viewer.actor));
      if (!change.ok) return formPage(res, viewer, ERROR_KINDS[change.kind].status, title, action, values, refused(change), "Save budget");
      after(res, change, "updated");
    }),
  );

  for (const [action, paused] of [
    ["pause", true],
    ["resume", false],
  ] as const)
    router.post(
      `/budgets/:id/${action}`,
      form,
      signedIn("admin", async (req, res, viewer) => {
        const change = await budgets.update(String(req.params.id), (current) => ({ ...inputOf(current), paused }), actorText(viewer.actor));
        if (!change.ok) return void send(res, ERROR_KINDS[change.kind].status, page(shell(viewer, "Budget", "/budgets"), problemPage("Not changed", change.message)));
        after(res, change, paused ? "paused" : "resumed");
      }),
    );
}
