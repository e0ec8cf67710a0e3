import { SUBSCRIPTION_KINDS, type SubscriptionKind } from "../../src/alerts/alert.ts";
import { actorText } from "../../src/approvals/members.ts";
import { type Scope, describeScope } from "../../src/budgets/budget.ts";
import { nearest } from "../../src/ledger/period.ts";
import { subscribeConversation } from "../binding.ts";
import { defineCommand } from "../command.ts";
import { KIND_WORDS, didYouMean, fail, isEverything, ok, scope } from "../grammar.ts";
import { readsText } from "../read-scope.ts";
import { refused, reply } from "../reply.ts";

export interface SubscribeValue {
  verb: "subscribe";
  /** Undefined: the scopes the conversation has; `all`: every scope, read and alerted. */
  scope?: Scope | "all";
  kinds: SubscriptionKind[];
}

const USAGE = "subscribe [SCOPE] [alerts|daily|weekly|approvals]";

/** `subscribe team:search alerts weekly`: this conversation gets those messages about that scope. */
export const subscribe = defineCommand<SubscribeValue>({
  name: "subscribe",
  aliases: ["sub"],
  usage: USAGE,
  examples: ["subscribe team:search alerts", "subscribe approvals", "subscribe weekly"],
  parse(words) {
    let s: Scope | "all" | undefined;
    const kinds = new Set<SubscriptionKind>();
    for (const word of words) {
      const kind = KIND_WORDS.get(word.toLowerCase());
      if (kind) kinds.add(kind);
      else if (word.includes(":") || isEverything(word)) {
        if (s) return fail(`the scope is given twice ("${word}")`, USAGE);
        const parsed = scope(word);
        if (!parsed.ok) return parsed;
        s = isEverything(word) ? "all" : parsed.scope;
      } else {
        const suggestion = nearest(word.toLowerCase(), KIND_WORDS);
        return fail(`"${word}" is neither a scope nor something to subscribe to${didYouMean(suggestion)}`, `a scope such as team:search, and any of ${SUBSCRIPTION_KINDS.join(", ")}`, suggestion);
      }
    }
    return ok<SubscribeValue>({ verb: "subscribe", ...(s ? { scope: s } : {}), kinds: kinds.size > 0 ? [...kinds] : ["alerts"] });
  },
  role: () => "admin",
  async run(cmd, ctx) {
    const result = await subscribeConversation(ctx.services.channels, ctx.conversation, cmd.scope, cmd.kinds, actorText(ctx.caller));
    if (!result.ok) return refused("Not subscribed", result.message);
    const scopeText = result.scopes.length > 0 ? result.scopes.map(describeScope).join(" or ") : "all spend";
    return reply({ title: "Subscribed", summary: `This conversation now gets ${cmd.kinds.join(", ")} for ${scopeText}. ${readsText(result)}`, visibility: "shared" });
  },
});
