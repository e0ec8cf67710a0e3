import { type Actor, type Members, type Role, hasRole } from "../approvals/members.ts";
import { type Scope, valueInScope } from "../budgets/budget.ts";
import { DIMENSIONS } from "../ledger/event.ts";
import type { WebSession } from "./sessions.ts";

/** The person behind a dashboard request, as of this request: roles and scopes are read afresh each time. */
export interface Viewer {
  session: WebSession;
  name: string;
  role: Role;
  /** Who decisions are made as (the approvals service checks the role again itself). */
  actor: Actor;
  /** The scopes a viewer may see, one at a time; undefined for the roles that see all spend. */
  scopes: Scope[] | undefined;
}

/** The session's person now; undefined when an OpenID Connect member has been removed since signing in. */
export async function viewerOf(session: WebSession, members: Members): Promise<Viewer | undefined> {
  if (session.kind === "admin") return { session, name: session.name, role: "admin", actor: { kind: "admin", label: `admin:${session.name}` }, scopes: undefined };
  const member = await members.find("oidc", session.subject);
  if (!member) return undefined;
  return {
    session,
    name: member.name ?? session.name,
    role: member.role,
    actor: { kind: "member", platform: "oidc", userId: session.subject, name: session.name },
    scopes: member.role === "viewer" ? member.scopes : undefined,
  };
}

export const may = (viewer: Viewer, needed: Role) => hasRole(viewer.role, needed);

/** Whether all spend of `inner` lies inside `outer`: each dimension `outer` fixes, `inner` fixes to a value within it. */
export function withinScope(inner: Scope, outer: Scope): boolean {
  return DIMENSIONS.every((d) => {
    const wanted = outer[d];
    const value = inner[d];
    return wanted === undefined || (value !== undefined && valueInScope(d, wanted, value));
  });
}

/**
 * The scope a request looks through: everything for the roles that see all spend, else the
 * viewer's scope chosen by index (`?scope=1`), the first by default; undefined when a viewer has none.
 */
export function lookingThrough(viewer: Viewer, chosen: unknown): { scope: Scope; index: number } | undefined {
  if (!viewer.scopes) return { scope: {}, index: 0 };
  const index = typeof chosen === "string" && /^\d{1,2}$/.test(chosen) ? Number(chosen) : 0;
  const scope = viewer.scopes[index];
  return scope ? { scope, index } : undefined;
}
