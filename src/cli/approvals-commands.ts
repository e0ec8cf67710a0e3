import { CliError } from "./admin-client.ts";
import type { CommandContext } from "./commands.ts";
import { withClient } from "./connect.ts";
import { renderTable } from "./render.ts";

const out = (text: string) => process.stdout.write(`${text}\n`);
const str = (v: string | boolean | undefined) => (typeof v === "string" ? v : undefined);
const json = (value: unknown) => ({ type: "application/json", data: JSON.stringify(value) });
const path = (...parts: string[]) => parts.map(encodeURIComponent).join("/");

const MEMBER_COLUMNS = ["platform", "user_id", "role", "name", "updated_at"];
const APPROVAL_COLUMNS = ["id", "budget", "from_usd", "to_usd", "status", "requested_by", "decided_by", "reason", "expires_at"];

/** `--by slack:U123`, or the admin token's holder. */
const by = (ctx: CommandContext) => str(ctx.options.by) ?? "admin";

async function decide(ctx: CommandContext, decision: "approve" | "reject", id: string): Promise<number> {
  const body = {
    decision,
    by: by(ctx),
    ...(str(ctx.options.reason) ? { reason: str(ctx.options.reason) } : {}),
    // An admin deciding their own request says why (four eyes).
    ...(str(ctx.options.override) ? { override: str(ctx.options.override) } : {}),
  };
  const decided = await withClient(ctx, (c) => c.postJson<Record<string, unknown>>(`/api/approvals/${path(id)}/decision`, body));
  out(renderTable([decided], APPROVAL_COLUMNS));
  if (decision === "approve") out(`\n${decided.budget} is now $${decided.budget_amount_usd}`);
  return 0;
}

/** `tollgate members ...` and `tollgate approvals ...`, through the admin API. */
export const approvalsCommands: Record<string, (ctx: CommandContext) => Promise<number>> = {
  async members(ctx) {
    const [action, platform, userId, role, ...extra] = ctx.args;
    if (action === "list" && !platform) {
      const { members } = await withClient(ctx, (c) => c.get<{ members: Record<string, unknown>[] }>("/api/members"));
      out(renderTable(members, MEMBER_COLUMNS));
      return 0;
    }
    if (action === "set" && platform && userId && role && extra.length === 0) {
      const body = { platform, user_id: userId, role, ...(str(ctx.options.name) ? { name: str(ctx.options.name) } : {}) };
      const res = await withClient(ctx, (c) => c.request("PUT", "/api/members", json(body)));
      out(renderTable([res.json() as Record<string, unknown>], MEMBER_COLUMNS));
      return 0;
    }
    if (action === "remove" && platform && userId && !role) {
      const res = await withClient(ctx, (c) => c.request("DELETE", `/api/members/${path(platform, userId)}`));
      out(`removed ${platform}:${userId} (was ${(res.json() as { role: string }).role})`);
      return 0;
    }
    throw new CliError("use: tollgate members list | members set PLATFORM USER_ID viewer|requester|approver|admin [--name NAME] | members remove PLATFORM USER_ID");
  },

  async approvals(ctx) {
    const [action, ...rest] = ctx.args;
    if (action === "list" && rest.length === 0) {
      const query = str(ctx.options.status) ? `?status=${encodeURIComponent(str(ctx.options.status)!)}` : "";
      const { approvals } = await withClient(ctx, (c) => c.get<{ approvals: Record<string, unknown>[] }>(`/api/approvals${query}`));
      out(renderTable(approvals, APPROVAL_COLUMNS));
      return 0;
    }
    if (action === "request" && rest.length >= 3) {
      const [budget, amount, ...reason] = rest;
      const body = { budget, amount_usd: amount, reason: reason.join(" "), requested_by: by(ctx) };
      const created = await withClient(ctx, (c) => c.postJson<Record<string, unknown>>("/api/approvals", body));
      out(renderTable([created], APPROVAL_COLUMNS));
      out(`\nAsked the approvers; decide with: tollgate approvals approve ${created.id} --by PLATFORM:USER_ID`);
      return 0;
    }
    if ((action === "approve" || action === "reject") && rest.length === 1) return decide(ctx, action, rest[0]!);
    throw new CliError(
      "use: tollgate approvals list [--status pending|approved|rejected|expired] | approvals request BUDGET AMOUNT REASON... [--by PLATFORM:USER_ID] | approvals approve|reject ID [--by PLATFORM:USER_ID] [--reason TEXT] [--override REASON]",
    );
  },
};
