import { actorText } from "../../src/approvals/members.ts";
import { unsubscribeConversation } from "../binding.ts";
import { defineCommand } from "../command.ts";
import { extra, ok } from "../grammar.ts";
import { refused, reply } from "../reply.ts";

/** `unsubscribe`: this conversation gets no more alerts or digests. */
export const unsubscribe = defineCommand<{ verb: "unsubscribe" }>({
  name: "unsubscribe",
  aliases: ["unsub"],
  usage: "unsubscribe",
  examples: ["unsubscribe"],
  parse: (words) => extra(words, 0, "unsubscribe") ?? ok({ verb: "unsubscribe" }),
  role: () => "admin",
  async run(_cmd, ctx) {
    const result = await unsubscribeConversation(ctx.services.channels, ctx.conversation, actorText(ctx.caller));
    if (!result.ok) return refused("Not unsubscribed", result.message);
    return reply({ title: "Unsubscribed", summary: "This conversation gets no more alerts or digests.", visibility: "shared" });
  },
});
