import { randomBytes } from "node:crypto";
import { type SQL, and, desc, eq, gt, inArray, lte } from "drizzle-orm";
import { z } from "zod";
import { audit } from "../audit/log.ts";
import type { Alert } from "../alerts/alert.ts";
import type { Notifier, Writer } from "../alerts/notifier.ts";
import { type Budget, UsdAmount, budgetPeriod } from "../budgets/budget.ts";
import { forecastSpend } from "../budgets/forecast.ts";
import { spendForBudgets } from "../budgets/spend-batch.ts";
import { type BudgetStore, budgetOf, inputOf } from "../budgets/store.ts";
import type { Database, Db } from "../db/connection.ts";
import { approvals, budgets, channels } from "../db/schema.ts";
import { labelText } from "../keys/api-keys.ts";
import type { Period } from "../ledger/period.ts";
import { querySpend } from "../ledger/spend.ts";
import { formatUsd, picoToDecimalString } from "../pricing/money.ts";
import { type Failure, type FieldError, unknownFieldError } from "../errors.ts";
import { fourEyes } from "./four-eyes.ts";
import { type Actor, type MemberSchemas, type Members, type Role, actorText, hasRole } from "./members.ts";

export const APPROVAL_STATUSES = ["pending", "approved", "rejected", "expired"] as const;
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number];

/** Where the requester asked, so the outcome can be told there too. */
const viaFields = {
  platform: labelText,
  /** A Tollgate channel id (GET /api/channels): the decision is posted there whatever it subscribes to. */
  channel_id: labelText.optional(),
  user_id: labelText.optional(),
};
export const RequestedVia = z.strictObject(viaFields, { error: unknownFieldError("requested_via", Object.keys(viaFields)) });
export type RequestedVia = z.infer<typeof RequestedVia>;

/** A raise request and a decision as the admin API takes them; who asks and decides is checked by `actorRef`, the gateway's own. */
function approvalSchemas(actorRef: MemberSchemas["actorRef"]) {
  const requestFields = {
    /** The budget's name or id. */
    budget: labelText,
    /** The amount asked for, above the budget's current amount. */
    amount_usd: UsdAmount,
    reason: z.string().trim().min(1, "say why the raise is needed").max(1000),
    requested_by: actorRef,
    requested_via: RequestedVia.optional(),
  };
  const decisionFields = {
    decision: z.enum(["approve", "reject"], { error: "approve or reject" }),
    by: actorRef,
    reason: z.string().trim().min(1, "leave reason out rather than empty").max(1000).optional(),
    /** An admin deciding their own request says why; audited (four eyes, src/approvals/four-eyes.ts). */
    override: z.string().trim().min(1, "say why you decide your own request").max(1000).optional(),
  };
  return {
    RaiseRequestInput: z.strictObject(requestFields, { error: unknownFieldError("a raise request", Object.keys(requestFields)) }),
    DecisionInput: z.strictObject(decisionFields, { error: unknownFieldError("a decision", Object.keys(decisionFields)) }),
  };
}
type ApprovalSchemas = ReturnType<typeof approvalSchemas>;
export type RaiseRequestInput = z.infer<ApprovalSchemas["RaiseRequestInput"]>;
export type DecisionInput = z.infer<ApprovalSchemas["DecisionInput"]>;

export interface Approval {
  id: string;
  budget_id: string;
  budget: string;
  /** pico-USD: the budget's amount when asked, and the amount asked for. */
  from_amount: bigint;
  to_amount: bigint;
  reason: string;
  requested_by: string;
  /** The requester's and decider's names when they acted (a member's own, else the platform's). */
  requested_by_name: string | null;
  requested_via: RequestedVia | null;
  status: ApprovalStatus;
  decided_by: string | null;
  decided_by_name: string | null;
  decision_reason: string | null;
  decided_at: Date | null;
  created_at: Date;
  expires_at: Date;
}

export type ApprovalFailure =
  | (Failure<"invalid"> & { errors: FieldError[] })
  | Failure<"forbidden" | "not_found">
  /** Already decided or expired: `approval` says by whom and when. */
  | (Failure<"conflict"> & { approval: Approval });
export type ApprovalResult<T> = { ok: true; value: T } | ApprovalFailure;

type Row = typeof approvals.$inferSelect;

const approvalOf = (row: Row, budgetName: string): Approval => ({
  id: row.id,
  budget_id: row.budgetId,
  budget: budgetName,
  from_amount: BigInt(row.fromAmount),
  to_amount: BigInt(row.toAmount),
  reason: row.reason,
  requested_by: row.requestedBy,
  requested_by_name: row.requestedByName,
  requested_via: (row.requestedVia as RequestedVia | null) ?? null,
  status: row.status as ApprovalStatus,
  decided_by: row.decidedBy,
  decided_by_name: row.decidedByName,
  decision_reason: row.decisionReason,
  decided_at: row.decidedAt,
  created_at: row.createdAt,
  expires_at: row.expiresAt,
});

const invalid = (path: string, message: string): ApprovalFailure => ({ ok: false, kind: "invalid", message, errors: [{ path, message }] });

/** Short enough to type in a chat command (`budget approve apr_3f9a1c2e4b7d`). */
const newId = () => `apr_${randomBytes(6).toString("hex")}`;

const PER: Record<Budget["period"], string> = { day: "a day", week: "a week", month: "a month", quarter: "a quarter", year: "a year" };

function alertBudget(budget: Budget): NonNullable<Alert["budget"]> {
  return { id: budget.id, name: budget.name, scope: budget.scope as Record<string, string>, mode: budget.mode, period: budget.period };
}

/** Who asked and who decided, as people read them. */
const shownRequester = (a: Approval) => a.requested_by_name ?? a.requested_by;
const shownDecider = (a: Approval) => a.decided_by_name ?? a.decided_by;

const approvalFacts = (a: Approval) => ({
  approval_id: a.id,
  from_usd: picoToDecimalString(a.from_amount),
  to_usd: picoToDecimalString(a.to_amount),
  reason: a.reason,
  requested_by: a.requested_by,
  ...(a.requested_by_name ? { requested_by_name: a.requested_by_name } : {}),
  requested_via: a.requested_via,
  expires_at: a.expires_at.toISOString(),
});

/** The message to approvers: who asks for how much and why, against what is spent so far. */
export function requestedAlert(a: Approval, budget: Budget, spent: { spend: bigint; period: Period }, now: Date): Alert {
  const percent = budget.amount > 0n ? Number((spent.spend * 100n) / budget.amount) : null;
  return {
    id: `approval:${a.id}:requested`,
    kind: "approval_requested",
    title: `${shownRequester(a)} asks to raise ${budget.name} to ${formatUsd(a.to_amount)}`,
    summary:
      `From ${formatUsd(a.from_amount)} to ${formatUsd(a.to_amount)} ${PER[budget.period]}: “${a.reason}”. ` +
      `${formatUsd(spent.spend)} spent so far this ${budget.period}; the request expires ${a.expires_at.toISOString()}.`,
    budget: alertBudget(budget),
    spend_usd: picoToDecimalString(spent.spend),
    amount_usd: picoToDecimalString(budget.amount),
    percent,
    threshold: null,
    period: { start: spent.period.start.toISOString(), end: spent.period.end.toISOString() },
    forecast_usd: null,
    forecast_method: null,
    run_out_at: null,
    top: [],
    movers: [],
    chart: null,
    actions: [
      { action: "approve", label: `Approve ${formatUsd(a.to_amount)}`, target: a.id },
      { action: "reject", label: "Reject", target: a.id },
    ],
    details: approvalFacts(a),
    at: now.toISOString(),
  };
}

/** The outcome, for approvers and the requester: approved (with the new amount), rejected or expired. */
export function decidedAlert(a: Approval, budget: Budget, now: Date): Alert {
  const heading = {
    pending: "is pending",
    approved: `approved by ${shownDecider(a)}`,
    rejected: `rejected by ${shownDecider(a)}`,
    expired: "expired without a decision",
  }[a.status];
  const outcome =
    a.status === "approved"
      ? `${budget.name} is now ${formatUsd(budget.amount)} ${PER[budget.period]} (was ${formatUsd(a.from_amount)}).`
      : `${budget.name} stays at ${formatUsd(budget.amount)} ${PER[budget.period]}.`;
  return {
    id: `approval:${a.id}:${a.status}`,
    kind: "approval_decided",
    title: `Raise of ${budget.name} to ${formatUsd(a.to_amount)} ${heading}`,
    summary: a.decision_reason ? `${outcome} “${a.decision_reason}”` : outcome,
    budget: alertBudget(budget),
    spend_usd: null,
    amount_usd: picoToDecimalString(budget.amount),
    percent: null,
    threshold: null,
    period: null,
    forecast_usd: null,
    forecast_method: null,
    run_out_at: null,
    top: [],
    movers: [],
    chart: null,
    actions: a.status === "approved" ? [] : [{ action: "request_raise", label: "Ask again", target: budget.name }],
    details: { ...approvalFacts(a), status: a.status, decided_by: a.decided_by, ...(a.decided_by_name ? { decided_by_name: a.decided_by_name } : {}), decision_reason: a.decision_reason },
    at: now.toISOString(),
  };
}

export interface ApprovalsOptions {
  /** How long a request waits for a decision (TOLLGATE_APPROVAL_TTL). */
  ttlMs: number;
  /** Whether the requester is kept from deciding their own raise (TOLLGATE_FOUR_EYES). */
  fourEyes: boolean;
}

/**
 * Budget-raise requests and their one decision. A request goes to every approvals channel; only
 * an approver or admin decides it, once: the decision, the raise and the messages about it are one
 * transaction, guarded by `status = 'pending'`, so a second click changes nothing.
 */
export class Approvals {
  readonly schemas: ApprovalSchemas;

  constructor(
    private readonly database: Database,
    private readonly budgets: BudgetStore,
    private readonly members: Members,
    private readonly notifier: Notifier,
    private readonly options: ApprovalsOptions,
  ) {
    this.schemas = approvalSchemas(members.schemas.actorRef);
  }

  /** The latest requests, of one status and of one budget (by id) when given. */
  async list(filter: { status?: ApprovalStatus; budgetId?: string; limit?: number } = {}): Promise<Approval[]> {
    const rows = await this.database.db
      .select({ row: approvals, budget: budgets.name })
      .from(approvals)
      .innerJoin(budgets, eq(budgets.id, approvals.budgetId))
      .where(and(filter.status ? eq(approvals.status, filter.status) : undefined, filter.budgetId ? eq(approvals.budgetId, filter.budgetId) : undefined))
      .orderBy(desc(approvals.createdAt), desc(approvals.id))
      .limit(filter.limit ?? 100);
    return rows.map((r) => approvalOf(r.row, r.budget));
  }

  /**
   * A request as approvers see it now: the request while it waits, its outcome once decided or
   * expired; undefined when there is no such request. For platforms that redraw a card on demand.
   */
  async current(id: string, now: Date): Promise<Alert | undefined> {
    const approval = await this.get(id);
    const budget = approval && (await this.budgets.find(approval.budget_id));
    if (!approval || !budget) return undefined;
    if (approval.status === "pending" && approval.expires_at > now) {
      const [read] = await spendForBudgets(this.database, [budget], now);
      if (!read) return undefined;
      const alert = requestedAlert(approval, budget, { spend: read.spend, period: read.period }, now);
      const forecast = forecastSpend({ period: read.period, now, spend: read.spend, recentSpend: read.recentSpend });
      return { ...alert, forecast_usd: forecast === null ? null : picoToDecimalString(forecast) };
    }
    // Past its time but not yet marked by the job: shown as what it is.
    const settled = approval.status === "pending" ? { ...approval, status: "expired" as const, decided_at: approval.expires_at } : approval;
    return decidedAlert(settled, budget, settled.decided_at ?? now);
  }

  /**
   * Whether `actor`, whose role is `role`, may decide `approval` now: it is pending, they are an
   * approver or admin, and four eyes let them without an override (a button cannot say why), so a
   * view can offer the buttons only where pressing them would decide. `decide` checks all of this again.
   */
  mayDecide(approval: Approval, actor: Actor, role: Role, now: Date): boolean {
    if (approval.status !== "pending" || approval.expires_at <= now) return false;
    return hasRole(role, "approver") && fourEyes(approval.requested_by, actor, role, { required: this.options.fourEyes }).ok;
  }

  async get(id: string, db: Pick<Db, "select"> = this.database.db): Promise<Approval | undefined> {
    const [found] = await db
      .select({ row: approvals, budget: budgets.name })
      .from(approvals)
      .innerJoin(budgets, eq(budgets.id, approvals.budgetId))
      .where(eq(approvals.id, id));
    return found ? approvalOf(found.row, found.budget) : undefined;
  }

  /**
   * Asks for a raise. `adminLabel` is who `requested_by: "admin"` stands for. Refused when the
   * requester is only a viewer, when the amount is not above the current one, and when a raise of
   * the same budget is already waiting (approving an older, smaller one after it would undo it).
   */
  async request(input: RaiseRequestInput, adminLabel: string, now: Date, platformName?: string): Promise<ApprovalResult<Approval>> {
    const parsed = this.members.schemas.parseActor(input.requested_by, adminLabel)!;
    const requester = parsed.kind === "member" && platformName ? { ...parsed, name: platformName } : parsed;
    const role = await this.members.roleOfActor(requester);
    if (!hasRole(role, "requester"))
      return { ok: false, kind: "forbidden", message: `${actorText(requester)} is a ${role}; asking for a raise needs the requester, approver or admin role` };
    const budget = await this.budgets.find(input.budget);
    if (!budget) return invalid("budget", `no budget named or with id ${input.budget}`);
    const channelId = input.requested_via?.channel_id;
    if (channelId) {
      const [channel] = await this.database.db.select({ platform: channels.platform }).from(channels).where(eq(channels.id, channelId));
      if (!channel) return invalid("requested_via.channel_id", `no channel with id ${channelId}`);
    }
    // Read before the transaction: PGlite has one connection, which the transaction would hold.
    const period = budgetPeriod(budget, now);
    const { total } = await querySpend(this.database, { period, filters: budget.scope, now, top: 1 });
    const requesterName = await this.members.displayName(requester);

    return this.database.db.transaction(async (tx): Promise<ApprovalResult<Approval>> => {
      const [locked] = await tx.select().from(budgets).where(eq(budgets.id, budget.id)).for("update");
      if (!locked) return invalid("budget", `no budget named or with id ${input.budget}`);
      const current = budgetOf(locked);
      if (input.amount_usd <= current.amount)
        return invalid("amount_usd", `must be above the budget's current amount of ${formatUsd(current.amount)} (${picoToDecimalString(current.amount)})`);
      const [waiting] = await tx
        .select()
        .from(approvals)
        .where(and(eq(approvals.budgetId, current.id), eq(approvals.status, "pending"), gt(approvals.expiresAt, now)));
      if (waiting) {
        const pending = approvalOf(waiting, current.name);
        return { ok: false, kind: "conflict", message: `a raise of ${current.name} to ${formatUsd(pending.to_amount)} is already waiting for a decision (${pending.id})`, approval: pending };
      }
      const [row] = await tx
        .insert(approvals)
        .values({
          id: newId(),
          budgetId: current.id,
          fromAmount: current.amount.toString(),
          toAmount: input.amount_usd.toString(),
          reason: input.reason,
          requestedBy: actorText(requester),
          requestedByName: requesterName,
          requestedVia: input.requested_via ?? null,
          createdAt: now,
          expiresAt: new Date(now.getTime() + this.options.ttlMs),
        })
        .returning();
      const approval = approvalOf(row!, current.name);
      await audit(tx, { actor: actorText(requester), action: "request", entity: "approval", entityId: approval.id, after: approval });
      await this.notifier.enqueue(tx, [requestedAlert(approval, current, { spend: total.cost, period }, now)]);
      return { ok: true, value: approval };
    });
  }

  /**
   * Approves or rejects a pending request. The approval raises the budget in the same
   * transaction (never lowers it: another change may have lifted it further meanwhile), and
   * listeners of the budget store hear the new amount once it commits, which lifts a hard block.
   */
  async decide(
    id: string,
    decision: { decision: "approve" | "reject"; by: Actor; reason?: string; override?: string },
    now: Date,
  ): Promise<ApprovalResult<{ approval: Approval; budget: Budget }>> {
    const existing = await this.get(id);
    if (!existing) return { ok: false, kind: "not_found", message: `no approval request with id ${id}` };
    const role = await this.members.roleOfActor(decision.by);
    if (!hasRole(role, "approver"))
      return { ok: false, kind: "forbidden", message: `${actorText(decision.by)} is a ${role}; deciding a raise needs the approver or admin role` };
    const eyes = fourEyes(existing.requested_by, decision.by, role, { required: this.options.fourEyes, override: decision.override });
    if (!eyes.ok) return eyes;
    const decider = actorText(decision.by);
    const deciderName = await this.members.displayName(decision.by);
    const status: ApprovalStatus = decision.decision === "approve" ? "approved" : "rejected";

    return this.budgets.transaction(async (store, tx): Promise<ApprovalResult<{ approval: Approval; budget: Budget }>> => {
      const [row] = await tx
        .update(approvals)
        .set({ status, decidedBy: decider, decidedByName: deciderName, decisionReason: decision.reason ?? null, decidedAt: now })
        .where(and(eq(approvals.id, id), eq(approvals.status, "pending"), gt(approvals.expiresAt, now)))
        .returning();
      if (!row) return this.alreadyDecided(tx, id, now);
      const [budgetRow] = await tx.select().from(budgets).where(eq(budgets.id, row.budgetId)).for("update");
      let budget = budgetOf(budgetRow!);
      const approval = approvalOf(row, budget.name);
      if (status === "approved" && approval.to_amount > budget.amount) {
        const raised = await store.update(budget.id, (b) => ({ ...inputOf(b), amount_usd: approval.to_amount }), decider);
        if (!raised.ok) throw new Error(`raising budget ${budget.id} failed: ${raised.message}`);
        budget = raised.budget;
      }
      const after = eyes.override === null ? approval : { ...approval, four_eyes_override: eyes.override };
      await audit(tx, { actor: decider, action: decision.decision, entity: "approval", entityId: id, before: existing, after });
      await this.announce(tx, approval, budget, now);
      return { ok: true, value: { approval, budget } };
    });
  }

  /**
   * The scheduled job: pending requests past their time become `expired`, each audited and
   * announced like a decision. Returns how many expired.
   */
  async expireApprovals(now: Date): Promise<number> {
    return this.database.db.transaction(async (tx) => (await this.expire(tx, lte(approvals.expiresAt, now), now)).length);
  }

  private async expire(tx: Writer, which: SQL, now: Date): Promise<Approval[]> {
    const rows = await tx
      .update(approvals)
      .set({ status: "expired", decidedAt: now })
      .where(and(eq(approvals.status, "pending"), which))
      .returning();
    if (rows.length === 0) return [];
    const owners = await tx.select().from(budgets).where(inArray(budgets.id, [...new Set(rows.map((r) => r.budgetId))]));
    const byId = new Map(owners.map((b) => [b.id, budgetOf(b)]));
    const expired: Approval[] = [];
    for (const row of rows) {
      const budget = byId.get(row.budgetId)!;
      const approval = approvalOf(row, budget.name);
      await audit(tx, { actor: "system", action: "expire", entity: "approval", entityId: row.id, before: { ...approval, status: "pending", decided_at: null }, after: approval });
      await this.announce(tx, approval, budget, now);
      expired.push(approval);
    }
    return expired;
  }

  /** Why a decision changed nothing: decided already, expired (marked so now if the job has not run yet), or gone. */
  private async alreadyDecided(tx: Writer, id: string, now: Date): Promise<ApprovalFailure> {
    const [late] = await this.expire(tx, and(eq(approvals.id, id), lte(approvals.expiresAt, now))!, now);
    const current = late ?? (await this.get(id, tx));
    if (!current) return { ok: false, kind: "not_found", message: `no approval request with id ${id}` };
    const message =
      current.status === "expired"
        ? `the request expired at ${current.expires_at.toISOString()} without a decision`
        : `already ${current.status} by ${shownDecider(current)} at ${current.decided_at?.toISOString()}`;
    return { ok: false, kind: "conflict", message, approval: current };
  }

  /** The outcome goes to every approvals channel, and to where the requester asked when they said. */
  private async announce(tx: Writer, approval: Approval, budget: Budget, now: Date): Promise<void> {
    const alert = decidedAlert(approval, budget, now);
    await this.notifier.enqueue(tx, [alert]);
    const channelId = approval.requested_via?.channel_id;
    if (channelId) await this.notifier.enqueue(tx, [alert], { channelIds: [channelId] });
  }
}
