import { Router } from "express";
import { z } from "zod";
import { SUBSCRIPTION_KINDS } from "../../src/alerts/alert.ts";
import { Scope } from "../../src/budgets/budget.ts";
import { sendProblem } from "../../src/http/problem.ts";
import { actorOf, parseBody } from "../../src/http/request.ts";
import type { LinkMaker } from "./linker.ts";

/** `POST /api/telegram/links`: what a new link code binds a chat to. */
const LinkRequest = z.strictObject({
  scope: z.record(z.string(), z.unknown(), { error: 'a scope such as {"team":"search"} ({} for all spend)' }).pipe(Scope.unwrap()),
  kinds: z
    .array(z.enum(SUBSCRIPTION_KINDS, { error: `one of ${SUBSCRIPTION_KINDS.join(", ")}` }))
    .min(1, "at least one of alerts, approvals, daily, weekly")
    .default(["alerts"])
    .transform((kinds) => [...new Set(kinds)]),
});

export interface LinkAnswer {
  code: string;
  expires_at: string;
  /** Opens the bot with `/start CODE`; null when Telegram could not be asked the bot's name just now. */
  deep_link: string | null;
}

/**
 * `POST /api/telegram/links` (the CLI's `tollgate telegram link`): a one-time code for `/link CODE`
 * or the deep link, made by the same maker as `telegram-link` typed in a chat. 409 when this
 * gateway has no Telegram.
 */
export function telegramLinksRouter(links: LinkMaker): Router {
  const router = Router();
  router.post("/telegram/links", async (req, res) => {
    const body = parseBody(LinkRequest, req, res);
    if (!body) return;
    const created = await links.create({ scope: body.scope, kinds: body.kinds, by: actorOf(req) }, new Date());
    if (!created.ok) return sendProblem(res, created.kind, created.message);
    const { code, expiresAt, deepLink } = created;
    res.status(201).json({ code, expires_at: expiresAt.toISOString(), deep_link: deepLink ?? null } satisfies LinkAnswer);
  });
  return router;
}
