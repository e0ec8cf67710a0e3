import { type Response, Router } from "express";
import { z } from "zod";
import { unknownFieldError } from "../errors.ts";
import { sendProblem } from "../http/problem.ts";
import { actorOf, parseBody, parseQuery } from "../http/request.ts";
import { picoToDecimalString } from "../pricing/money.ts";
import type { Members } from "./members.ts";
import { APPROVAL_STATUSES, type Approval, type ApprovalFailure, type Approvals } from "./requests.ts";

const listFields = {
  status: z.enum(APPROVAL_STATUSES, { error: `one of ${APPROVAL_STATUSES.join(", ")}` }).optional(),
  limit: z.coerce.number({ error: "a whole number from 1 to 1000" }).int().min(1).max(1000).default(100),
};
const ListQuery = z.strictObject(listFields, { error: unknownFieldError("the query", Object.keys(listFields)) });

/** An approval as the API shows it: amounts as exact decimal USD. */
export function approvalJson(a: Approval) {
  return {
    id: a.id,
    budget: a.budget,
    budget_id: a.budget_id,
    from_usd: picoToDecimalString(a.from_amount),
    to_usd: picoToDecimalString(a.to_amount),
    reason: a.reason,
    requested_by: a.requested_by,
    requested_by_name: a.requested_by_name,
    requested_via: a.requested_via,
    status: a.status,
    decided_by: a.decided_by,
    decided_by_name: a.decided_by_name,
    decision_reason: a.decision_reason,
    decided_at: a.decided_at,
    created_at: a.created_at,
    expires_at: a.expires_at,
  };
}

function sendFailure(res: Response, failure: ApprovalFailure): void {
  const extra =
    failure.kind === "invalid"
      ? { errors: failure.errors }
      : failure.kind === "conflict"
        ? { approval: approvalJson(failure.approval), approval_status: failure.approval.status, decided_by: failure.approval.decided_by, decided_at: failure.approval.decided_at }
        : {};
  sendProblem(res, failure.kind, failure.message, extra);
}

/** `/api/approvals`: budget-raise requests and their decisions. The admin API acts as `admin`. */
export function approvalsRouter(approvals: Approvals, members: Members): Router {
  const router = Router();

  router.post("/approvals", async (req, res) => {
    const body = parseBody(approvals.schemas.RaiseRequestInput, req, res);
    if (!body) return;
    const result = await approvals.request(body, actorOf(req), new Date());
    if (!result.ok) return sendFailure(res, result);
    res.status(201).json(approvalJson(result.value));
  });

  router.get("/approvals", async (req, res) => {
    const query = parseQuery(ListQuery, req, res);
    if (query) res.json({ approvals: (await approvals.list(query)).map(approvalJson) });
  });

  router.get("/approvals/:id", async (req, res) => {
    const approval = await approvals.get(req.params.id);
    if (!approval) return sendProblem(res, "not_found", `no approval request with id ${req.params.id}`);
    res.json(approvalJson(approval));
  });

  router.post("/approvals/:id/decision", async (req, res) => {
    const body = parseBody(approvals.schemas.DecisionInput, req, res);
    if (!body) return;
    const by = members.schemas.parseActor(body.by, actorOf(req))!;
    const result = await approvals.decide(req.params.id, { decision: body.decision, by, reason: body.reason, override: body.override }, new Date());
    if (!result.ok) return sendFailure(res, result);
    res.json({ ...approvalJson(result.value.approval), budget_amount_usd: picoToDecimalString(result.value.budget.amount) });
  });

  return router;
}
