import type { Failure } from "../errors.ts";
import { type Actor, type Role, actorText } from "./members.ts";

/**
 * Whether `decider` may decide a raise that `requestedBy` asked for. Four eyes: the requester
 * never decides their own raise, so one person cannot lift a budget alone. An admin may still,
 * when they say why (`override`): the decision is then marked as an override and audited with
 * that reason. `required: false` (TOLLGATE_FOUR_EYES=off) is for teams of one.
 * The one rule every door applies (chat, the admin API, the dashboard).
 */
export function fourEyes(
  requestedBy: string,
  decider: Actor,
  deciderRole: Role,
  opts: { required: boolean; override?: string },
): { ok: true; override: string | null } | Failure<"forbidden"> {
  const own = requestedBy === actorText(decider);
  if (!own || !opts.required) return { ok: true, override: null };
  const reason = opts.override?.trim();
  if (deciderRole === "admin" && reason) return { ok: true, override: reason };
  return {
    ok: false,
    kind: "forbidden",
    message:
      deciderRole === "admin"
        ? `${actorText(decider)} asked for this raise; another approver decides it, or an admin overrides with a reason`
        : `${actorText(decider)} asked for this raise; another approver or an admin decides it`,
  };
}
