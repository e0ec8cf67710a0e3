import { actorText } from "../../src/approvals/members.ts";
import { defineCommand } from "../command.ts";
import type { CommandContext } from "../context.ts";
import { didYouMean, extra, fail, ok, parseDuration } from "../grammar.ts";
import { nearest } from "../../src/ledger/period.ts";
import { budgetReadable, readsNothing, readsOf } from "../read-scope.ts";
import { type Reply, refused, reply, utcMinute } from "../reply.ts";

export type AlertsValue = { verb: "alerts.recent" } | { verb: "alerts.mute"; name: string; durationMs: number; duration: string } | { verb: "alerts.unmute"; name: string };

const USAGE = "alerts [recent] | mute NAME DURATION | unmute NAME";

const notBound = () => refused("This conversation gets no alerts", "Mutes apply to a conversation that is subscribed; an admin can subscribe it with subscribe team:search alerts.");

function parse(words: string[]) {
  const [first, name, ...rest] = words;
  const action = (first ?? "recent").toLowerCase();
  if (action === "recent") return extra(words, 1, "alerts recent") ?? ok<AlertsValue>({ verb: "alerts.recent" });
  if (action === "mute") {
    if (!name) return fail("alerts mute needs the budget's name and a duration", "alerts mute NAME DURATION, such as alerts mute search-monthly 24h");
    const duration = parseDuration(rest);
    if (!duration.ok) return duration;
    return extra(rest, duration.used, "alerts mute NAME DURATION") ?? ok<AlertsValue>({ verb: "alerts.mute", name, durationMs: duration.ms, duration: duration.text });
  }
  if (action === "unmute") {
    if (!name) return fail("alerts unmute needs the budget's name", "alerts unmute NAME");
    return extra(rest, 0, "alerts unmute NAME") ?? ok<AlertsValue>({ verb: "alerts.unmute", name });
  }
  const suggestion = nearest(action, new Map(["recent", "mute", "unmute"].map((a) => [a, `alerts ${a}`])));
  return fail(`unknown alerts action "${first}"${didYouMean(suggestion)}`, USAGE, suggestion);
}

async function run(cmd: AlertsValue, ctx: CommandContext): Promise<Reply> {
  const { services, conversation } = ctx;
  switch (cmd.verb) {
    case "alerts.recent": {
      // Alerts of budgets outside what the asker reads here are not shown, nor those of no budget to one who reads scopes.
      const reads = await readsOf(ctx);
      const nothing = readsNothing(reads);
      if (nothing) return refused("Not readable here", nothing);
      const recent = (await services.alerts.recent(reads.all ? 10 : 50)).filter((a) => (a.budget ? budgetReadable(reads, a.budget) : reads.all)).slice(0, 10);
      if (recent.length === 0) return reply({ title: "No recent alerts", summary: "Nothing has crossed a line lately." });
      return reply({ title: "Recent alerts", table: { columns: ["when", "budget", "alert"], rows: recent.map((a) => [a.at.slice(0, 16).replace("T", " "), a.budget?.name ?? "", a.title]) } });
    }
    case "alerts.mute": {
      if (!conversation.channelId) return notBound();
      const until = new Date(ctx.now.getTime() + cmd.durationMs);
      const result = await services.mutes.mute(conversation.channelId, cmd.name, until, actorText(ctx.caller));
      if (!result.ok) return refused("Nothing was muted", result.message);
      return reply({ title: `${cmd.name} muted here for ${cmd.duration}`, summary: `No alerts about it in this conversation until ${utcMinute(until)}; alerts unmute ${cmd.name} undoes it.` });
    }
    case "alerts.unmute": {
      if (!conversation.channelId) return notBound();
      const result = await services.mutes.unmute(conversation.channelId, cmd.name, actorText(ctx.caller));
      if (!result.ok) return refused("Nothing was unmuted", result.message);
      return reply({ title: `${cmd.name} unmuted here`, summary: "Its alerts reach this conversation again." });
    }
  }
}

/** Alerts seen from a conversation: the recent ones, and muting a budget here for a while. */
export const alerts = defineCommand<AlertsValue>({
  name: "alerts",
  aliases: ["alert"],
  usage: USAGE,
  examples: ["alerts recent", "alerts mute team-search-monthly 24h"],
  parse,
  // Anyone may look; muting changes what a whole conversation gets.
  role: (value) => (value.verb === "alerts.recent" ? "viewer" : "requester"),
  run,
});
