import type { Integration } from "../../src/integration.ts";
import { DEFAULT_SLACK_OPTIONS, type SlackOptions, mountSlack } from "./app.ts";
import { slackConfigured, slackSettings } from "./settings.ts";
import { slackDeliverer } from "./deliver.ts";

/** Slack, on when SLACK_BOT_TOKEN is set: /slack/events for commands and buttons, chat.postMessage for alerts. */
export function slackIntegration(options: Partial<SlackOptions> = {}): Integration {
  const settings = { ...DEFAULT_SLACK_OPTIONS, ...options };
  return {
    platform: "slack",
    connect: (config, logger) => (slackConfigured(config) ? slackDeliverer(slackSettings(config), logger) : undefined),
    mount: (app, context) => mountSlack(app, context, settings),
  };
}

export const slack: Integration = slackIntegration();
