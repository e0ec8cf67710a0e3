import { type Role, hasRole } from "../src/approvals/members.ts";
import type { CommandContext } from "./context.ts";
import { type Reply, reply } from "./reply.ts";

export type { Role };

/**
 * The answer to a caller whose role does not allow what `verb` asks (`budget.raise`); undefined
 * when it does. The door checks every command with it, and forms before they open.
 */
export async function refusal(verb: string, needed: Role, ctx: Pick<CommandContext, "caller" | "services">): Promise<Reply | undefined> {
  if (needed === "viewer") return undefined;
  const role = await ctx.services.members.roleOfActor(ctx.caller);
  if (hasRole(role, needed)) return undefined;
  return reply({ title: "Not allowed", summary: `${verb.replace(".", " ")} needs the ${needed} role; you are a ${role}. An admin can change that with tollgate members set.`, error: true });
}
