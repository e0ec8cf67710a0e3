import { type KeyObject, generateKeyPairSync, randomBytes, randomUUID, sign } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { keepConnections } from "../helpers/wait.ts";

/*
 * The two identity services a Teams bot deals with, from Microsoft's documented contracts
 * (https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication):
 *
 * - Connector to bot: the Bot Framework publishes OpenID metadata
 *   (login.botframework.com/v1/.well-known/openidconfiguration → jwks_uri) whose RSA keys carry
 *   `endorsements`, the channel ids each key may sign for. Every activity the connector posts to a
 *   bot has `Authorization: Bearer <JWT>` signed RS256 with one of them: issuer
 *   https://api.botframework.com, audience the bot's app id, a `serviceurl` claim equal to the
 *   activity's serviceUrl, valid within five minutes of clock skew. `channelToken` makes such tokens,
 *   and broken ones.
 * - Bot to connector: the bot trades its app id and client secret for a token at Entra
 *   (POST login.microsoftonline.com/{tenant}/oauth2/v2.0/token, grant_type=client_credentials,
 *   scope https://api.botframework.com/.default), after reading the tenant's OpenID configuration.
 *   Wrong secrets get 401 invalid_client; an app asking at another tenant gets 400 unauthorized_client.
 *
 * Both are served over HTTPS with the test certificate in ./tls (MSAL refuses plain HTTP), so a
 * test trusts that certificate. One server plays both hosts: the gateway is configured with its
 * addresses (TEAMS_LOGIN_URL, TEAMS_OPENID_METADATA_URL).
 */

const TLS_DIR = new URL("./tls/", import.meta.url);
export const TEST_CERTIFICATE = readFileSync(new URL("localhost.crt", TLS_DIR), "utf8");
const TEST_KEY = readFileSync(new URL("localhost.key", TLS_DIR), "utf8");

export const CHANNEL_ISSUER = "https://api.botframework.com";
export const CONNECTOR_SCOPE = "https://api.botframework.com/.default";

/** A signing key: `trusted` is published endorsed for msteams, `unendorsed` is published for another channel only, `unknown` is not published. */
export type SigningKey = "trusted" | "unendorsed" | "unknown";

export interface TokenRequest {
  tenant: string;
  form: Record<string, string>;
  status: number;
}

export interface FakeIdentity {
  /** https://127.0.0.1:PORT: TEAMS_LOGIN_URL. */
  loginUrl: string;
  /** TEAMS_OPENID_METADATA_URL. */
  openIdMetadataUrl: string;
  /** Every token request, answered or refused. */
  tokenRequests: TokenRequest[];
  /** Access tokens handed out, which the fake connector can be told to require. */
  issued: Set<string>;
  /** An app allowed to get tokens, in its tenant. */
  registerApp(app: { appId: string; secret: string; tenant: string }): void;
  /** A connector-to-bot token; claims override the valid ones, `key` and `expiresInSeconds` break it in other ways. */
  channelToken(claims: { aud: string; serviceurl: string } & Record<string, unknown>, options?: { key?: SigningKey; expiresInSeconds?: number }): string;
  close(): Promise<void>;
}

const base64url = (data: Buffer | string) => Buffer.from(data).toString("base64url");

interface Key {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

function newKey(): Key {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { kid: randomBytes(8).toString("hex"), privateKey, publicKey };
}

function jwt(key: Key, payload: Record<string, unknown>): string {
  const head = base64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid: key.kid }));
  const body = base64url(JSON.stringify(payload));
  return `${head}.${body}.${base64url(sign("RSA-SHA256", Buffer.from(`${head}.${body}`), key.privateKey))}`;
}

const jwk = (key: Key, endorsements: string[]) => ({ ...key.publicKey.export({ format: "jwk" }), kty: "RSA", use: "sig", kid: key.kid, endorsements });

export async function startFakeIdentity(): Promise<FakeIdentity> {
  const keys: Record<SigningKey, Key> = { trusted: newKey(), unendorsed: newKey(), unknown: newKey() };
  const apps = new Map<string, { secret: string; tenant: string }>();
  const tokenRequests: TokenRequest[] = [];
  const issued = new Set<string>();
  let base = "";

  const server = createServer({ cert: TEST_CERTIFICATE, key: TEST_KEY }, async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? "/", base);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
      res.end(JSON.stringify(body));
    };
    if (req.method === "GET" && url.pathname === "/v1/.well-known/openidconfiguration")
      return send(200, { issuer: CHANNEL_ISSUER, authorization_endpoint: "https://invalid.botframework.com", jwks_uri: `${base}/v1/.well-known/keys`, id_token_signing_alg_values_supported: ["RS256"], token_endpoint_auth_methods_supported: ["private_key_jwt"] });
    if (req.method === "GET" && url.pathname === "/v1/.well-known/keys") return send(200, { keys: [jwk(keys.trusted, ["msteams", "webchat"]), jwk(keys.unendorsed, ["skype"])] });
    const tenantPath = /^\/([^/]+)\/(v2\.0\/\.well-known\/openid-configuration|oauth2\/v2\.0\/token)$/.exec(url.pathname);
    if (req.method === "GET" && tenantPath?.[2]?.startsWith("v2.0")) {
      const tenant = tenantPath[1]!;
      return send(200, {
        issuer: `${base}/${tenant}/v2.0`,
        authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/authorize`,
        token_endpoint: `${base}/${tenant}/oauth2/v2.0/token`,
        jwks_uri: `${base}/${tenant}/discovery/v2.0/keys`,
        end_session_endpoint: `${base}/${tenant}/oauth2/v2.0/logout`,
        response_types_supported: ["code", "id_token", "token"],
        token_endpoint_auth_methods_supported: ["client_secret_post", "client_secret_basic", "private_key_jwt"],
      });
    }
    if (req.method === "POST" && tenantPath?.[2]?.startsWith("oauth2")) {
      const tenant = tenantPath[1]!;
      const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString("utf8")));
      const refuse = (status: number, error: string, description: string) => {
        tokenRequests.push({ tenant, form, status });
        send(status, { error, error_description: description, error_codes: [Number(/^AADSTS(\d+)/.exec(description)?.[1])], timestamp: new Date().toISOString(), trace_id: randomUUID(), correlation_id: randomUUID() });
      };
      const app = apps.get(form.client_id ?? "");
      if (form.grant_type !== "client_credentials") return refuse(400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.");
      if (!app) return refuse(400, "unauthorized_client", `AADSTS700016: Application with identifier '${form.client_id}' was not found in the directory '${tenant}'.`);
      if (app.tenant !== tenant) return refuse(400, "unauthorized_client", `AADSTS700016: Application with identifier '${form.client_id}' was not found in the directory '${tenant}'.`);
      if (form.client_secret !== app.secret) return refuse(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
      if (form.scope !== CONNECTOR_SCOPE) return refuse(400, "invalid_scope", `AADSTS70011: The provided value for the input parameter 'scope' is not valid: ${form.scope}.`);
      const token = randomBytes(24).toString("base64url");
      issued.add(token);
      tokenRequests.push({ tenant, form, status: 200 });
      return send(200, { token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599, access_token: token });
    }
    send(404, { error: "not_found", error_description: `no route ${req.method} ${url.pathname}` });
  });
  keepConnections(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    loginUrl: base,
    openIdMetadataUrl: `${base}/v1/.well-known/openidconfiguration`,
    tokenRequests,
    issued,
    registerApp(app) {
      apps.set(app.appId, { secret: app.secret, tenant: app.tenant });
    },
    channelToken(claims, options = {}) {
      const now = Math.floor(Date.now() / 1000);
      const expires = now + (options.expiresInSeconds ?? 3600);
      return jwt(keys[options.key ?? "trusted"], { iss: CHANNEL_ISSUER, nbf: Math.min(now, expires) - 300, iat: Math.min(now, expires) - 300, exp: expires, ...claims });
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
