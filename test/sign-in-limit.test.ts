import assert from "node:assert/strict";
import { type IncomingHttpHeaders, request } from "node:http";
import { after, before, describe, test } from "node:test";
import { FailureLimit, SIGN_IN_LIMITS } from "../src/http/failure-limit.ts";
import { ADMIN_TOKEN, type TestGateway, startTestGateway } from "./helpers/gateway.ts";

/*
 * Guessing the admin token is limited: per client address and overall, in memory of bounded
 * size, at the dashboard's sign-in form, its OpenID Connect return and the admin API alike.
 * Requests come from several loopback addresses (127.0.0.x) to be told apart by the gateway.
 */

describe("FailureLimit", () => {
  const limits = { perAddress: 3, overall: 5, windowMs: 60_000, trustMs: 3_600_000 };

  test("an address is refused after its failures, with the wait until its window closes; others are not", () => {
    let now = 1_000_000;
    const limit = new FailureLimit(limits, () => now);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(limit.admit("a"), { ok: true });
      limit.fail("a");
      now += 1000;
    }
    assert.deepEqual(limit.admit("a"), { ok: false, retryAfterSeconds: 57, reason: "address" });
    assert.deepEqual(limit.admit("b"), { ok: true });
    now = 1_000_000 + 60_000;
    assert.deepEqual(limit.admit("a"), { ok: true }, "the window closed");
  });

  test("past the overall limit every address is refused until the overall window closes", () => {
    let now = 0;
    const limit = new FailureLimit(limits, () => now);
    for (const address of ["a", "b", "c", "d", "e"]) limit.fail(address);
    assert.deepEqual(limit.admit("fresh"), { ok: false, retryAfterSeconds: 60, reason: "overall" });
    now = 60_000;
    assert.deepEqual(limit.admit("fresh"), { ok: true });
  });

  test("an address that succeeded lately is spared the overall limit, not its own", () => {
    let now = 0;
    const limit = new FailureLimit(limits, () => now);
    limit.succeed("known");
    for (const address of ["a", "b", "c", "d", "e"]) limit.fail(address);
    assert.equal(limit.admit("fresh").ok, false);
    assert.deepEqual(limit.admit("known"), { ok: true });
    now = 60_000;
    for (let i = 0; i < 3; i++) limit.fail("known");
    assert.deepEqual(limit.admit("known"), { ok: false, retryAfterSeconds: 60, reason: "address" });
    now = 3_600_000;
    for (const address of ["a", "b", "c", "d", "e"]) limit.fail(address);
    assert.equal(limit.admit("known").ok, false, "trust lapses");
  });

  test("memory stays bounded however many addresses fail: at most twice the overall limit", () => {
    let now = 0;
    const limit = new FailureLimit({ perAddress: 10, overall: 100, windowMs: 60_000, trustMs: 60_000 }, () => now);
    for (let i = 0; i < 100_000; i++) {
      limit.fail(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
      now += 7;
      assert.ok(limit.size <= 200, `${limit.size} addresses held`);
    }
  });
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** An HTTP request to the gateway from the loopback address `from`. */
function from(address: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(gw.base + path, { method: init.method ?? "GET", headers: init.headers, localAddress: address }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on("error", reject);
    req.end(init.body);
  });
}

/** Posts the sign-in form with `token` from `address`, with the form's own cookie and CSRF token. */
async function signIn(address: string, token: string): Promise<Answer> {
  const form = await from(address, "/sign-in");
  const cookie = (form.headers["set-cookie"] ?? []).map((c) => c.split(";")[0]!).join("; ");
  const csrf = /name="_csrf" value="([^"]+)"/.exec(form.text)?.[1] ?? "";
  return from(address, "/sign-in", {
    method: "POST",
    headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ _csrf: csrf, token, name: "Guess Work", next: "/" }).toString(),
  });
}

let gw: TestGateway;

describe("sign-in limits at the gateway", () => {
  before(async () => {
    gw = await startTestGateway({
      TOLLGATE_JOBS: "off",
      // Never reached: the limit answers before any provider would be asked.
      TOLLGATE_OIDC_ISSUER: "http://127.0.0.1:9/",
      TOLLGATE_OIDC_CLIENT_ID: "dashboard",
      TOLLGATE_OIDC_CLIENT_SECRET: "a-client-secret-of-some-length",
    });
  });
  after(() => gw?.close());

  test("wrong tokens from one address get 429 with retry-after, even the right one then; the right token from another address still signs in", async () => {
    for (let i = 0; i < SIGN_IN_LIMITS.perAddress; i++) assert.equal((await signIn("127.0.0.2", `wrong-${i}`)).status, 401);
    const refused = await signIn("127.0.0.2", "wrong-again");
    assert.equal(refused.status, 429);
    const wait = Number(refused.headers["retry-after"]);
    assert.ok(wait > 0 && wait <= SIGN_IN_LIMITS.windowMs / 1000, `retry-after ${wait}`);
    assert.match(refused.text, /Too many failed sign-ins from this address; try again in 15 minutes\./);
    assert.equal((await signIn("127.0.0.2", ADMIN_TOKEN)).status, 429, "a right guess is not told apart while refused");
    const api = await from("127.0.0.2", "/api/keys", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(api.status, 429, "the admin API is the same token's other door");
    assert.equal(JSON.parse(api.text).code, "too_many_requests");

    const other = await signIn("127.0.0.3", ADMIN_TOKEN);
    assert.equal(other.status, 303);
    assert.ok((other.headers["set-cookie"] ?? []).some((c) => c.startsWith("tollgate_session=")));
    assert.equal((await from("127.0.0.3", "/api/keys", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status, 200);
  });

  test("wrong bearer tokens at the admin API count against the sign-in form too; no token at all is no guess", async () => {
    for (let i = 0; i < 20; i++) assert.equal((await from("127.0.0.4", "/api/keys")).status, 401);
    for (let i = 0; i < SIGN_IN_LIMITS.perAddress; i++) assert.equal((await from("127.0.0.4", "/api/keys", { headers: { authorization: `Bearer guess-${i}` } })).status, 401);
    assert.equal((await signIn("127.0.0.4", ADMIN_TOKEN)).status, 429);
  });

  test("failed OpenID Connect returns count too, and a refused address cannot start one", async () => {
    for (let i = 0; i < SIGN_IN_LIMITS.perAddress; i++) assert.equal((await from("127.0.0.5", "/auth/oidc/callback?code=guess&state=x")).status, 400);
    const callback = await from("127.0.0.5", "/auth/oidc/callback?code=guess&state=x");
    assert.equal(callback.status, 429);
    assert.ok(Number(callback.headers["retry-after"]) > 0);
    assert.equal((await from("127.0.0.5", "/auth/oidc")).status, 429);
  });

  test("past the overall limit a new address is refused, while one that signed in before still signs in", async () => {
    // 127.0.0.2, .4 and .5 have failed their ten above (30 of the 100); 127.0.0.3 signed in.
    for (let a = 10; a < 20; a++)
      for (let i = 0; i < SIGN_IN_LIMITS.perAddress; i++) await from(`127.0.0.${a}`, "/api/keys", { headers: { authorization: `Bearer overall-${i}` } });
    const fresh = await signIn("127.0.0.30", ADMIN_TOKEN);
    assert.equal(fresh.status, 429);
    assert.match(fresh.text, /Too many failed sign-ins at this gateway/);
    assert.equal((await signIn("127.0.0.3", ADMIN_TOKEN)).status, 303);
  });
});
