import type { Request, RequestHandler, Response } from "express";
import type { Role } from "../approvals/members.ts";
import type { Scope } from "../budgets/budget.ts";
import type { Html } from "./html.ts";
import type { PageShell } from "./layout.ts";
import type { ReadParts } from "./reads.ts";
import type { WebParts } from "./routes.ts";
import type { Viewer } from "./viewer.ts";

/**
 * What the dashboard's router gives the routes of each page (src/web/routes/): the gateway's parts,
 * sending a page with the security headers, its shell, the sign-in and CSRF and role check, and the
 * scope a viewer looks through. Routes in their own files use these rather than their own.
 */
export interface PageKit {
  parts: WebParts;
  reads: ReadParts;
  /** Parses a posted form (urlencoded, small). */
  form: RequestHandler;
  send(res: Response, status: number, body: Html): void;
  shell(viewer: Viewer, title: string, path: string): PageShell;
  /** A page for people signed in with at least `role`; a POST must carry the session's CSRF token. */
  signedIn(role: Role, work: (req: Request, res: Response, viewer: Viewer) => Promise<void>): RequestHandler;
  /** The scope a viewer looks through, or undefined once a page saying they have none was sent. */
  scopeOr(req: Request, res: Response, viewer: Viewer, title: string, path: string): Scope | undefined;
}
