import { type Request, type Response, Router } from "express";
import { sendProblem } from "../http/problem.ts";
import { actorOf, parseBody } from "../http/request.ts";
import type { Member, Members } from "./members.ts";

const memberJson = (m: Member) => ({ platform: m.platform, user_id: m.user_id, role: m.role, name: m.name, scopes: m.scopes, updated_at: m.updated_at });

/** `/api/members`: platform users and their roles (viewer, requester, approver, admin). */
export function membersRouter(members: Members): Router {
  const router = Router();

  // PUT and POST both set a member: the platform and user id name it, so setting twice is harmless.
  const set = async (req: Request, res: Response) => {
    const body = parseBody(members.schemas.MemberInput, req, res);
    if (!body) return;
    const { member, created } = await members.set(body, actorOf(req));
    res.status(created ? 201 : 200).json(memberJson(member));
  };
  router.put("/members", set);
  router.post("/members", set);

  router.get("/members", async (_req, res) => {
    res.json({ members: (await members.list()).map(memberJson) });
  });

  router.delete("/members/:platform/:user_id", async (req, res) => {
    const removed = await members.remove(req.params.platform, req.params.user_id, actorOf(req));
    if (!removed) return sendProblem(res, "not_found", `no member ${req.params.platform}:${req.params.user_id}`);
    res.json(memberJson(removed));
  });

  return router;
}
