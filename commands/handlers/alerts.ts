import type { Command } from "../command.ts";
import { type CommandContext, actorName } from "../context.ts";
import { type Reply, reply } from "../reply.ts";

type AlertsCommand = Extract<Command, { verb: `alerts.${string}` | "subscribe" | "unsubscribe" }>;

const actor = (ctx: CommandContext) => actorName(ctx.caller);
const refusal = (title: string, message: string) => reply({ title, summary: message, error: true });
const notBound = () => refusal("This conversation gets no alerts", "Mutes apply to a conversation that is subscribed; an admin can subscribe it with subscribe team:search alerts.");

/** Alerts seen from a conversation: the recent ones, muting a budget here, and what this conversation subscribes to. */
export async function alerts(cmd: AlertsCommand, ctx: CommandContext): Promise<Reply> {
  const { services, conversation } = ctx;
  switch (cmd.verb) {
    case "alerts.recent": {
      const recent = await services.recentAlerts(10);
      if (recent.length === 0) return reply({ title: "No recent alerts", summary: "Nothing has crossed a line lately." });
      return reply({ title: "Recent alerts", table: { columns: ["when", "budget", "alert"], rows: recent.map((a) => [a.at.slice(0, 16).replace("T", " "), a.budget?.name ?? "", a.title]) } });
    }
    case "alerts.mute": {
      if (!conversation.channelId) return notBound();
      const until = new Date(ctx.now.getTime() + cmd.durationMs);
      const result = await services.mutes.mute(conversation.channelId, cmd.name, until, actor(ctx));
      if (!result.ok) return refusal("Nothing was muted", result.message);
      return reply({ title: `${cmd.name} muted here for ${cmd.duration}`, summary: `No alerts about it in this conversation until ${until.toISOString().slice(0, 16).replace("T", " ")} UTC; alerts unmute ${cmd.name} undoes it.` });
    }
    case "alerts.unmute": {
      if (!conversation.channelId) return notBound();
      const result = await services.mutes.unmute(conversation.channelId, cmd.name, actor(ctx));
      if (!result.ok) return refusal("Nothing was unmuted", result.message);
      return reply({ title: `${cmd.name} unmuted here`, summary: "Its alerts reach this conversation again." });
    }
    case "subscribe": {
      const result = await services.channels.subscribe(conversation, cmd.scope, cmd.kinds, actor(ctx));
      if (!result.ok) return refusal("Not subscribed", result.message);
      const scope = Object.entries(cmd.scope).map(([d, v]) => `${d}:${v}`).join(" ") || "all spend";
      return reply({ title: "Subscribed", summary: `This conversation now gets ${cmd.kinds.join(", ")} for ${scope}.`, visibility: "shared" });
    }
    case "unsubscribe": {
      const result = await services.channels.unsubscribe(conversation, actor(ctx));
      if (!result.ok) return refusal("Not unsubscribed", result.message);
      return reply({ title: "Unsubscribed", summary: "This conversation gets no more alerts or digests.", visibility: "shared" });
    }
  }
}
