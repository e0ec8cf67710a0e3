import express, { type Express } from "express";
import type { CloudAdapter } from "botbuilder";
import type { IntegrationContext } from "../../src/integration.ts";
import { INVOKE_ANSWER_MS, TollgateBot } from "./bot.ts";

/**
 * `POST /api/messages`, where the Bot Framework sends Teams activities. It is mounted before the
 * admin API (which guards the rest of /api with the admin token) and parses its own JSON: the
 * adapter checks the Bot Framework's JWT in the Authorization header, not the admin token.
 */
export function mountTeams(app: Express, context: IntegrationContext, adapter: CloudAdapter, invokeAnswerMs = INVOKE_ANSWER_MS): void {
  const { config, logger } = context;
  if (!config.MicrosoftAppId)
    logger.warn(
      { component: "teams" },
      "TEAMS_AUTH=off: /api/messages accepts activities from ANYONE, without checking the Bot Framework's signature. For local development only; set MicrosoftAppId, MicrosoftAppPassword and MicrosoftAppTenantId for real use.",
    );
  const bot = new TollgateBot({ config, logger, services: context.commands, invokeAnswerMs });
  app.post("/api/messages", express.json({ limit: "1mb" }), async (req, res) => {
    await adapter.process(req, res, (turn) => bot.run(turn));
  });
}
