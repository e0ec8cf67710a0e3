import type { IntegrationSource } from "../src/integration.ts";
import { slackConfigured } from "./slack/settings.ts";
import { teamsHelp } from "./teams/cli-help.ts";
import { teamsConfigured } from "./teams/settings.ts";
import { telegramHelp } from "./telegram/cli-help.ts";
import { telegramConfigured } from "./telegram/settings.ts";

/** Every platform this build delivers to, loaded only when configured (or its command runs); the entry point hands them to the gateway. */
export const integrations: IntegrationSource[] = [
  { platform: "webhook", configured: () => true, load: async () => (await import("./webhook/index.ts")).webhook },
  { platform: "slack", configured: slackConfigured, load: async () => (await import("./slack/index.ts")).slack },
  { platform: "telegram", configured: telegramConfigured, commands: ["telegram"], help: telegramHelp, load: async () => (await import("./telegram/index.ts")).telegram },
  { platform: "teams", configured: teamsConfigured, commands: ["teams-package"], help: teamsHelp, load: async () => (await import("./teams/index.ts")).teams },
];
