import { ConfidentialClientApplication } from "@azure/msal-node";
import { CallerIdConstants, ConfigurationBotFrameworkAuthentication } from "botbuilder";
import { AuthenticationConstants, MsalServiceClientCredentialsFactory } from "botframework-connector";
import type { TeamsSettings } from "./settings.ts";

/*
 * Both directions of the Bot Framework's authentication, in the cloud the config names: the JWT
 * the connector signs every activity with is checked against that cloud's OpenID keys (issuer,
 * audience = our app id, channel endorsement, serviceUrl claim), and the bot's own calls to the
 * connector carry a token from Entra (client credentials). The MSAL client is ours, not
 * botbuilder's default, so that its authority is declared known: MSAL would otherwise ask
 * login.microsoftonline.com about any other host (a sovereign cloud's, or a test's) first.
 */

type TeamsAuthConfig = Pick<
  TeamsSettings,
  | "MicrosoftAppId"
  | "MicrosoftAppPassword"
  | "MicrosoftAppType"
  | "MicrosoftAppTenantId"
  | "TEAMS_LOGIN_URL"
  | "TEAMS_OAUTH_SCOPE"
  | "TEAMS_TOKEN_ISSUER"
  | "TEAMS_OPENID_METADATA_URL"
>;

type MsalClient = ConstructorParameters<typeof MsalServiceClientCredentialsFactory>[1];

/** An authority of the login host: the host and an Entra tenant. */
const authorityAt = (config: TeamsAuthConfig, tenant: string | undefined) => `${config.TEAMS_LOGIN_URL.replace(/\/+$/, "")}/${tenant}`;

/** The Entra authority the bot's token comes from: its own tenant, or the Bot Framework's for an older multi-tenant bot. */
const authorityOf = (config: TeamsAuthConfig) => authorityAt(config, config.MicrosoftAppType === "MultiTenant" ? "botframework.com" : config.MicrosoftAppTenantId);

/** The adapter's authentication; with no app id (TEAMS_AUTH=off) nothing is checked and no token is sent. */
export function botAuthentication(config: TeamsAuthConfig): ConfigurationBotFrameworkAuthentication {
  // The outbox retries, honouring Retry-After: the connector client tries each call once.
  const clientOptions = { noRetryPolicy: true };
  const appId = config.MicrosoftAppId;
  if (!appId) return new ConfigurationBotFrameworkAuthentication({}, undefined, undefined, undefined, clientOptions);
  const authority = authorityOf(config);
  const settings = {
    MicrosoftAppId: appId,
    MicrosoftAppPassword: config.MicrosoftAppPassword,
    MicrosoftAppType: config.MicrosoftAppType,
    MicrosoftAppTenantId: config.MicrosoftAppTenantId,
    ToChannelFromBotLoginUrl: authority,
    ToChannelFromBotOAuthScope: config.TEAMS_OAUTH_SCOPE,
    ToBotFromChannelTokenIssuer: config.TEAMS_TOKEN_ISSUER,
    ToBotFromChannelOpenIdMetadataUrl: config.TEAMS_OPENID_METADATA_URL,
    ToBotFromEmulatorOpenIdMetadataUrl: `${authorityAt(config, "botframework.com")}/v2.0/.well-known/openid-configuration`,
    // User sign-in (OAuth cards) is not used; botbuilder still wants the token service's address.
    OAuthUrl: AuthenticationConstants.OAuthUrl,
    CallerId: CallerIdConstants.PublicAzureChannel,
  };
  // A managed identity has no secret: botbuilder's own factory handles it.
  const credentials =
    config.MicrosoftAppType === "UserAssignedMSI"
      ? undefined
      : new MsalServiceClientCredentialsFactory(
          appId,
          // botframework-connector types MSAL's CommonJS build; this module loads its ESM build, the same class.
          new ConfidentialClientApplication({ auth: { clientId: appId, clientSecret: config.MicrosoftAppPassword ?? "", authority, knownAuthorities: [new URL(authority).host] } }) as unknown as MsalClient,
        );
  return new ConfigurationBotFrameworkAuthentication(settings, credentials, undefined, undefined, clientOptions);
}
