import type { Response, Router } from "express";
import type { NotificationStatus } from "../../alerts/outbox.ts";
import { StatusFilter, notificationId } from "../../alerts/outbox-routes.ts";
import type { Scope } from "../../budgets/budget.ts";
import { ERROR_KINDS } from "../../errors.ts";
import { type Html, html } from "../html.ts";
import { page } from "../layout.ts";
import type { PageKit } from "../page-kit.ts";
import { scopeNote } from "../pages.ts";
import { alertsPage, statusFilter } from "../pages/alerts.ts";
import { alertsVisible, visibleBudgets } from "../reads.ts";
import { type Viewer, may } from "../viewer.ts";

const TITLE = "Alerts and deliveries";
const LIMIT = 100;

/**
 * The alerts and deliveries page: the outbox as `/api/outbox` lists it, its dead letters resent
 * by admins through the same `resend`, and the latest alerts. A viewer sees only the messages
 * whose every alert is of a budget inside their scope.
 */
export function alertRoutes(router: Router, kit: PageKit): void {
  const { parts, send, shell, signedIn, scopeOr, form } = kit;
  const { outbox } = parts;

  const show = async (res: Response, viewer: Viewer, scope: Scope, status: NotificationStatus | undefined, httpStatus: number, message?: Html) => {
    const [budgets, dead, messages, recent] = await Promise.all([
      visibleBudgets(kit.reads, scope),
      outbox.list({ status: "dead", limit: LIMIT }),
      outbox.list({ status, limit: LIMIT }),
      parts.services.alerts.recent(LIMIT),
    ]);
    const visible = alertsVisible(budgets, scope);
    // A message carrying an alert of a budget outside the scope is not shown at all; one whose
    // alerts cannot be read (no budget known) only to those who see everything.
    const mine = (n: (typeof messages)[number]) => (n.alerts.length > 0 ? n.alerts.every(visible) : visible({ budget: null }));
    const resend = may(viewer, "admin") ? { csrf: viewer.session.csrf } : undefined;
    send(
      res,
      httpStatus,
      page(
        shell(viewer, TITLE, "/alerts"),
        html`<h1>${TITLE}</h1>${scopeNote(scope)}${alertsPage({ status, dead: dead.filter(mine), messages: messages.filter(mine), recent: recent.filter(visible).slice(0, 30), resend, message })}`,
      ),
    );
  };

  router.get(
    "/alerts",
    signedIn("viewer", async (req, res, viewer) => {
      const scope = scopeOr(req, res, viewer, TITLE, "/alerts");
      if (!scope) return;
      const status = StatusFilter.safeParse(req.query.status || undefined);
      if (!status.success)
        return void send(res, 400, page(shell(viewer, TITLE, "/alerts"), html`<h1>${TITLE}</h1>${statusFilter(undefined)}<p class="error" role="alert">Status: ${status.error.issues[0]!.message}.</p>`));
      const resent = typeof req.query.resent === "string" ? notificationId(req.query.resent) : undefined;
      await show(res, viewer, scope, status.data, 200, resent ? html`<p class="notice" role="status">Message ${resent} will be sent again.</p>` : undefined);
    }),
  );

  router.post(
    "/alerts/deliveries/:id/resend",
    form,
    signedIn("admin", async (req, res, viewer) => {
      const id = notificationId(String(req.params.id));
      if (id === undefined) return show(res, viewer, {}, undefined, 400, html`<p class="error" role="alert">"${req.params.id}" is not a message id; ids are whole numbers.</p>`);
      const result = await outbox.resend(id);
      if (!result.ok) return show(res, viewer, {}, undefined, ERROR_KINDS[result.kind].status, html`<p class="error" role="alert">${result.message}</p>`);
      res.redirect(303, `/alerts?resent=${id}`);
    }),
  );
}
