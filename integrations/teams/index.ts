import type { Config } from "../../src/config.ts";
import type { Integration } from "../../src/integration.ts";
import type { Logger } from "../../src/logger.ts";
import { teamsConfigured, teamsSettings } from "./settings.ts";
import { INVOKE_ANSWER_MS, type TeamsAdapter, createAdapter } from "./bot.ts";
import { teamsDeliverer } from "./deliver.ts";
import { mountTeams } from "./mount.ts";
import { teamsPackageCommand } from "./package.ts";

export interface TeamsOptions {
  /** How long an approval invoke waits for its decision before answering with a "deciding" card; tests shorten it. */
  invokeAnswerMs: number;
}


/**
 * Microsoft Teams: commands, card actions and installs through /api/messages, alerts through the
 * outbox as Adaptive Cards sent proactively, and `tollgate teams-package` for the app package.
 * One adapter per gateway config serves both ways.
 */
export function teamsIntegration(options: Partial<TeamsOptions> = {}): Integration {
  const adapters = new WeakMap<Config, TeamsAdapter>();
  const adapterFor = (config: Config, logger: Logger) => {
    let adapter = adapters.get(config);
    if (!adapter) adapters.set(config, (adapter = createAdapter(teamsSettings(config), logger)));
    return adapter;
  };
  return {
    platform: "teams",
    connect: (config, logger) => (teamsConfigured(config) ? teamsDeliverer(adapterFor(config, logger), teamsSettings(config), logger) : undefined),
    mount: (app, context) => {
      if (teamsConfigured(context.config)) mountTeams(app, context, adapterFor(context.config, context.logger), options.invokeAnswerMs ?? INVOKE_ANSWER_MS);
    },
    cli: { "teams-package": teamsPackageCommand },
  };
}

export const teams: Integration = teamsIntegration();
