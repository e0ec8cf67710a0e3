import { Router } from "express";
import { z } from "zod";
import { ADMIN_PLATFORM, type Caller, type CommandServices } from "../../commands/context.ts";
import { renderText } from "../../commands/render-text.ts";
import { runCommand } from "../../commands/run.ts";
import { ACTOR_FORMAT, parseActor } from "../approvals/members.ts";
import type { Config } from "../config.ts";
import { unknownFieldError } from "../errors.ts";
import { actorOf, parseBody } from "../http/request.ts";

const isTimeZone = (tz: string) => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};

const CommandRequest = z.strictObject(
  {
    /** A chat command as typed in Slack after the slash: `spend this-week by team`. */
    text: z.string().max(2000, "at most 2000 characters"),
    /** Who asks, to answer with their role (`slack:U0123ABCD`); the admin token's bearer otherwise. */
    caller: z.string().refine((text) => parseActor(text, "admin") !== undefined, ACTOR_FORMAT).optional(),
    /** The zone periods are read in; the organisation's (TOLLGATE_TIMEZONE) otherwise. */
    timezone: z.string().refine(isTimeZone, "an IANA time zone such as UTC or Europe/Berlin").optional(),
  },
  { error: unknownFieldError("a command", ["text", "caller", "timezone"]) },
);

/**
 * `POST /api/commands`: the chat grammar over HTTP, for the CLI and scripts. The same parser,
 * role checks and handlers as Slack's slash commands; the answer is the platform-neutral Reply and
 * its plain-text rendering. A command that is refused or mistyped is still a 200 answer, with
 * `reply.error` set: the HTTP request itself went well.
 */
export function commandsRouter(services: CommandServices, config: Config): Router {
  const router = Router();
  router.post("/commands", async (req, res) => {
    const body = parseBody(CommandRequest, req, res);
    if (!body) return;
    const actor = body.caller ? parseActor(body.caller, actorOf(req))! : { kind: "admin" as const, label: actorOf(req) };
    const caller: Caller = actor.kind === "admin" ? { platform: ADMIN_PLATFORM, userId: actor.label } : { platform: actor.platform, userId: actor.userId };
    // The command line is no conversation: nothing can be muted or subscribed there, and the answer is the caller's alone.
    const conversation = { platform: "cli", address: {}, timezone: body.timezone ?? config.TOLLGATE_TIMEZONE, private: true };
    const reply = await runCommand(body.text, { caller, conversation, services, now: new Date() });
    res.json({ reply, text: renderText(reply) });
  });
  return router;
}
