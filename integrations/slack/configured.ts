import type { Config } from "../../src/config.ts";

/** Slack is on with its bot token; kept apart from the Slack SDKs so the entry point can ask without loading them. */
export const slackConfigured = (config: Pick<Config, "SLACK_BOT_TOKEN">) => Boolean(config.SLACK_BOT_TOKEN);
