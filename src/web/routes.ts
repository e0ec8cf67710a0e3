import { randomBytes, timingSafeEqual } from "node:crypto";
import express, { type Request, type Response, Router } from "express";
import type { OutboxNotifier } from "../alerts/outbox.ts";
import { auditPage } from "../audit/log.ts";
import type { Role } from "../approvals/members.ts";
import type { Config } from "../config.ts";
import type { Database } from "../db/connection.ts";
import { DIMENSIONS, type Dimension } from "../ledger/event.ts";
import { resolvePeriod } from "../ledger/period.ts";
import { financeReport, reportCsv } from "../ledger/report.ts";
import type { Logger } from "../logger.ts";
import type { Services } from "../services.ts";
import { chartFigure } from "./chart-figure.ts";
import { CookieSigner, cookieHeader, readCookies } from "./cookies.ts";
import { type Html, type HtmlValue, html } from "./html.ts";
import { type NavItem, money, page, table, when } from "./layout.ts";
import type { OidcSignIn, OidcTransaction } from "./oidc.ts";
import type { PageKit } from "./page-kit.ts";
import { type ExploreForm, approvalsTable, exploreForm, exploreResult, overviewPage, periodField, periodHelp, problemPage, scopeNote, unpricedPage } from "./pages.ts";
import { readOverview } from "./reads.ts";
import { alertRoutes } from "./routes/alerts.ts";
import { budgetRoutes } from "./routes/budgets.ts";
import type { WebSessions } from "./sessions.ts";
import { type Viewer, lookingThrough, may, viewerOf } from "./viewer.ts";

export interface WebParts {
  config: Config;
  logger: Logger;
  database: Database;
  services: Services;
  /** The alerts outbox, listed and resent on the alerts page as `/api/outbox` does. */
  outbox: OutboxNotifier;
  sessions: WebSessions;
  adminToken: string;
  /** Keys the cookies' signatures, so a cookie from another gateway is refused. */
  masterKey: Buffer;
  oidc: OidcSignIn | undefined;
  /** Seconds a session lasts. */
  sessionSeconds: number;
}

const SESSION = "tollgate_session";
const SIGN_IN = "tollgate_signin";
const OIDC = "tollgate_oidc";

/** No script, no framing, nothing fetched from elsewhere: the pages are self-contained. */
const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
};

const sameText = (a: string, b: string) => {
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length === y.length && timingSafeEqual(x, y);
};

/** Only a path of this site: `//evil.example` and `/\evil` would leave it. */
const localPath = (next: unknown) => (typeof next === "string" && /^\/(?![/\\])[^\s]*$/.test(next) ? next : "/");

const NAV: { item: NavItem; role: Role }[] = [
  { item: { href: "/", label: "Overview" }, role: "viewer" },
  { item: { href: "/explore", label: "Explore spend" }, role: "viewer" },
  { item: { href: "/budgets", label: "Budgets" }, role: "viewer" },
  { item: { href: "/alerts", label: "Alerts" }, role: "viewer" },
  { item: { href: "/unpriced", label: "Unpriced usage" }, role: "viewer" },
  { item: { href: "/approvals", label: "Approvals" }, role: "requester" },
  { item: { href: "/audit", label: "Audit log" }, role: "admin" },
];

/**
 * The dashboard at `/`: sign-in by admin token or OpenID Connect, then pages rendered on the
 * server from the same services as the admin API and chat. Every form carries the session's CSRF
 * token; every change goes through the domain's service, audited under the person's name.
 */
export function webRouter(p: WebParts): Router {
  const router = Router();
  const sessionCookie = new CookieSigner(p.masterKey, "session");
  const signInCookie = new CookieSigner(p.masterKey, "sign-in");
  const oidcCookie = new CookieSigner(p.masterKey, "oidc");
  const secure = (req: Request) => req.secure || p.config.TOLLGATE_URL?.startsWith("https:") === true;
  const form = express.urlencoded({ extended: false, limit: "16kb", parameterLimit: 50 });
  const timeZone = p.config.TOLLGATE_TIMEZONE;
  const reads = { database: p.database, services: p.services, timeZone };

  const send = (res: Response, status: number, body: Html) => res.status(status).set(SECURITY_HEADERS).type("html").send(body.text);

  const shell = (viewer: Viewer, title: string, path: string) => ({
    title,
    path,
    nav: NAV.filter((n) => may(viewer, n.role)).map((n) => n.item),
    who: { name: viewer.name, role: viewer.role, csrf: viewer.session.csrf },
  });

  /** The sign-in page, with a fresh token for its form in a cookie of its own (no session exists yet). */
  const signInPage = (req: Request, res: Response, status: number, error?: string) => {
    const nonce = randomBytes(18).toString("base64url");
    res.append("set-cookie", cookieHeader(SIGN_IN, signInCookie.sign(nonce), { maxAge: 3600, secure: secure(req), path: "/sign-in" }));
    const next = localPath(req.query.next ?? req.body?.next);
    const oidcName = p.oidc?.settings.name;
    send(
      res,
      status,
      page(
        { title: "Sign in", path: "/sign-in", nav: [] },
        html`<div class="signin"><h1>Sign in to Tollgate</h1>
${error ? html`<p class="error" role="alert">${error}</p>` : ""}
${oidcName ? html`<p><a class="primary" href="/auth/oidc?next=${encodeURIComponent(next)}">Sign in with ${oidcName}</a></p><h2>Or with the admin token</h2>` : ""}
<form method="post" action="/sign-in"><input type="hidden" name="_csrf" value="${nonce}"><input type="hidden" name="next" value="${next}">
<label for="name">Your name, for the audit log</label><input id="name" name="name" autocomplete="name" maxlength="100">
<label for="token">Admin token</label><input id="token" name="token" type="password" autocomplete="current-password" required>
<p><button class="primary" type="submit">Sign in</button></p></form></div>`,
      ),
    );
  };

  const startSession = async (req: Request, res: Response, identity: Parameters<WebSessions["create"]>[0], next: string) => {
    const session = await p.sessions.create(identity);
    res.append("set-cookie", cookieHeader(SESSION, sessionCookie.sign(session.id), { maxAge: p.sessionSeconds, secure: secure(req) }));
    res.redirect(303, next);
  };

  const guard = <R extends Request>(work: (req: R, res: Response) => Promise<void>) => async (req: R, res: Response) => {
    try {
      await work(req, res);
    } catch (err) {
      // Only the kind: database errors carry parameters, which hold usage contents.
      p.logger.error({ error: (err as Error).name, reqId: res.locals.requestId }, "dashboard page failed");
      if (!res.headersSent) send(res, 500, page({ title: "Error", path: "", nav: [] }, problemPage("Something went wrong", `The request id is ${res.locals.requestId}.`)));
    }
  };

  /** A page for people signed in with at least `role`; others are sent to sign in, or told they may not. */
  const signedIn = (role: Role, work: (req: Request, res: Response, viewer: Viewer) => Promise<void>) =>
    guard(async (req: Request, res: Response) => {
      const id = sessionCookie.verify(readCookies(req.get("cookie")).get(SESSION));
      const session = id ? await p.sessions.find(id) : undefined;
      const viewer = session ? await viewerOf(session, p.services.members) : undefined;
      if (!viewer) {
        if (req.method !== "GET") return void send(res, 403, page({ title: "Signed out", path: "", nav: [] }, problemPage("Signed out", "Your session has ended; sign in again.")));
        return res.redirect(303, `/sign-in?next=${encodeURIComponent(req.originalUrl)}`);
      }
      if (req.method === "POST" && !(typeof req.body?._csrf === "string" && sameText(req.body._csrf, viewer.session.csrf)))
        return void send(res, 403, page(shell(viewer, "Refused", ""), problemPage("Refused", "This form is out of date or did not come from this dashboard (its CSRF token does not match); reload the page and try again.")));
      if (!may(viewer, role))
        return void send(res, 403, page(shell(viewer, "Not allowed", ""), problemPage("Not allowed", `This page needs the ${role} role; you are a ${viewer.role}.`)));
      await work(req, res, viewer);
    });

  /** The scope a viewer looks through, or a page saying they have been given none. */
  const scopeOr = (req: Request, res: Response, viewer: Viewer, title: string, path: string) => {
    const through = lookingThrough(viewer, req.query.scope);
    if (!through) send(res, 403, page(shell(viewer, title, path), problemPage(title, "You have not been given any scope of spend to see; ask an admin to add one to your member entry.")));
    return through?.scope;
  };

  // The pages whose routes live in files of their own (src/web/routes/).
  const kit: PageKit = { parts: p, reads, form, send, shell, signedIn, scopeOr };
  budgetRoutes(router, kit);
  alertRoutes(router, kit);

  const notSetUp = (res: Response) => void send(res, 404, page({ title: "Not set up", path: "", nav: [] }, problemPage("Not set up", "This gateway has no OpenID Connect provider configured.")));

  router.get("/sign-in", guard(async (req, res) => signInPage(req, res, 200)));

  router.post(
    "/sign-in",
    form,
    guard(async (req, res) => {
      const nonce = signInCookie.verify(readCookies(req.get("cookie")).get(SIGN_IN));
      if (!nonce || typeof req.body?._csrf !== "string" || !sameText(req.body._csrf, nonce)) return signInPage(req, res, 403, "The sign-in form had expired; please try again.");
      const token = typeof req.body.token === "string" ? req.body.token : "";
      if (!sameText(token, p.adminToken)) return signInPage(req, res, 401, "That is not this gateway's admin token.");
      const given = typeof req.body.name === "string" ? req.body.name.trim() : "";
      const name = /^[^\u0000-\u001f\u007f]{1,100}$/.test(given) ? given : "admin";
      await startSession(req, res, { kind: "admin", subject: name, name }, localPath(req.body.next));
    }),
  );

  router.get(
    "/auth/oidc",
    guard(async (req, res) => {
      if (!p.oidc) return notSetUp(res);
      const { url, transaction } = await p.oidc.start(callbackUrl(req), localPath(req.query.next));
      const value = Buffer.from(JSON.stringify(transaction)).toString("base64url");
      res.append("set-cookie", cookieHeader(OIDC, oidcCookie.sign(value), { maxAge: 600, secure: secure(req), path: "/auth/oidc" }));
      res.redirect(303, url.href);
    }),
  );

  const callbackUrl = (req: Request) => `${p.config.TOLLGATE_URL?.replace(/\/$/, "") ?? `${req.protocol}://${req.get("host")}`}/auth/oidc/callback`;

  router.get(
    "/auth/oidc/callback",
    guard(async (req, res) => {
      if (!p.oidc) return notSetUp(res);
      res.append("set-cookie", cookieHeader(OIDC, "", { maxAge: 0, secure: secure(req), path: "/auth/oidc" }));
      const value = oidcCookie.verify(readCookies(req.get("cookie")).get(OIDC));
      if (!value) return signInPage(req, res, 400, "The sign-in took too long or was started elsewhere; please start again.");
      const transaction = JSON.parse(Buffer.from(value, "base64url").toString()) as OidcTransaction;
      let person;
      try {
        const query = new URL(req.originalUrl, "http://callback").search;
        person = await p.oidc.finish(new URL(callbackUrl(req) + query), transaction);
      } catch (err) {
        p.logger.warn({ error: (err as Error).name, code: (err as { code?: string }).code }, "OpenID Connect sign-in refused");
        return signInPage(req, res, 401, `${p.oidc.settings.name} did not confirm the sign-in; please try again.`);
      }
      for (const id of person.ids) {
        const member = await p.services.members.find("oidc", id);
        if (member) return startSession(req, res, { kind: "oidc", subject: member.user_id, name: member.name ?? person.name }, localPath(transaction.next));
      }
      signInPage(req, res, 403, `${person.ids[0]} is not a member of this gateway; ask an admin to add oidc:${person.ids[0]} with a role.`);
    }),
  );

  router.post(
    "/sign-out",
    form,
    signedIn("viewer", async (req, res, viewer) => {
      await p.sessions.revoke(viewer.session);
      res.append("set-cookie", cookieHeader(SESSION, "", { maxAge: 0, secure: secure(req) }));
      res.redirect(303, "/sign-in");
    }),
  );

  router.get(
    "/",
    signedIn("viewer", async (req, res, viewer) => {
      const scope = scopeOr(req, res, viewer, "Overview", "/");
      if (!scope) return;
      const overview = await readOverview(reads, scope, new Date());
      send(res, 200, page(shell(viewer, "Overview", "/"), overviewPage(overview, scope, (q) => `/explore?${new URLSearchParams(q)}`)));
    }),
  );

  router.get(
    "/explore",
    signedIn("viewer", async (req, res, viewer) => {
      const scope = scopeOr(req, res, viewer, "Explore spend", "/explore");
      if (!scope) return;
      const text = (v: unknown) => (typeof v === "string" ? v.trim().slice(0, 200) : "");
      const by = (DIMENSIONS as readonly string[]).includes(text(req.query.by)) ? (text(req.query.by) as Dimension) : "";
      const filters = Object.fromEntries(DIMENSIONS.flatMap((d) => (text(req.query[d]) ? [[d, text(req.query[d])]] : []))) as ExploreForm["filters"];
      const formValues: ExploreForm = { period: text(req.query.period) || "this-month", by, filters };
      const resolved = resolvePeriod(formValues.period, { now: new Date(), timeZone });
      const body: HtmlValue[] = [html`<h1>Explore spend</h1>`, scopeNote(scope), exploreForm(formValues, scope)];
      if (!resolved.ok) return void send(res, 400, page(shell(viewer, "Explore spend", "/explore"), [...body, html`<p class="error" role="alert">${resolved.error.message}; expected ${resolved.error.expected}.</p>`]));
      const report = await p.services.spend.report({ period: resolved.period, by: by || undefined, filters: { ...filters, ...scope }, top: 50 });
      const chart = by
        ? chartFigure({ id: "explore", kind: "bar", title: `Spend in ${report.period.label} by ${by}`, labels: report.groups.map((g) => g.key), series: [{ name: "spend", values: report.groups.map((g) => g.cost) }] })
        : html``;
      const csv = may(viewer, "requester") ? `/explore.csv?${new URLSearchParams({ period: formValues.period })}` : undefined;
      send(res, 200, page(shell(viewer, "Explore spend", "/explore"), [...body, exploreResult(report, by, csv, chart)]));
    }),
  );

  /** The finance report (team, project, model), as `/api/reports/finance.csv` answers it: all spend, so not for viewers. */
  router.get(
    "/explore.csv",
    signedIn("requester", async (req, res) => {
      const resolved = resolvePeriod(typeof req.query.period === "string" ? req.query.period : "last-month", { now: new Date(), timeZone });
      if (!resolved.ok) return void res.status(400).type("text/plain").send(`${resolved.error.message}; expected ${resolved.error.expected}`);
      res.type("text/csv").attachment(`tollgate-${resolved.period.label}.csv`).send(reportCsv(await financeReport(p.database, resolved.period)));
    }),
  );

  router.get(
    "/unpriced",
    signedIn("viewer", async (req, res, viewer) => {
      const scope = scopeOr(req, res, viewer, "Unpriced usage", "/unpriced");
      if (!scope) return;
      const text = typeof req.query.period === "string" && req.query.period.trim() ? req.query.period.trim().slice(0, 200) : "this-month";
      const form = html`<form class="filters" method="get" action="/unpriced">${periodField(text)}<button class="primary" type="submit">Show</button></form>${periodHelp}`;
      const resolved = resolvePeriod(text, { now: new Date(), timeZone });
      if (!resolved.ok) return void send(res, 400, page(shell(viewer, "Unpriced usage", "/unpriced"), html`<h1>Unpriced usage</h1>${form}<p class="error" role="alert">${resolved.error.message}; expected ${resolved.error.expected}.</p>`));
      const report = await p.services.spend.report({ period: resolved.period, by: "model", filters: scope, top: 1000 });
      send(res, 200, page(shell(viewer, "Unpriced usage", "/unpriced"), [scopeNote(scope), unpricedPage(report, form)]));
    }),
  );

  const approvalsPage = async (res: Response, viewer: Viewer, status: number, notice?: Html) => {
    const all = await p.services.approvals.list({ limit: 100 });
    const pending = all.filter((a) => a.status === "pending");
    const decide = may(viewer, "approver") ? { csrf: viewer.session.csrf } : undefined;
    send(
      res,
      status,
      page(
        shell(viewer, "Approvals", "/approvals"),
        html`<h1>Approvals</h1>${notice ?? ""}<h2>Waiting for a decision</h2>${approvalsTable(pending, decide)}
<h2>Decided</h2>${approvalsTable(all.filter((a) => a.status !== "pending"), undefined)}`,
      ),
    );
  };

  router.get(
    "/approvals",
    signedIn("requester", async (req, res, viewer) => {
      const decided = typeof req.query.decided === "string" ? await p.services.approvals.get(req.query.decided) : undefined;
      const notice = decided && decided.status !== "pending" ? html`<p class="notice" role="status">The raise of ${decided.budget} to ${money(decided.to_amount)} was ${decided.status}${decided.decided_by ? html` by ${decided.decided_by_name ?? decided.decided_by}` : ""}.</p>` : undefined;
      await approvalsPage(res, viewer, 200, notice);
    }),
  );

  router.post(
    "/approvals/:id/decision",
    form,
    signedIn("approver", async (req, res, viewer) => {
      const decision = req.body?.decision;
      if (decision !== "approve" && decision !== "reject") return approvalsPage(res, viewer, 400, html`<p class="error" role="alert">Choose approve or reject.</p>`);
      const id = String(req.params.id);
      const result = await p.services.approvals.decide(id, { decision, by: viewer.actor }, new Date());
      if (!result.ok) return approvalsPage(res, viewer, result.kind === "forbidden" ? 403 : result.kind === "not_found" ? 404 : result.kind === "invalid" ? 400 : 409, html`<p class="error" role="alert">${result.message}</p>`);
      res.redirect(303, `/approvals?decided=${encodeURIComponent(id)}`);
    }),
  );

  router.get(
    "/audit",
    signedIn("admin", async (req, res, viewer) => {
      const { entries } = await auditPage(p.database, { limit: 100 });
      send(
        res,
        200,
        page(
          shell(viewer, "Audit log", "/audit"),
          html`<h1>Audit log</h1>${table<(typeof entries)[number]>(
            "The latest changes",
            [
              { head: "When", cell: (e) => when(e.at) },
              { head: "Who", cell: (e) => e.actor },
              { head: "Did", cell: (e) => e.action },
              { head: "To", cell: (e) => `${e.entity} ${e.entity_id}` },
            ],
            entries,
          )}`,
        ),
      );
    }),
  );

  return router;
}
