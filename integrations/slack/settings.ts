import { z } from "zod";
import { type Config, optional, readSettings, upstreamUrl } from "../../src/config.ts";

/** Slack's slice of the environment; kept apart from the Slack SDKs so the entry point can read it without loading them. */
const SlackSettings = z
  .object({
    /** Slack is on when its bot token is set (Slack app → OAuth & Permissions). */
    SLACK_BOT_TOKEN: optional.pipe(z.string().regex(/^xoxb-\S+$/, "a bot token, starting with xoxb-").optional()),
    /** Required with the bot token: Slack's requests are refused unless signed with it (Basic Information → App Credentials). */
    SLACK_SIGNING_SECRET: optional.pipe(z.string().regex(/^\S{16,}$/, "the app's signing secret (at least 16 characters, no spaces)").optional()),
    /** The Slack Web API's base URL: only tests change it. */
    SLACK_API_URL: upstreamUrl("https://slack.com/api/"),
  })
  .superRefine((s, ctx) => {
    if (s.SLACK_BOT_TOKEN && !s.SLACK_SIGNING_SECRET)
      ctx.addIssue({ code: "custom", path: ["SLACK_SIGNING_SECRET"], message: "the app's signing secret, required when SLACK_BOT_TOKEN is set" });
  });
export type SlackSettings = z.infer<typeof SlackSettings>;

export const slackSettings = (config: Pick<Config, "env">): SlackSettings => readSettings(SlackSettings, config);

/** Slack is on with its bot token. */
export const slackConfigured = (config: Pick<Config, "env">) => Boolean(slackSettings(config).SLACK_BOT_TOKEN);
