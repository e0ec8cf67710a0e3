import { z } from "zod";
import { type Config, httpsUrl, optional, readSettings } from "../../src/config.ts";

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Teams' slice of the environment; kept apart from botbuilder so the entry point can read it without loading it. */
const TeamsSettings = z
  .object({
    /** Teams is on when the bot's Microsoft app id is set (Azure Bot → Configuration), or with TEAMS_AUTH=off. */
    MicrosoftAppId: optional.pipe(z.string().regex(GUID, "the bot's Microsoft app id, a GUID").optional()),
    /** The app's client secret; not needed with UserAssignedMSI. */
    MicrosoftAppPassword: optional,
    /** SingleTenant (new bots), MultiTenant (bots made before it was retired) or UserAssignedMSI. */
    MicrosoftAppType: z.enum(["SingleTenant", "MultiTenant", "UserAssignedMSI"], { error: "SingleTenant, MultiTenant or UserAssignedMSI" }).default("SingleTenant"),
    /** The Entra tenant of a SingleTenant or UserAssignedMSI bot. */
    MicrosoftAppTenantId: optional.pipe(z.string().regex(GUID, "the tenant id, a GUID").optional()),
    // The Microsoft cloud the bot lives in; the defaults are the public cloud's (docs: Teams).
    /** Where the bot gets its token for the connector: Entra's login host, the tenant is added. */
    TEAMS_LOGIN_URL: httpsUrl("https://login.microsoftonline.com"),
    /** The audience of the bot's token to the connector. */
    TEAMS_OAUTH_SCOPE: httpsUrl("https://api.botframework.com"),
    /** The issuer of the tokens the connector signs the activities it sends with. */
    TEAMS_TOKEN_ISSUER: httpsUrl("https://api.botframework.com"),
    /** The OpenID metadata naming the keys those tokens are signed with. */
    TEAMS_OPENID_METADATA_URL: httpsUrl("https://login.botframework.com/v1/.well-known/openidconfiguration"),
    /** `off` runs Teams without checking who calls /api/messages, for local development only (refused with NODE_ENV=production). */
    TEAMS_AUTH: z.enum(["on", "off"], { error: "on or off" }).default("on"),
    NODE_ENV: optional,
  })
  // Settings that only make sense together; no authentication is never allowed in production.
  .superRefine((s, ctx) => {
    const fail = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
    if (s.TEAMS_AUTH === "off" && s.NODE_ENV === "production") fail("TEAMS_AUTH", "on in production (NODE_ENV=production): set MicrosoftAppId and its credentials");
    if (!s.MicrosoftAppId) return;
    if (s.MicrosoftAppType !== "UserAssignedMSI" && !s.MicrosoftAppPassword) fail("MicrosoftAppPassword", "the app's client secret, required when MicrosoftAppId is set");
    if (s.MicrosoftAppType !== "MultiTenant" && !s.MicrosoftAppTenantId) fail("MicrosoftAppTenantId", `the tenant id, required for a ${s.MicrosoftAppType} bot`);
  });
export type TeamsSettings = z.infer<typeof TeamsSettings>;

export const teamsSettings = (config: Pick<Config, "env">): TeamsSettings => readSettings(TeamsSettings, config);

/** Teams is on with a bot app id, or with TEAMS_AUTH=off for local development. */
export const teamsConfigured = (config: Pick<Config, "env">) => {
  const s = teamsSettings(config);
  return Boolean(s.MicrosoftAppId) || s.TEAMS_AUTH === "off";
};
