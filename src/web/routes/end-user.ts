import type { Router } from "express";
import { actorText } from "../../approvals/members.ts";
import { parseUserId, sendUserExport } from "../../ledger/user-data-routes.ts";
import { eraseUserUsage, userFootprint } from "../../ledger/user-data.ts";
import { page } from "../layout.ts";
import type { PageKit } from "../page-kit.ts";
import { endUserPage, erasePage, erasedPage } from "../pages/end-user.ts";

/**
 * One end user's data, for admins: look up an id, export their events through the admin API's
 * own export, erase them through its own erasure after the id is typed again. The user travels
 * in the query or the form (ids may hold any character but NUL), never in the path.
 */
export function endUserRoutes(router: Router, kit: PageKit): void {
  const p = kit.parts;
  const title = "End user data";

  router.get(
    "/users",
    kit.signedIn("admin", async (req, res, viewer) => {
      const raw = req.query.user;
      if (raw === undefined || raw === "") return kit.send(res, 200, page(kit.shell(viewer, title, "/users"), endUserPage("", undefined)));
      const parsed = parseUserId(raw);
      if (!parsed.ok) return kit.send(res, 400, page(kit.shell(viewer, title, "/users"), endUserPage(typeof raw === "string" ? raw : "", undefined, parsed.errors)));
      kit.send(res, 200, page(kit.shell(viewer, title, "/users"), endUserPage(parsed.user, await userFootprint(p.database, parsed.user))));
    }),
  );

  router.get(
    "/users/usage.ndjson",
    kit.signedIn("admin", async (req, res, viewer) => {
      const parsed = parseUserId(req.query.user);
      if (!parsed.ok) return kit.send(res, 400, page(kit.shell(viewer, title, "/users"), endUserPage("", undefined, parsed.errors)));
      res.set("cache-control", "no-store");
      await sendUserExport(res, p.database, p.logger, parsed.user, actorText(viewer.actor));
    }),
  );

  router.get(
    "/users/erase",
    kit.signedIn("admin", async (req, res, viewer) => {
      const parsed = parseUserId(req.query.user);
      if (!parsed.ok) return kit.send(res, 400, page(kit.shell(viewer, title, "/users"), endUserPage("", undefined, parsed.errors)));
      kit.send(res, 200, page(kit.shell(viewer, `Erase ${parsed.user}`, "/users"), erasePage(parsed.user, await userFootprint(p.database, parsed.user), viewer.session.csrf, false)));
    }),
  );

  router.post(
    "/users/erase",
    kit.form,
    kit.signedIn("admin", async (req, res, viewer) => {
      const parsed = parseUserId(req.body?.user);
      if (!parsed.ok) return kit.send(res, 400, page(kit.shell(viewer, title, "/users"), endUserPage("", undefined, parsed.errors)));
      const user = parsed.user;
      if (req.body?.confirm !== user)
        return kit.send(res, 400, page(kit.shell(viewer, `Erase ${user}`, "/users"), erasePage(user, await userFootprint(p.database, user), viewer.session.csrf, true)));
      const erasure = await eraseUserUsage(p.database, user, actorText(viewer.actor));
      kit.send(res, 200, page(kit.shell(viewer, `Erased ${user}`, "/users"), erasedPage(erasure)));
    }),
  );
}
