import { type Response, Router } from "express";
import { z } from "zod";
import { parseDuration } from "../../commands/grammar.ts";
import { sendProblem } from "../http/problem.ts";
import type { OutboundPolicy } from "../outbound/policy.ts";
import { actorOf, parseBody } from "../http/request.ts";
import { labelText } from "../keys/api-keys.ts";
import { type ChannelChange, CreateChannelRequest, type ChannelStore, UpdateChannelRequest } from "./channels.ts";
import type { MuteChange, MuteStore } from "./mutes.ts";

/** `{"budget","until"}` or `{"budget","duration":"24h"}`; the end is read against `now`. */
function muteRequest(now: Date) {
  return z
    .strictObject({
      budget: labelText,
      until: z.iso.datetime({ offset: true, error: "an ISO 8601 time with its offset, such as 2025-07-01T09:00:00Z" }).optional(),
      duration: z.string().optional(),
    })
    .transform((body, ctx) => {
      if ((body.until === undefined) === (body.duration === undefined)) {
        ctx.addIssue({ code: "custom", path: ["until"], message: "give either until or duration, such as \"duration\": \"24h\"" });
        return z.NEVER;
      }
      if (body.duration !== undefined) {
        const words = body.duration.trim().split(/\s+/);
        const parsed = parseDuration(words);
        if (!parsed.ok || parsed.used < words.length) {
          const message = parsed.ok ? `unexpected "${words[parsed.used]}" after the duration` : `${parsed.error.message}; expected ${parsed.error.expected}`;
          ctx.addIssue({ code: "custom", path: ["duration"], message });
          return z.NEVER;
        }
        return { budget: body.budget, until: new Date(now.getTime() + parsed.ms) };
      }
      const until = new Date(body.until!);
      if (until <= now) {
        ctx.addIssue({ code: "custom", path: ["until"], message: "a time in the future" });
        return z.NEVER;
      }
      return { budget: body.budget, until };
    });
}

function sendChange(res: Response, change: ChannelChange | MuteChange, status = 200): void {
  if (change.ok) res.status(status).json("channel" in change ? change.channel : change.mute);
  else sendProblem(res, change.kind, change.message);
}

/** `/api/channels` and their mutes. A channel's secret is shown once, in the answer that created it. */
export function channelsRouter(deps: { channels: ChannelStore; mutes: MuteStore; outbound: OutboundPolicy }): Router {
  const { channels, mutes, outbound } = deps;
  const router = Router();

  /** A URL whose host is written as a forbidden address is refused when saved, not only when delivered to. */
  const refusedUrl = (res: Response, url: string | undefined): boolean => {
    const why = url === undefined ? undefined : outbound.urlRefusal(url);
    if (why) sendProblem(res, "invalid", `url: ${why}`, { errors: [{ path: "url", message: why }] });
    return why !== undefined;
  };

  router.post("/channels", async (req, res) => {
    const body = parseBody(CreateChannelRequest, req, res);
    if (!body || refusedUrl(res, body.url)) return;
    const { channel, secret } = await channels.createWebhook(body, actorOf(req));
    res.status(201).json({ ...channel, secret });
  });
  router.get("/channels", async (_req, res) => {
    res.json({ channels: await channels.list() });
  });
  router.get("/channels/:id", async (req, res) => {
    const channel = await channels.get(req.params.id);
    if (!channel) return sendProblem(res, "not_found", `no channel with id ${req.params.id}`);
    res.json(channel);
  });
  router.patch("/channels/:id", async (req, res) => {
    const body = parseBody(UpdateChannelRequest, req, res);
    if (body && !refusedUrl(res, body.url)) sendChange(res, await channels.update(req.params.id, body, actorOf(req)));
  });
  router.delete("/channels/:id", async (req, res) => {
    sendChange(res, await channels.remove(req.params.id, actorOf(req)));
  });

  router.post("/channels/:id/mutes", async (req, res) => {
    const body = parseBody(muteRequest(new Date()), req, res);
    if (body) sendChange(res, await mutes.mute(req.params.id, body.budget, body.until, actorOf(req)), 201);
  });
  router.get("/channels/:id/mutes", async (req, res) => {
    if (!(await channels.get(req.params.id))) return sendProblem(res, "not_found", `no channel with id ${req.params.id}`);
    res.json({ mutes: await mutes.list(req.params.id) });
  });
  router.delete("/channels/:id/mutes/:budget", async (req, res) => {
    sendChange(res, await mutes.unmute(req.params.id, req.params.budget, actorOf(req)));
  });
  router.get("/mutes", async (_req, res) => {
    res.json({ mutes: await mutes.list(undefined) });
  });
  return router;
}
