import type * as Client from "openid-client";

export interface OidcSettings {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** What the sign-in button calls the provider. */
  name: string;
}

/** What the browser carries between leaving for the provider and coming back: in a signed cookie, never in memory here. */
export interface OidcTransaction {
  state: string;
  nonce: string;
  verifier: string;
  /** The dashboard path to land on after signing in. */
  next: string;
}

/** Who the provider says signed in: the verified email when it vouches for one, else the subject. */
export interface OidcPerson {
  /** The member user id looked up: `email` when verified, else `sub`. */
  ids: string[];
  name: string;
}

/** Plain http only to the machine itself (a provider on loopback, as in development and tests). */
const isLoopback = (url: URL) => ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);

/**
 * OpenID Connect sign-in, authorization code with PKCE, through openid-client. The provider's
 * metadata is discovered on first use and again after a failure, so a gateway starts while its
 * provider is away. openid-client itself is loaded then too: a gateway only pays for it once
 * someone signs in.
 */
export class OidcSignIn {
  private discovered: Promise<{ client: typeof Client; config: Client.Configuration }> | undefined;

  constructor(readonly settings: OidcSettings) {}

  private configuration(): Promise<{ client: typeof Client; config: Client.Configuration }> {
    const issuer = new URL(this.settings.issuer);
    this.discovered ??= import("openid-client")
      .then(async (client) => ({
        client,
        config: await client.discovery(issuer, this.settings.clientId, this.settings.clientSecret, undefined, isLoopback(issuer) ? { execute: [client.allowInsecureRequests] } : undefined),
      }))
      .catch((err: unknown) => {
        this.discovered = undefined;
        throw err;
      });
    return this.discovered;
  }

  /** Where to send the browser, and what to remember until it returns. */
  async start(redirectUri: string, next: string): Promise<{ url: URL; transaction: OidcTransaction }> {
    const { client, config } = await this.configuration();
    const transaction = { state: client.randomState(), nonce: client.randomNonce(), verifier: client.randomPKCECodeVerifier(), next };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: "openid email profile",
      code_challenge: await client.calculatePKCECodeChallenge(transaction.verifier),
      code_challenge_method: "S256",
      state: transaction.state,
      nonce: transaction.nonce,
    });
    return { url, transaction };
  }

  /** Exchanges the code the browser brought back; throws when the provider's answer does not check out. */
  async finish(callbackUrl: URL, transaction: OidcTransaction): Promise<OidcPerson> {
    const { client, config } = await this.configuration();
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: transaction.verifier,
      expectedState: transaction.state,
      expectedNonce: transaction.nonce,
      idTokenExpected: true,
    });
    const idToken = tokens.claims();
    if (!idToken) throw new Error("the provider answered without an ID token");
    // Many providers put only `sub` in the ID token and the rest behind the userinfo endpoint.
    const claims = typeof idToken.email === "string" ? idToken : { ...(await client.fetchUserInfo(config, tokens.access_token, idToken.sub)), sub: idToken.sub };
    const email = typeof claims.email === "string" && claims.email_verified === true ? claims.email.toLowerCase() : undefined;
    const name = typeof claims.name === "string" && claims.name.trim() ? claims.name.trim() : (email ?? claims.sub);
    return { ids: email ? [email, claims.sub] : [claims.sub], name };
  }
}
