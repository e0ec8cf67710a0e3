import type { ChannelInfo } from "../alerts/channels.ts";
import type { FiringInfo } from "../alerts/firings.ts";
import type { MuteInfo } from "../alerts/mutes.ts";
import type { NotificationInfo } from "../alerts/outbox.ts";
import { describeScope } from "../budgets/budget.ts";
import { CliError } from "./admin-client.ts";
import { scopeOption } from "./budget-commands.ts";
import type { Command, CommandContext } from "./commands.ts";
import { withClient } from "./connect.ts";
import { renderTable } from "./render.ts";

const out = (text: string) => process.stdout.write(`${text}\n`);
const str = (v: string | boolean | undefined) => (typeof v === "string" ? v : undefined);
const json = (value: unknown) => ({ type: "application/json", data: JSON.stringify(value) });
const at = (...parts: string[]) => parts.map(encodeURIComponent).join("/");

const CHANNEL_COLUMNS = ["id", "name", "platform", "address", "scopes", "kinds", "timezone", "enabled", "disabled_reason"];
const channelRow = (c: ChannelInfo) => ({
  ...c,
  address: typeof c.address.url === "string" ? c.address.url : JSON.stringify(c.address),
  scopes: c.subscriptions.scopes.length === 0 ? "everything" : c.subscriptions.scopes.map(describeScope).join("; "),
  kinds: c.subscriptions.kinds.join(","),
});

const MUTE_COLUMNS = ["channel_id", "budget", "until", "muted_by"];
const muteRow = (m: MuteInfo) => ({ ...m, budget: m.budget.name });

function channelOption(ctx: CommandContext, use: string): string {
  const channel = str(ctx.options.channel);
  if (!channel) throw new CliError(`give the channel: ${use} --channel ID (tollgate channels list shows the ids)`);
  return channel;
}

async function channels(ctx: CommandContext): Promise<number> {
  const [action, first, second, ...extra] = ctx.args;
  if (action === "list" && !first) {
    const { channels } = await withClient(ctx, (c) => c.get<{ channels: ChannelInfo[] }>("/api/channels"));
    out(renderTable(channels.map(channelRow), CHANNEL_COLUMNS));
    return 0;
  }
  if (action === "create" && first && second && extra.length === 0) {
    const scope = str(ctx.options.scope);
    const kinds = str(ctx.options.kinds)?.split(",").map((k) => k.trim());
    const body = {
      platform: "webhook",
      name: first,
      url: second,
      subscriptions: { scopes: scope === undefined ? [] : [scopeOption(scope)], ...(kinds ? { kinds } : {}) },
      ...(str(ctx.options.tz) ? { timezone: str(ctx.options.tz) } : {}),
    };
    const created = await withClient(ctx, (c) => c.postJson<ChannelInfo & { secret: string }>("/api/channels", body));
    out(renderTable([channelRow(created)], CHANNEL_COLUMNS));
    out(`\nsigning secret: ${created.secret}\nThis is the only time the secret is shown; give it to the receiver now.`);
    return 0;
  }
  if ((action === "enable" || action === "disable") && first && !second) {
    const res = await withClient(ctx, (c) => c.request("PATCH", `/api/channels/${at(first)}`, json({ enabled: action === "enable" })));
    out(renderTable([channelRow(res.json() as ChannelInfo)], CHANNEL_COLUMNS));
    return 0;
  }
  if (action === "remove" && first && !second) {
    const res = await withClient(ctx, (c) => c.request("DELETE", `/api/channels/${at(first)}`));
    out(`removed ${(res.json() as ChannelInfo).name} with its mutes and messages`);
    return 0;
  }
  throw new CliError(
    "use: tollgate channels list | channels create NAME URL [--scope team:search] [--kinds alerts,approvals,daily,weekly] [--tz ZONE] | channels enable|disable|remove ID",
  );
}

async function alerts(ctx: CommandContext): Promise<number> {
  const [action = "recent", budget, ...duration] = ctx.args;
  if (action === "recent" && !budget) {
    const query = new URLSearchParams({ limit: str(ctx.options.limit) ?? "20" });
    const { alerts } = await withClient(ctx, (c) => c.get<{ alerts: FiringInfo[] }>(`/api/alerts?${query}`));
    out(renderTable(alerts.map((a) => ({ ...a, budget: a.budget.name })), ["fired_at", "budget", "kind", "threshold", "spend_usd", "amount_usd", "period_start"]));
    return 0;
  }
  if (action === "mute" && budget && duration.length > 0) {
    const channel = channelOption(ctx, "tollgate alerts mute BUDGET DURATION");
    const res = await withClient(ctx, (c) => c.postJson<MuteInfo>(`/api/channels/${at(channel)}/mutes`, { budget, duration: duration.join(" ") }));
    out(`${res.budget.name} muted in channel ${res.channel_id} until ${res.until}`);
    return 0;
  }
  if (action === "unmute" && budget && duration.length === 0) {
    const channel = channelOption(ctx, "tollgate alerts unmute BUDGET");
    const res = await withClient(ctx, (c) => c.request("DELETE", `/api/channels/${at(channel, "mutes", budget)}`));
    out(`${(res.json() as MuteInfo).budget.name} unmuted in channel ${channel}`);
    return 0;
  }
  if (action === "mutes" && !budget) {
    const channel = str(ctx.options.channel);
    const path = channel ? `/api/channels/${at(channel)}/mutes` : "/api/mutes";
    const { mutes } = await withClient(ctx, (c) => c.get<{ mutes: MuteInfo[] }>(path));
    out(renderTable(mutes.map(muteRow), MUTE_COLUMNS));
    return 0;
  }
  throw new CliError("use: tollgate alerts [recent] | alerts mute BUDGET DURATION --channel ID | alerts unmute BUDGET --channel ID | alerts mutes [--channel ID]");
}

async function outbox(ctx: CommandContext): Promise<number> {
  const [action, id, ...extra] = ctx.args;
  if (action === undefined || action === "list") {
    const query = new URLSearchParams({ limit: str(ctx.options.limit) ?? "50" });
    if (str(ctx.options.status)) query.set("status", str(ctx.options.status)!);
    const { notifications } = await withClient(ctx, (c) => c.get<{ notifications: NotificationInfo[] }>(`/api/outbox?${query}`));
    const rows = notifications.map((n) => ({ ...n, channel: n.channel.name, alerts: n.alerts.map((a) => a.title).join(" | ") }));
    out(renderTable(rows, ["id", "channel", "status", "attempts", "next_attempt_at", "last_error", "alerts"]));
    return 0;
  }
  if (action === "resend" && id && extra.length === 0) {
    const res = await withClient(ctx, (c) => c.request("POST", `/api/outbox/${at(id)}/resend`));
    const n = res.json() as NotificationInfo;
    out(`notification ${n.id} to ${n.channel.name} is queued again`);
    return 0;
  }
  throw new CliError("use: tollgate outbox [--status pending|delivered|dead] [--limit N] | outbox resend ID");
}

/** `tollgate channels ...`, `tollgate alerts ...` and `tollgate outbox ...`, through the admin API. */
export const channelsCommands: Record<string, Command> = { channels, alerts, outbox };
