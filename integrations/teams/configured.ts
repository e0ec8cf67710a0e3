import type { Config } from "../../src/config.ts";

/** Teams is on with a bot app id, or with TEAMS_AUTH=off for local development; kept apart from botbuilder so the entry point can ask without loading it. */
export const teamsConfigured = (config: Pick<Config, "MicrosoftAppId" | "TEAMS_AUTH">) => Boolean(config.MicrosoftAppId) || config.TEAMS_AUTH === "off";
