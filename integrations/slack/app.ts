import { App, type BlockAction, type ButtonAction, ExpressReceiver } from "@slack/bolt";
import type { Express, RequestHandler } from "express";
import { z } from "zod";
import { actionCommand } from "../../commands/actions.ts";
import type { CommandContext, CommandServices, Conversation } from "../../commands/context.ts";
import { parseAmount } from "../../commands/parse.ts";
import { type Reply, reply } from "../../commands/reply.ts";
import { answer, refusal, runCommand } from "../../commands/run.ts";
import { AlertAction } from "../../src/alerts/alert.ts";
import type { Config } from "../../src/config.ts";
import type { IntegrationContext } from "../../src/integration.ts";
import type { Logger } from "../../src/logger.ts";
import { slackSdkLogger } from "./log.ts";
import { ACTION_PREFIX, RAISE_MODAL, type SlackMessage, raiseModal, replyMessage } from "./blocks.ts";
import { within } from "../../commands/within.ts";

/*
 * Slack's door in: slash commands, button presses and the raise form, received by Bolt's
 * ExpressReceiver on the gateway's own express app at /slack/events. Bolt checks every request's
 * signature on its raw body (nothing parses bodies ahead of it). Everything asked is answered by
 * commands/: this file only turns Slack payloads into a caller, a conversation and a command, and
 * replies into Block Kit.
 */

export interface SlackOptions {
  /**
   * How long a slash command's answer may take to go in the acknowledgement itself. Slack allows
   * 3 s for it; a slower answer is acknowledged at once and sent through response_url. 0 always
   * follows up.
   */
  answerWithinMs: number;
}

export const DEFAULT_SLACK_OPTIONS: SlackOptions = { answerWithinMs: 2000 };

const PLATFORM = "slack";
const MAX_SKEW_S = 300;

/**
 * Bolt refuses requests stamped more than five minutes ago; one stamped more than five minutes
 * ahead is as much a replay risk (Slack's guidance is a window both ways), so it is refused here.
 */
function notFromTheFuture(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const stamp = Number(req.get("x-slack-request-timestamp"));
    if (Number.isFinite(stamp) && stamp - Date.now() / 1000 > MAX_SKEW_S) {
      logger.warn({ component: "slack" }, "request refused: its timestamp is more than five minutes ahead");
      res.status(401).send();
      return;
    }
    next();
  };
}

type Response = SlackMessage & { response_type: "in_channel" | "ephemeral" };

/** Shared only when asked (`share`) and never a refusal: a mistyped command is nobody else's business. */
const response = (r: Reply): Response => ({ response_type: r.visibility === "shared" && !r.error ? "in_channel" : "ephemeral", ...replyMessage(r) });

const TROUBLE = reply({ title: "Something went wrong", summary: "Tollgate could not answer just now; please try again in a minute.", error: true });

/** What the raise form carries from the button to the submission. */
const RaiseMetadata = z.object({ budget: z.string(), team_id: z.string(), channel_id: z.string(), channel_name: z.string().optional() });

/** Slack sends what was typed with `&`, `<` and `>` as entities: `team:R&D` arrives as `team:R&amp;D`. */
const typed = (text: string) => text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

/** `/spend this-week` is `spend this-week`; `/tollgate ...` is the rest; a renamed command is read by its name. */
function commandText(name: string, text: string): string {
  const head = name.replace(/^\//, "").toLowerCase();
  return head === "tollgate" ? typed(text) : `${head} ${typed(text)}`;
}

/** Mounts the Slack endpoints on `app`; requests not signed with the app's signing secret get 401. */
export function mountSlack(app: Express, context: IntegrationContext, options: SlackOptions): void {
  const { config, logger, commands: services } = context;
  const token = config.SLACK_BOT_TOKEN;
  const signingSecret = config.SLACK_SIGNING_SECRET;
  if (!token || !signingSecret) return;
  const slackLogger = slackSdkLogger(logger);

  app.post("/slack/events", notFromTheFuture(logger));
  const receiver = new ExpressReceiver({ signingSecret, endpoints: "/slack/events", app, logger: slackLogger });
  const bolt = new App({
    receiver,
    // The bot token as is: no auth.test at start, so the gateway starts whether or not Slack is reachable.
    authorize: async () => ({ botToken: token }),
    ignoreSelf: false,
    convoStore: false,
    logger: slackLogger,
    clientOptions: { slackApiUrl: config.SLACK_API_URL, retryConfig: { retries: 1 }, rejectRateLimitedCalls: true, timeout: 5000, logger: slackLogger },
  });

  /** Answers `work`, turning any failure into an apology: people never see a stack trace, the log gets the error's kind. */
  async function safely<T extends Reply | undefined>(what: string, work: () => Promise<T>): Promise<T | Reply> {
    try {
      return await work();
    } catch (err) {
      logger.error({ component: "slack", error: (err as Error).name, code: (err as { code?: string }).code }, `slack ${what} failed`);
      return TROUBLE;
    }
  }

  async function contextOf(userId: string, teamId: string, channelId: string, channelName?: string): Promise<CommandContext> {
    return { caller: { platform: PLATFORM, userId }, conversation: await conversation(services, config, teamId, channelId, channelName), services, now: new Date() };
  }

  bolt.command(/.*/, async ({ command, ack, respond }) => {
    const work = safely("command", async () =>
      runCommand(commandText(command.command, command.text), await contextOf(command.user_id, command.team_id, command.channel_id, command.channel_name)),
    ).then(response);
    const quick = await within(work, options.answerWithinMs);
    if (quick) return ack(quick);
    await ack();
    await respond({ ...(await work), replace_original: false }).catch((err: unknown) => logger.warn({ component: "slack", error: (err as Error).name }, "slack follow-up failed"));
  });

  bolt.action<BlockAction<ButtonAction>>({ type: "block_actions", action_id: new RegExp(`^${ACTION_PREFIX}`) }, async ({ ack, body, action, client, respond }) => {
    await ack();
    const tell = (r: Reply) =>
      respond({ ...response(r), response_type: "ephemeral", replace_original: false }).catch((err: unknown) =>
        logger.warn({ component: "slack", error: (err as Error).name }, "slack action reply failed"),
      );
    const kind = AlertAction.shape.action.safeParse(action.action_id.slice(ACTION_PREFIX.length).split(":")[0]);
    const teamId = body.team?.id ?? body.user.team_id;
    if (!kind.success || !teamId || !body.channel) return void (await tell(reply({ title: "That button does nothing any more", error: true })));
    const target = action.value ?? "";
    const channel = body.channel;
    const result = await safely("action", async () => {
      const ctx = await contextOf(body.user.id, teamId, channel.id, channel.name);
      if (kind.data === "request_raise") {
        const refused = await refusal("budget.raise", ctx);
        if (refused) return refused;
        const metadata = JSON.stringify({ budget: target, team_id: teamId, channel_id: channel.id, channel_name: channel.name } satisfies z.infer<typeof RaiseMetadata>);
        await client.views.open({ trigger_id: body.trigger_id, view: raiseModal(target, metadata) });
        return undefined;
      }
      const cmd = await actionCommand({ action: kind.data, label: "", target }, services, ctx.now);
      return cmd ? answer(cmd, ctx) : reply({ title: "Nothing to show", summary: `${target} is no longer a budget or a period.`, error: true });
    });
    if (result) await tell(result);
  });

  bolt.view(RAISE_MODAL, async ({ ack, body, view, client }) => {
    const meta = RaiseMetadata.safeParse((() => {
      try {
        return JSON.parse(view.private_metadata);
      } catch {
        return undefined;
      }
    })());
    if (!meta.success) return ack({ response_action: "errors", errors: { amount: "This form is out of date; close it and press Request raise again." } });
    const words = (view.state.values.amount?.value?.value ?? "").trim().split(/\s+/).filter(Boolean);
    const reason = (view.state.values.reason?.value?.value ?? "").trim();
    const amount = parseAmount(words);
    if (!amount.ok) return ack({ response_action: "errors", errors: { amount: `${amount.error.message}: expected ${amount.error.expected}.` } });
    if (words.length > amount.used) return ack({ response_action: "errors", errors: { amount: `Only the amount goes here, such as 800; "${words[amount.used]}" belongs in the reason.` } });
    const { budget, team_id, channel_id, channel_name } = meta.data;
    const result = await safely("raise form", async () =>
      answer({ verb: "budget.raise", name: budget, amount: amount.amount, reason }, await contextOf(body.user.id, team_id, channel_id, channel_name)),
    );
    if (result.error) return ack({ response_action: "errors", errors: { amount: result.summary ?? result.title } });
    await ack();
    await client.chat
      .postEphemeral({ channel: channel_id, user: body.user.id, ...replyMessage(result) })
      .catch((err: unknown) => logger.warn({ component: "slack", error: (err as Error).name }, "slack raise confirmation failed"));
  });

  bolt.error(async (error) => {
    logger.error({ component: "slack", error: error.name, code: error.code }, "slack request failed");
  });
}

/** The conversation a Slack channel is, with the Tollgate channel bound to it and that channel's time zone. */
async function conversation(services: CommandServices, config: Config, teamId: string, channelId: string, channelName?: string): Promise<Conversation> {
  const address = { team_id: teamId, channel_id: channelId };
  const bound = await services.channels.find(PLATFORM, address);
  return {
    platform: PLATFORM,
    address,
    ...(bound ? { channelId: bound.id } : {}),
    ...(channelName ? { name: `#${channelName}` } : {}),
    timezone: bound?.timezone ?? config.TOLLGATE_TIMEZONE,
    // Every answer here is ephemeral unless it is shared on purpose (`share`, a subscription).
    private: true,
  };
}
