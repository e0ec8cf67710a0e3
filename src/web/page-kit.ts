import type { Request, RequestHandler, Response } from "express";
import type { Role } from "../approvals/members.ts";
import type { Html } from "./html.ts";
import type { PageShell } from "./layout.ts";
import type { Viewer } from "./viewer.ts";

/** What a group of dashboard pages defined in a file of its own needs of the dashboard's router. */
export interface PageKit {
  /** Sends a page with the dashboard's security headers (no script, no framing, no-store). */
  send(res: Response, status: number, body: Html): void;
  /** The frame of a page for `viewer`: their navigation, name and sign-out form. */
  shell(viewer: Viewer, title: string, path: string): PageShell;
  /** A handler for people signed in with at least `role`, with the CSRF token checked on POST. */
  signedIn(role: Role, work: (req: Request, res: Response, viewer: Viewer) => Promise<void>): RequestHandler;
  /** Parses a posted form (small, flat). */
  form: RequestHandler;
}
