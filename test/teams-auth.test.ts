import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { globalAgent } from "node:https";
import { after, before, describe, test } from "node:test";
import { createAdapter } from "../integrations/teams/bot.ts";
import { teamsDeliverer } from "../integrations/teams/deliver.ts";
import { teamsSettings } from "../integrations/teams/settings.ts";
import { teamsIntegration } from "../integrations/teams/index.ts";
import { loadConfig } from "../src/config.ts";
import { createLogger } from "../src/logger.ts";
import { type FakeConnector, startFakeConnector } from "./fakes/bot-connector.ts";
import { CONNECTOR_SCOPE, type FakeIdentity, TEST_CERTIFICATE, startFakeIdentity } from "./fakes/bot-identity.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { waitFor } from "./helpers/wait.ts";
import { sampleAlert } from "./helpers/sample-alert.ts";

/*
 * The Bot Framework's authentication both ways, with real credentials (no TEAMS_AUTH=off):
 * botbuilder checks each activity's JWT against the fake identity service's published keys, and
 * gets the bot's own token from its Entra token endpoint through MSAL, over HTTPS with the test
 * certificate. The fake connector answers only calls bearing a token that service issued.
 */

const APP_ID = randomUUID();
const SECRET = "client~secret.0123456789abcdef";
const TENANT = randomUUID();
const CHANNEL = "19:auth0001@thread.tacv2";

let identity: FakeIdentity;
let connector: FakeConnector;
let t: TestGateway;
let seq = 0;

const env = () => ({
  MicrosoftAppId: APP_ID,
  MicrosoftAppPassword: SECRET,
  MicrosoftAppTenantId: TENANT,
  TEAMS_LOGIN_URL: identity.loginUrl,
  TEAMS_OPENID_METADATA_URL: identity.openIdMetadataUrl,
});

function activity(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: "message",
    id: `auth-${seq++}`,
    timestamp: new Date().toISOString(),
    channelId: "msteams",
    serviceUrl: connector.serviceUrl,
    from: { id: "29:aad-ann", name: "Ann", aadObjectId: "aad-ann" },
    recipient: { id: `28:${APP_ID}`, name: "Tollgate" },
    conversation: { id: "a:personal-ann", conversationType: "personal", tenantId: TENANT },
    channelData: { tenant: { id: TENANT } },
    text: "help",
    ...extra,
  };
}

async function post(body: Record<string, unknown>, authorization?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${t.base}/api/messages`, { method: "POST", headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) }, body: JSON.stringify(body) });
  return { status: res.status, text: await res.text() };
}

const validToken = () => identity.channelToken({ aud: APP_ID, serviceurl: connector.serviceUrl });
const bearerOf = (headers: Record<string, unknown>) => /^Bearer (\S+)$/.exec(String(headers.authorization ?? ""))?.[1];

before(async () => {
  // What NODE_EXTRA_CA_CERTS would do for a gateway behind a private CA: MSAL and the key fetch use Node's default agent.
  globalAgent.options.ca = TEST_CERTIFICATE;
  identity = await startFakeIdentity();
  identity.registerApp({ appId: APP_ID, secret: SECRET, tenant: TENANT });
  connector = await startFakeConnector();
  connector.requireTokens(identity.issued);
  t = await startTestGateway({ ...env(), TOLLGATE_OUTBOX_RETRY_SCHEDULE: "5ms,10ms,20ms,20ms,20ms,20ms,20ms" }, { integrations: [teamsIntegration()] });
});

after(async () => {
  await t?.close();
  await connector?.close();
  await identity?.close();
});

describe("Teams authentication", () => {
  test("the cloud's addresses must be https URLs", () => {
    assert.throws(() => teamsSettings(loadConfig({ TEAMS_LOGIN_URL: "http://login.example" })), /TEAMS_LOGIN_URL: .*an https:\/\/ URL/);
    assert.throws(() => teamsSettings(loadConfig({ TEAMS_OPENID_METADATA_URL: "login.botframework.com" })), /TEAMS_OPENID_METADATA_URL: .*an https:\/\/ URL/);
  });

  test("an activity without a valid Bot Framework token is refused with 401 and does nothing", async () => {
    const other = randomUUID();
    const cases: [string, string | undefined][] = [
      ["no Authorization header", undefined],
      ["not a JWT", "Bearer not-a-token"],
      ["signed with a key the Bot Framework never published", `Bearer ${identity.channelToken({ aud: APP_ID, serviceurl: connector.serviceUrl }, { key: "unknown" })}`],
      ["signed with a key not endorsed for Teams", `Bearer ${identity.channelToken({ aud: APP_ID, serviceurl: connector.serviceUrl }, { key: "unendorsed" })}`],
      ["meant for another bot", `Bearer ${identity.channelToken({ aud: other, serviceurl: connector.serviceUrl })}`],
      ["for another service URL (replies would go elsewhere)", `Bearer ${identity.channelToken({ aud: APP_ID, serviceurl: "https://attacker.example/" })}`],
      ["from another issuer", `Bearer ${identity.channelToken({ aud: APP_ID, serviceurl: connector.serviceUrl, iss: "https://sts.example.com/" })}`],
      ["expired beyond the five minutes of clock skew", `Bearer ${identity.channelToken({ aud: APP_ID, serviceurl: connector.serviceUrl }, { expiresInSeconds: -600 })}`],
    ];
    const calls = connector.calls.length;
    for (const [what, authorization] of cases) {
      const res = await post(activity(), authorization);
      assert.equal(res.status, 401, `${what}: ${res.status} ${res.text}`);
      assert.equal(JSON.parse(res.text).title, "Unauthorized", what);
      assert.doesNotMatch(res.text, /\n\s+at /, `${what}: no stack trace`);
    }
    assert.equal(connector.calls.length, calls, "the bot answered nobody");
    const channels = (await (await t.admin("/api/channels")).json()) as { channels: unknown[] };
    const install = await post(activity({ type: "installationUpdate", action: "add" }));
    assert.equal(install.status, 401);
    assert.equal(((await (await t.admin("/api/channels")).json()) as { channels: unknown[] }).channels.length, channels.channels.length, "an unsigned install binds nothing");
  });

  test("a body that is no activity gets a precise 400", async () => {
    const res = await post({ text: "help" }, `Bearer ${validToken()}`);
    assert.equal(res.status, 400);
    assert.deepEqual(JSON.parse(res.text).errors, [{ path: "type", message: "the activity's type, such as message or invoke" }]);
  });

  test("a signed activity is answered; the reply carries the bot's token, got from Entra in the bot's tenant with its secret", async () => {
    const msg = activity();
    const res = await post(msg, `Bearer ${validToken()}`);
    assert.equal(res.status, 200, res.text);
    const reply = connector.calls.find((c) => c.method === "POST" && c.activityId === msg.id);
    assert.ok(reply, "answered");
    const token = bearerOf(reply.headers);
    assert.ok(token && identity.issued.has(token), "with a token Entra issued");
    const granted = identity.tokenRequests.filter((r) => r.status === 200);
    assert.ok(granted.length >= 1);
    assert.deepEqual(
      { tenant: granted[0]!.tenant, client_id: granted[0]!.form.client_id, client_secret: granted[0]!.form.client_secret, scope: granted[0]!.form.scope, grant_type: granted[0]!.form.grant_type },
      { tenant: TENANT, client_id: APP_ID, client_secret: SECRET, scope: CONNECTOR_SCOPE, grant_type: "client_credentials" },
    );
  });

  test("install, then a proactive alert: sent with the bot's token, which is reused rather than asked for each message", async () => {
    const install = activity({ type: "installationUpdate", action: "add", conversation: { id: CHANNEL, conversationType: "channel", isGroup: true, tenantId: TENANT, name: "finance" } });
    assert.equal((await post(install, `Bearer ${validToken()}`)).status, 200);
    await t.admin("/api/members", { method: "PUT", body: JSON.stringify({ platform: "teams", user_id: "aad-ann", role: "approver", name: "Ann" }) });
    const budget = await t.admin("/api/budgets", { method: "POST", body: JSON.stringify({ name: "auth-monthly", scope: { team: "auth" }, amount_usd: "100", period: "month" }) });
    assert.equal(budget.status, 201, await budget.clone().text());
    const granted = () => identity.tokenRequests.filter((r) => r.status === 200).length;
    const before = granted();
    for (const to of ["150", "175"]) {
      const raise = await t.admin("/api/approvals", { method: "POST", body: JSON.stringify({ budget: "auth-monthly", amount_usd: to, reason: `to ${to}`, requested_by: "admin" }) });
      assert.equal(raise.status, 201, await raise.clone().text());
      if (to === "150") {
        const { id } = (await raise.json()) as { id: string };
        // The admin asked, so the admin decides only with a reason (four eyes).
        await t.admin(`/api/approvals/${id}/decision`, { method: "POST", body: JSON.stringify({ decision: "reject", by: "admin", override: "making way for the next raise" }) });
      }
    }
    const proactive = () => connector.calls.filter((c) => c.conversationId === CHANNEL && c.method !== "GET" && !String(c.activityId ?? "").startsWith("auth-"));
    await waitFor("three proactive messages in the channel", () => proactive().filter((c) => /to \$175\.00/.test(JSON.stringify(c.body))).length >= 1 && proactive().length >= 3);
    for (const call of proactive()) assert.ok(identity.issued.has(bearerOf(call.headers) ?? ""), `${call.method} ${call.path} bears an issued token`);
    assert.equal(granted(), before, "the token got for the reply is reused");
  });

  test("a wrong client secret or tenant: delivery is kept for a retry with Entra's reason, and the secret is never in it", async () => {
    const target = { id: "c-auth", platform: "teams", name: "x", address: { service_url: connector.serviceUrl, tenant_id: TENANT, conversation_id: CHANNEL }, secret: null, timezone: "UTC" };
    const alert = sampleAlert();
    const deliver = async (settings: Record<string, string>) => {
      const config = teamsSettings(loadConfig({ ...env(), ...settings, TOLLGATE_DATA_DIR: "/tmp" }));
      const deliverer = teamsDeliverer(createAdapter(config, createLogger("silent")), config, createLogger("silent"));
      return deliverer.deliver(target, { id: 1, dedupeKey: "d", attempt: 1, payload: { alerts: [alert] }, createdAt: new Date() }, { now: new Date(), signal: AbortSignal.timeout(10_000), publicUrl: undefined });
    };
    // Other app ids than the gateway's: botbuilder caches tokens by app id.
    const misconfigured = randomUUID();
    identity.registerApp({ appId: misconfigured, secret: "the-right-secret-0000", tenant: TENANT });
    const wrongSecret = await deliver({ MicrosoftAppId: misconfigured, MicrosoftAppPassword: "wrong-secret-value-000" });
    assert.equal(identity.tokenRequests.at(-1)!.status, 401);
    assert.deepEqual(wrongSecret, {
      kind: "retry",
      message: "Teams sign-in failed: invalid_client (AADSTS7000215: Invalid client secret provided.); check MicrosoftAppId, MicrosoftAppPassword and MicrosoftAppTenantId",
    });
    const wrongTenant = await deliver({ MicrosoftAppId: misconfigured, MicrosoftAppPassword: "the-right-secret-0000", MicrosoftAppTenantId: randomUUID() });
    assert.equal(identity.tokenRequests.at(-1)!.status, 400);
    assert.match(wrongTenant.kind === "retry" ? wrongTenant.message : "", /^Teams sign-in failed: unauthorized_client \(AADSTS700016: Application with identifier '[0-9a-f-]+' was not found in the directory '[0-9a-f-]+'\.\)/);
    assert.doesNotMatch(JSON.stringify([wrongSecret, wrongTenant]), /secret-value|right-secret/);
  });
});
