import { Router } from "express";
import { z } from "zod";
import { answerText } from "../../commands/door.ts";
import type { Registry } from "../../commands/registry.ts";
import { renderText } from "../../commands/render-text.ts";
import type { MemberSchemas } from "../approvals/members.ts";
import type { Config } from "../config.ts";
import { unknownFieldError } from "../errors.ts";
import { actorOf, parseBody } from "../http/request.ts";
import type { Services } from "../services.ts";

const isTimeZone = (tz: string) => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};

const commandRequest = (actorRef: MemberSchemas["actorRef"]) =>
  z.strictObject(
  {
    /** A chat command as typed in a chat: `spend this-week by team`. */
    text: z.string().max(2000, "at most 2000 characters"),
    /** Who asks, to answer with their role (`PLATFORM:USER_ID`); the admin token's bearer otherwise. */
    caller: actorRef.optional(),
    /** The zone periods are read in; the organisation's (TOLLGATE_TIMEZONE) otherwise. */
    timezone: z.string().refine(isTimeZone, "an IANA time zone such as UTC or Europe/Berlin").optional(),
  },
  { error: unknownFieldError("a command", ["text", "caller", "timezone"]) },
);

/**
 * `POST /api/commands`: the chat grammar over HTTP, for the CLI and scripts. The same registry,
 * role checks and handlers as every chat platform's door; the answer is the platform-neutral Reply and
 * its plain-text rendering. A command that is refused or mistyped is still a 200 answer, with
 * `reply.error` set: the HTTP request itself went well.
 */
export function commandsRouter(registry: Registry, services: Services, config: Config): Router {
  const router = Router();
  const { schemas } = services.members;
  const CommandRequest = commandRequest(schemas.actorRef);
  router.post("/commands", async (req, res) => {
    const body = parseBody(CommandRequest, req, res);
    if (!body) return;
    const caller = body.caller ? schemas.parseActor(body.caller, actorOf(req))! : { kind: "admin" as const, label: actorOf(req) };
    // The command line is no conversation: nothing can be muted or subscribed there, and the answer is the caller's alone.
    const conversation = { platform: "cli", address: {}, timezone: body.timezone ?? config.TOLLGATE_TIMEZONE, private: true };
    const reply = await answerText(registry, body.text, { caller, conversation, services, now: new Date() });
    res.json({ reply, text: renderText(reply) });
  });
  return router;
}
