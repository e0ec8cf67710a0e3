import type { Activity } from "botbuilder";
import express, { type Express } from "express";
import { z } from "zod";
import type { IntegrationContext } from "../../src/integration.ts";
import { fieldErrors } from "../../src/errors.ts";
import { sendProblem } from "../../src/http/problem.ts";
import { teamsSettings } from "./settings.ts";
import { INVOKE_ANSWER_MS, type TeamsAdapter, TollgateBot } from "./bot.ts";

/** Timestamps come as ISO text; botbuilder's turn expects Dates, and keeps the text beside them. */
const timestamp = (raw: string | undefined) => (raw === undefined ? {} : { raw, date: new Date(raw) });

/** What /api/messages needs of a body before botbuilder sees it: an activity with a type. */
const ActivityBody = z
  .looseObject({
    type: z.string({ error: "the activity's type, such as message or invoke" }).min(1, "the activity's type, such as message or invoke"),
    timestamp: z.iso.datetime({ offset: true, error: "an ISO 8601 time" }).optional(),
    localTimestamp: z.iso.datetime({ offset: true, error: "an ISO 8601 time" }).optional(),
  })
  .transform((body) => {
    const at = timestamp(body.timestamp);
    const local = timestamp(body.localTimestamp);
    return {
      ...body,
      ...(at.date ? { timestamp: at.date, rawTimestamp: at.raw } : {}),
      ...(local.date ? { localTimestamp: local.date, rawLocalTimestamp: local.raw } : {}),
    } as unknown as Activity;
  });

/**
 * `POST /api/messages`, where the Bot Framework sends Teams activities. It is mounted before the
 * admin API (which guards the rest of /api with the admin token) and parses its own JSON: the
 * adapter checks the Bot Framework's JWT in the Authorization header, not the admin token. The
 * answers are ours: a precise 400 for a body that is no activity, 401 without a valid token, and
 * no stack traces.
 */
export function mountTeams(app: Express, context: IntegrationContext, adapter: TeamsAdapter, invokeAnswerMs = INVOKE_ANSWER_MS): void {
  const { logger } = context;
  if (!teamsSettings(context.config).MicrosoftAppId)
    logger.warn(
      { component: "teams" },
      "TEAMS_AUTH=off: /api/messages accepts activities from ANYONE, without checking the Bot Framework's signature. For local development only; set MicrosoftAppId, MicrosoftAppPassword and MicrosoftAppTenantId for real use.",
    );
  const bot = new TollgateBot({ door: context.door, invokeAnswerMs });
  app.post("/api/messages", express.json({ limit: "1mb" }), async (req, res) => {
    const parsed = ActivityBody.safeParse(req.body);
    if (!parsed.success) return sendProblem(res, "invalid", "the body is not a Bot Framework activity", { errors: fieldErrors(parsed.error.issues) });
    try {
      const answer = await adapter.handle(req.headers.authorization ?? "", parsed.data, (turn) => bot.run(turn));
      res.status(answer?.status ?? 200);
      if (answer?.body === undefined) res.end();
      else res.json(answer.body);
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      // botbuilder's authentication errors carry 401; its own other failures (the keys could not be read) are for the connector to try again.
      if (status === 401) {
        logger.warn({ component: "teams", reason: (err as Error).message }, "teams activity refused: no valid Bot Framework token");
        return sendProblem(res, "unauthorized", "the Authorization header does not hold a Bot Framework token for this bot");
      }
      logger.error({ component: "teams", error: (err as Error).name, reason: (err as Error).message }, "teams activity failed");
      sendProblem(res, "unavailable", "the activity could not be handled just now");
    }
  });
}
