import { App, type BlockAction, type ButtonAction, ErrorCode, ExpressReceiver, type RespondFn, type webApi } from "@slack/bolt";
import type { Express, RequestHandler } from "express";
import { z } from "zod";
import type { CommandContext } from "../../commands/context.ts";
import type { Place } from "../../commands/door.ts";
import { type Reply, refused, reply } from "../../commands/reply.ts";
import { AlertAction } from "../../src/alerts/alert.ts";
import type { IntegrationContext } from "../../src/integration.ts";
import type { Logger } from "../../src/logger.ts";
import { platformError } from "./deliver.ts";
import { homeView } from "./home.ts";
import { slackSdkLogger } from "./log.ts";
import { slackSettings } from "./settings.ts";
import { ACTION_PREFIX, RAISE_MODAL, type RenderOptions, type SlackMessage, raiseModal, replyMessage } from "./blocks.ts";

/*
 * Slack's door in: slash commands, button presses, the raise form and the App Home tab, received by Bolt's
 * ExpressReceiver on the gateway's own express app at /slack/events. Bolt checks every request's
 * signature on its raw body (nothing parses bodies ahead of it). Everything asked is answered
 * through the door (commands/door.ts): this file only turns Slack payloads into a person, a place
 * and words or a button, and replies into Block Kit.
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
const response = (r: Reply, options: RenderOptions = {}): Response => ({ response_type: r.visibility === "shared" && !r.error ? "in_channel" : "ephemeral", ...replyMessage(r, options) });

/**
 * Whether response_url refused a message for its content: Slack answers a 200 with
 * `{ok: false, error: "invalid_blocks"}`, or a 400, which Bolt's respond throws as a RespondError
 * (without the body). Expired URLs (404) and rate limits (429) are not refusals of the blocks.
 */
async function refusedBlocks(outcome: { answer: unknown } | { error: unknown }): Promise<boolean> {
  if ("error" in outcome) return (outcome.error as { code?: string; statusCode?: number }).code === ErrorCode.RespondError && (outcome.error as { statusCode?: number }).statusCode === 400;
  const answer = outcome.answer as { clone?: () => { text(): Promise<string> } } | undefined;
  const text = answer?.clone ? await answer.clone().text().catch(() => "") : "";
  return /"error"\s*:\s*"invalid_blocks"/.test(text) || text.trim() === "invalid_blocks";
}

/**
 * Sends a reply through response_url. A reply with charts goes with Slack's chart and table
 * blocks first; if Slack refuses them (a client or workspace without them), the same reply goes
 * once more with text bars instead: never retried as it was.
 */
async function respondWithFallback(respond: RespondFn, r: Reply, extra: { response_type?: "ephemeral"; replace_original: false }): Promise<void> {
  const send = async (options: RenderOptions) => {
    try {
      return { refused: await refusedBlocks({ answer: await respond({ ...response(r, options), ...extra }) }) };
    } catch (error) {
      if (await refusedBlocks({ error })) return { refused: true };
      throw error;
    }
  };
  if (r.charts.length === 0) return void (await send({ native: false }));
  if ((await send({ native: true })).refused) await send({ native: false });
}

/** What the raise form carries from the button to the submission; no channel when it was opened from the Home tab. */
const RaiseMetadata = z.object({ budget: z.string(), team_id: z.string(), channel_id: z.string().optional(), channel_name: z.string().optional() });

/** How Slack refuses a view's blocks: views answer `invalid_arguments` with the reasons, messages `invalid_blocks`. */
const VIEW_REFUSED: ReadonlySet<string> = new Set(["invalid_arguments", "invalid_blocks"]);

/** The answer to a press on the Home tab of someone who reads nothing (a viewer given no scopes). */
const SEES_NOTHING = refused("Nothing to see yet", "You see no spend: an admin can give you a role, or scopes to see.");

/** Slack sends what was typed with `&`, `<` and `>` as entities: `team:R&D` arrives as `team:R&amp;D`. */
const typed = (text: string) => text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

/** `/spend this-week` is `spend this-week`; `/tollgate ...` is the rest; a renamed command is read by its name. */
function commandText(name: string, text: string): string {
  const head = name.replace(/^\//, "").toLowerCase();
  return head === "tollgate" ? typed(text) : `${head} ${typed(text)}`;
}

/** Mounts the Slack endpoints on `app`; requests not signed with the app's signing secret get 401. */
export function mountSlack(app: Express, context: IntegrationContext, options: SlackOptions): void {
  const { logger, door } = context;
  const settings = slackSettings(context.config);
  const token = settings.SLACK_BOT_TOKEN;
  const signingSecret = settings.SLACK_SIGNING_SECRET;
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
    clientOptions: { slackApiUrl: settings.SLACK_API_URL, retryConfig: { retries: 1 }, rejectRateLimitedCalls: true, timeout: 5000, logger: slackLogger },
  });

  const contextOf = async (userId: string, teamId: string, channelId: string, channelName?: string): Promise<CommandContext> =>
    door.context({ userId }, await door.conversation(place(teamId, channelId, channelName)));

  bolt.command(/.*/, async ({ command, ack, respond }) => {
    const work = door.safely("command", async () =>
      door.typed(commandText(command.command, command.text), await contextOf(command.user_id, command.team_id, command.channel_id, command.channel_name)),
    );
    const quick = await door.promptly(work, options.answerWithinMs);
    // An answer with charts always follows up: only then can a refusal of its chart blocks be seen and sent again as text.
    if (quick && quick.charts.length === 0) return ack(response(quick));
    await ack();
    await respondWithFallback(respond, quick ?? (await work), { replace_original: false }).catch((err: unknown) =>
      logger.warn({ component: "slack", error: (err as Error).name }, "slack follow-up failed"),
    );
  });

  /**
   * Draws `userId`'s Home tab afresh, with `notice` (the answer to what they pressed) on top. Its
   * chart and table blocks go first; if Slack refuses them, the same view goes again with text bars.
   */
  const publishHome = async (client: webApi.WebClient, userId: string, notice?: Reply) => {
    const home = await door.safely("home", () => door.home({ userId }));
    const at = new Date();
    // Unreadable just now: the tab says so, and nothing else.
    const view = (native: boolean) => ("about" in home ? homeView(home, { native, at, ...(notice ? { notice } : {}) }) : homeView(undefined, { at, notice: home }));
    try {
      await client.views.publish({ user_id: userId, view: view(true) });
    } catch (err) {
      if (!VIEW_REFUSED.has(platformError(err) ?? "")) throw err;
      await client.views.publish({ user_id: userId, view: view(false) });
    }
  };
  const homeFailed = (err: unknown) => logger.warn({ component: "slack", error: (err as Error).name, code: (err as { code?: string }).code }, "slack home publish failed");

  bolt.event("app_home_opened", async ({ event, client }) => {
    // The Messages tab is a conversation like any other; only the Home tab is drawn.
    if (event.tab !== "home") return;
    await publishHome(client, event.user).catch(homeFailed);
  });

  bolt.action<BlockAction<ButtonAction>>({ type: "block_actions", action_id: new RegExp(`^${ACTION_PREFIX}`) }, async ({ ack, body, action, client, respond }) => {
    await ack();
    // A press on the Home tab comes with no channel, message or response_url: it is answered by drawing the tab again.
    const fromHome = !body.channel && body.view?.type === "home";
    const tell = (r: Reply) =>
      (fromHome ? publishHome(client, body.user.id, r) : respondWithFallback(respond, r, { response_type: "ephemeral", replace_original: false })).catch((err: unknown) =>
        logger.warn({ component: "slack", error: (err as Error).name }, "slack action reply failed"),
      );
    const kind = AlertAction.shape.action.safeParse(action.action_id.slice(ACTION_PREFIX.length).split(":")[0]);
    const teamId = body.team?.id ?? body.user.team_id;
    const channel = body.channel;
    if (!kind.success || !teamId || (!channel && !fromHome)) return void (await tell(reply({ title: "That button does nothing any more", error: true })));
    const target = action.value ?? "";
    const result = await door.safely("action", async () => {
      const ctx = channel ? await contextOf(body.user.id, teamId, channel.id, channel.name) : await door.personal({ userId: body.user.id });
      if (!ctx) return SEES_NOTHING;
      if (kind.data === "request_raise") {
        const refused = await door.raiseRefusal(ctx);
        if (refused) return refused;
        const metadata = JSON.stringify({ budget: target, team_id: teamId, ...(channel ? { channel_id: channel.id, channel_name: channel.name } : {}) } satisfies z.infer<typeof RaiseMetadata>);
        await client.views.open({ trigger_id: body.trigger_id, view: raiseModal(target, metadata) });
        return undefined;
      }
      return door.pressed({ action: kind.data, target }, ctx);
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
    const reason = (view.state.values.reason?.value?.value ?? "").trim();
    const amount = door.readAmount(view.state.values.amount?.value?.value ?? "");
    if (!amount.ok) return ack({ response_action: "errors", errors: { amount: `${amount.problem}.` } });
    if (amount.rest.length > 0) return ack({ response_action: "errors", errors: { amount: `Only the amount goes here, such as 800; "${amount.rest[0]}" belongs in the reason.` } });
    const { budget, team_id, channel_id, channel_name } = meta.data;
    const result = await door.safely("raise form", async () => {
      const ctx = channel_id ? await contextOf(body.user.id, team_id, channel_id, channel_name) : await door.personal({ userId: body.user.id });
      return ctx ? door.raise(budget, amount.amount, reason, ctx) : SEES_NOTHING;
    });
    if (result.error) return ack({ response_action: "errors", errors: { amount: result.summary ?? result.title } });
    await ack();
    // Asked from the Home tab: the tab is drawn again with the confirmation and the request waiting.
    const confirm = channel_id ? client.chat.postEphemeral({ channel: channel_id, user: body.user.id, ...replyMessage(result) }) : publishHome(client, body.user.id, result);
    await confirm.catch((err: unknown) => logger.warn({ component: "slack", error: (err as Error).name }, "slack raise confirmation failed"));
  });

  bolt.error(async (error) => {
    logger.error({ component: "slack", error: error.name, code: error.code }, "slack request failed");
  });
}

/** A Slack channel as a place; every answer there is ephemeral unless it is shared on purpose (`share`, a subscription). */
const place = (teamId: string, channelId: string, channelName?: string): Place => ({
  address: { team_id: teamId, channel_id: channelId },
  ...(channelName ? { name: `#${channelName}` } : {}),
  private: true,
});
