import assert from "node:assert/strict";
import { resolveMasterKey } from "../../src/keys/secret-box.ts";
import { CookieSigner } from "../../src/web/cookies.ts";
import { WebSessions } from "../../src/web/sessions.ts";
import { ADMIN_TOKEN, type TestGateway } from "./gateway.ts";

/** The cookies a response sets, as a Cookie header would send them back (removed ones left out). */
export function cookiesOf(res: Response): string {
  return res.headers
    .getSetCookie()
    .map((c) => c.split(";")[0]!)
    .filter((c) => !c.endsWith("="))
    .join("; ");
}

/** The hidden `_csrf` of the first form on a page. */
export function csrfOf(page: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(page);
  assert.ok(m, "the page has a form with a CSRF token");
  return m[1]!;
}

/** Signs in to the dashboard with the admin token as a browser would: the form, its cookie, then the post. */
export async function signInWithToken(base: string, name = "Dana Admin"): Promise<{ cookie: string; res: Response }> {
  const form = await fetch(`${base}/sign-in`);
  const res = await fetch(`${base}/sign-in`, {
    method: "POST",
    redirect: "manual",
    headers: { cookie: cookiesOf(form), "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ _csrf: csrfOf(await form.text()), name, token: ADMIN_TOKEN, next: "/" }),
  });
  assert.equal(res.status, 303, await res.clone().text());
  return { cookie: cookiesOf(res), res };
}

/** The exact decimal USD behind the money shown in the element with this id. */
export function exactMoney(page: string, id: string): string {
  const m = new RegExp(`id="${id}"><data value="([^"]+)">`).exec(page);
  assert.ok(m, `the page shows #${id}`);
  return m[1]!;
}

/**
 * The session cookie of an OpenID Connect member, as the callback would set it after the
 * provider vouched for them: a real session in the gateway's store, signed with its master key.
 * For HTTP tests of what a role may do; test/dashboard-oidc.test.ts signs in through a real provider.
 */
export async function memberSessionCookie(gw: TestGateway, userId: string, name: string): Promise<string> {
  const { config, database } = gw.gateway;
  const session = await new WebSessions(database, 3_600_000).create({ kind: "oidc", subject: userId, name });
  const signer = new CookieSigner(resolveMasterKey(config.TOLLGATE_MASTER_KEY, config.TOLLGATE_DATA_DIR), "session");
  return `tollgate_session=${signer.sign(session.id)}`;
}
