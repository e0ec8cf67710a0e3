import { createHmac } from "node:crypto";
import { once } from "node:events";
import { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { randomId } from "./fake-upstream.ts";
import { keepConnections } from "../helpers/wait.ts";

/*
 * Slack, both ways, from its documented contract:
 * - the Web API (https://docs.slack.dev/apis/web-api/): POST /api/<method>, form-encoded or JSON,
 *   the token as `Authorization: Bearer`; every answer is HTTP 200 with `{ok, error?}`, except a
 *   rate limit: HTTP 429 with `Retry-After` in seconds. It records every call, keeps the messages
 *   it was sent so updates can be checked, refuses Block Kit beyond Slack's limits
 *   (`invalid_blocks`), and can be told to rate-limit or fail the next calls of a method;
 * - views.publish (https://docs.slack.dev/reference/methods/views.publish): a `home` view for a
 *   `user_id`, at most 100 blocks (https://docs.slack.dev/reference/block-kit/blocks) of the shapes
 *   checked for messages; a view Slack will not take is answered `invalid_arguments` with the
 *   reasons in `response_metadata.messages`, as Slack answers views; the last view of each user is kept;
 * - response_url (https://docs.slack.dev/interactivity/handling-user-interaction#message_responses):
 *   POST JSON to the URL a command or action payload carried;
 * - Slack as the sender: slash commands, interaction payloads and Events API callbacks (JSON), signed as Slack signs them
 *   (https://docs.slack.dev/authentication/verifying-requests-from-slack), with `x-slack-retry-num`
 *   when it is a retry.
 */

export interface SlackCall {
  method: string;
  /** The arguments, with JSON-valued ones (blocks, view) parsed. */
  args: Record<string, unknown>;
  headers: IncomingHttpHeaders;
}

export interface SlackMessageRecord {
  channel: string;
  ts: string;
  text: string;
  blocks: Block[];
  /** How many times chat.update changed it. */
  updates: number;
}

/** What a test sees of a response_url post. */
export interface SlackResponse {
  /** The id in the URL: which payload it answers. */
  id: string;
  body: Record<string, unknown>;
}

type Block = Record<string, unknown> & { type: string };

/** A view as Slack keeps it after views.publish. */
export interface PublishedView {
  id: string;
  team_id: string;
  type: "home";
  blocks: Block[];
  hash: string;
  /** How many times it was published. */
  publishes: number;
}

export interface FakeSlack {
  /** Base URL of the Web API, with the trailing slash the SDK expects: give it as SLACK_API_URL. */
  apiUrl: string;
  url: string;
  botToken: string;
  calls: SlackCall[];
  responses: SlackResponse[];
  /** response_url posts refused for their blocks (not shown to anyone). */
  refusedResponses: SlackResponse[];
  /** Messages by `channel ts`. */
  messages: Map<string, SlackMessageRecord>;
  /** The Home tab views.publish last set for each user, by user id. */
  homes: Map<string, PublishedView>;
  callsOf(method: string): SlackCall[];
  /** The next `times` calls of `method` answer 429 with `Retry-After: seconds`. */
  rateLimit(method: string, seconds: number, times?: number): void;
  /**
   * While on, any message or response holding a data_visualization or data_table block is refused
   * with invalid_blocks, as by a workspace those blocks have not reached.
   */
  refuseNativeBlocks(on: boolean): void;
  /** The next call of `method` answers `{ok: false, error}`. */
  failNext(method: string, error: string): void;
  /** A response_url for a payload; its posts land in `responses` under `id`. */
  responseUrl(id: string): string;
  /** A trigger id views.open accepts once, as Slack's expire after one use. */
  triggerId(): string;
  close(): Promise<void>;
}

export const TEAM_ID = "T0TOLLGATE";

/**
 * The data_visualization block's documented limits
 * (https://docs.slack.dev/reference/block-kit/blocks/data-visualization-block): a title of at most
 * 50 characters; pie: 1–6 segments; bar, line, area: 1–6 series with distinct names, each with a
 * point per category (labels matching the categories), categories of at most 20 characters, at
 * most 20 of them; numbers as values.
 */
function chartProblems(b: Block, at: string): string[] {
  const problems: string[] = [];
  const title = b.title;
  if (typeof title !== "string" || title.length === 0 || title.length > 50) problems.push(`${at}.title must be 1 to 50 characters`);
  const chart = b.chart as { type?: string; segments?: { label?: unknown; value?: unknown }[]; series?: { name?: unknown; data?: { label?: unknown; value?: unknown }[] }[]; axis_config?: { categories?: unknown[] } } | undefined;
  if (!chart) return [...problems, `${at} has no chart`];
  const number = (v: unknown) => typeof v === "number" && Number.isFinite(v);
  if (chart.type === "pie") {
    const segments = chart.segments ?? [];
    if (segments.length < 1 || segments.length > 6) problems.push(`${at}.chart has ${segments.length} segments; 1 to 6`);
    segments.forEach((seg, i) => (typeof seg.label !== "string" || !number(seg.value)) && problems.push(`${at}.chart.segments[${i}] needs a label and a number`));
    return problems;
  }
  if (!["bar", "line", "area"].includes(chart.type ?? "")) return [...problems, `${at}.chart.type ${String(chart.type)} is not pie, bar, line or area`];
  const categories = chart.axis_config?.categories ?? [];
  if (categories.length < 1 || categories.length > 20) problems.push(`${at}.chart has ${categories.length} categories; 1 to 20`);
  categories.forEach((c, i) => (typeof c !== "string" || c.length > 20) && problems.push(`${at}.chart.axis_config.categories[${i}] must be a string of at most 20 characters`));
  const series = chart.series ?? [];
  if (series.length < 1 || series.length > 6) problems.push(`${at}.chart has ${series.length} series; 1 to 6`);
  const names = series.map((x) => x.name);
  if (new Set(names).size !== names.length) problems.push(`${at}.chart repeats a series name`);
  series.forEach((x, i) => {
    const labels = (x.data ?? []).map((d) => d.label);
    if (JSON.stringify(labels) !== JSON.stringify(categories)) problems.push(`${at}.chart.series[${i}] labels do not match the categories`);
    (x.data ?? []).forEach((d, j) => !number(d.value) && problems.push(`${at}.chart.series[${i}].data[${j}].value is not a number`));
  });
  return problems;
}

/** The data_table block's documented limits: a caption; 2–101 rows (the header first) of 1–20 cells, all the same length. */
function dataTableProblems(b: Block, at: string): string[] {
  const problems: string[] = [];
  if (typeof b.caption !== "string") problems.push(`${at} needs a caption`);
  const rows = (b.rows as { type?: string; text?: unknown }[][] | undefined) ?? [];
  if (rows.length < 2 || rows.length > 101) problems.push(`${at} has ${rows.length} rows; 2 to 101`);
  const width = rows[0]?.length ?? 0;
  if (width < 1 || width > 20) problems.push(`${at} has ${width} columns; 1 to 20`);
  rows.forEach((row, i) => {
    if (row.length !== width) problems.push(`${at}.rows[${i}] has ${row.length} cells, not ${width}`);
    row.forEach((cell, j) => cell.type === "raw_text" && typeof cell.text !== "string" && problems.push(`${at}.rows[${i}][${j}] raw_text needs text`));
  });
  return problems;
}

/** Blocks a message holds; a modal or a Home tab view holds 100. */
export const MESSAGE_BLOCKS = 50;
export const VIEW_BLOCKS = 100;

/** Slack's documented Block Kit limits, checked on every message and view. */
export function blockProblems(blocks: unknown, where = "blocks", maxBlocks = MESSAGE_BLOCKS): string[] {
  if (blocks === undefined) return [];
  if (!Array.isArray(blocks)) return [`${where} is not an array`];
  const problems: string[] = [];
  if (blocks.length > maxBlocks) problems.push(`${where} has ${blocks.length} blocks; at most ${maxBlocks}`);
  const charts = blocks.filter((b: Block) => b.type === "data_visualization").length;
  if (charts > 2) problems.push(`${where} has ${charts} data_visualization blocks; at most 2 a message`);
  const text = (t: unknown) => (t as { text?: string } | undefined)?.text ?? "";
  blocks.forEach((b: Block, i) => {
    const at = `${where}[${i}]`;
    if (b.type === "section") {
      if (text(b.text).length > 3000) problems.push(`${at}.text is over 3000 characters`);
      const fields = (b.fields as unknown[] | undefined) ?? [];
      if (fields.length > 10) problems.push(`${at} has ${fields.length} fields; at most 10`);
      fields.forEach((f, j) => text(f).length > 2000 && problems.push(`${at}.fields[${j}] is over 2000 characters`));
      if (!b.text && fields.length === 0) problems.push(`${at} has neither text nor fields`);
    }
    if (b.type === "data_visualization") problems.push(...chartProblems(b, at));
    if (b.type === "data_table") problems.push(...dataTableProblems(b, at));
    if (b.type === "header" && ((b.text as { type?: string }).type !== "plain_text" || text(b.text).length > 150)) problems.push(`${at}.text must be plain_text of at most 150 characters`);
    if (b.type === "context" && ((b.elements as unknown[]).length > 10 || (b.elements as unknown[]).length === 0)) problems.push(`${at} needs 1 to 10 elements`);
    if (b.type === "actions") {
      const elements = b.elements as { action_id?: string; text?: { text?: string }; value?: string }[];
      if (elements.length > 25) problems.push(`${at} has over 25 elements`);
      const ids = elements.map((e) => e.action_id);
      if (new Set(ids).size !== ids.length) problems.push(`${at} repeats an action_id`);
      elements.forEach((e, j) => (e.text?.text ?? "").length > 75 && problems.push(`${at}.elements[${j}].text is over 75 characters`));
      elements.forEach((e, j) => (e.value ?? "").length > 2000 && problems.push(`${at}.elements[${j}].value is over 2000 characters`));
    }
  });
  return problems;
}

function parseArgs(raw: string, contentType: string | undefined): Record<string, unknown> {
  const args: Record<string, unknown> = contentType?.startsWith("application/json") ? (JSON.parse(raw || "{}") as Record<string, unknown>) : Object.fromEntries(new URLSearchParams(raw));
  for (const key of ["blocks", "view", "attachments"]) {
    if (typeof args[key] === "string") args[key] = JSON.parse(args[key] as string);
  }
  return args;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function startFakeSlack(botToken = `xoxb-${randomId("", 24)}`): Promise<FakeSlack> {
  const calls: SlackCall[] = [];
  const responses: SlackResponse[] = [];
  const refusedResponses: SlackResponse[] = [];
  const messages = new Map<string, SlackMessageRecord>();
  const homes = new Map<string, PublishedView>();
  const limited = new Map<string, { seconds: number; times: number }>();
  const failures = new Map<string, string[]>();
  const triggers = new Set<string>();
  let refuseNative = false;
  let seq = 0;

  const NATIVE = new Set(["data_visualization", "data_table"]);
  /** Why Slack would refuse these blocks, or nothing. */
  const refusal = (blocks: unknown, where: string, maxBlocks = MESSAGE_BLOCKS): string[] => [
    ...blockProblems(blocks, where, maxBlocks),
    ...(refuseNative && Array.isArray(blocks) && blocks.some((b: Block) => NATIVE.has(b.type)) ? [`${where}: this workspace does not take data_visualization or data_table blocks`] : []),
  ];

  const nextTs = () => `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, "0")}`;

  function web(method: string, args: Record<string, unknown>): Record<string, unknown> {
    const failure = failures.get(method)?.shift();
    if (failure) return { ok: false, error: failure };
    const problems = refusal(args.blocks, "blocks");
    if (problems.length > 0) return { ok: false, error: "invalid_blocks", errors: problems };
    const viewProblems = refusal((args.view as { blocks?: unknown } | undefined)?.blocks, "view.blocks", VIEW_BLOCKS);
    if (viewProblems.length > 0) return { ok: false, error: "invalid_arguments", response_metadata: { messages: viewProblems } };
    const channel = String(args.channel ?? "");
    const blocks = (args.blocks as Block[] | undefined) ?? [];
    const text = String(args.text ?? "");
    switch (method) {
      case "auth.test":
        return { ok: true, url: "https://tollgate-test.slack.com/", team: "Tollgate Test", user: "tollgate", team_id: TEAM_ID, user_id: "U0BOT", bot_id: "B0BOT" };
      case "chat.postMessage": {
        if (!channel) return { ok: false, error: "channel_not_found" };
        if (!text && blocks.length === 0) return { ok: false, error: "no_text" };
        const ts = nextTs();
        messages.set(`${channel} ${ts}`, { channel, ts, text, blocks, updates: 0 });
        return { ok: true, channel, ts, message: { type: "message", text, blocks, bot_id: "B0BOT", ts } };
      }
      case "chat.update": {
        const found = messages.get(`${channel} ${String(args.ts)}`);
        if (!found) return { ok: false, error: "message_not_found" };
        found.text = text;
        found.blocks = blocks;
        found.updates++;
        return { ok: true, channel, ts: found.ts, text, message: { text, blocks } };
      }
      case "chat.postEphemeral":
        if (!channel || !args.user) return { ok: false, error: "channel_not_found" };
        return { ok: true, message_ts: nextTs() };
      case "views.open": {
        const trigger = String(args.trigger_id ?? "");
        if (!triggers.delete(trigger)) return { ok: false, error: "expired_trigger_id" };
        return { ok: true, view: { id: randomId("V", 10), ...(args.view as object) } };
      }
      case "views.publish": {
        const user = typeof args.user_id === "string" ? args.user_id : "";
        const view = args.view as { type?: unknown; blocks?: unknown } | undefined;
        const invalid = (message: string) => ({ ok: false, error: "invalid_arguments", response_metadata: { messages: [message] } });
        if (!/^[UW][A-Z0-9]{2,}$/.test(user)) return invalid("invalid `user_id`");
        if (!view || typeof view !== "object") return invalid("missing required field: view");
        if (view.type !== "home") return invalid(`view.type must be home, not ${String(view.type)}`);
        if (!Array.isArray(view.blocks)) return invalid("view.blocks must be an array");
        if (JSON.stringify(view).length > 250_000) return { ok: false, error: "view_too_large" };
        const earlier = homes.get(user);
        const published: PublishedView = { id: earlier?.id ?? randomId("V", 10), team_id: TEAM_ID, type: "home", blocks: view.blocks as Block[], hash: `${Date.now() / 1000}.${randomId("", 8)}`, publishes: (earlier?.publishes ?? 0) + 1 };
        homes.set(user, published);
        return { ok: true, view: published };
      }
      default:
        return { ok: false, error: "unknown_method" };
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const url = new URL(req.url ?? "/", "http://fake");
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
      res.end(JSON.stringify(body));
    };
    const response = /^\/response\/([^/]+)$/.exec(url.pathname);
    if (response && req.method === "POST") {
      const body = JSON.parse(raw) as Record<string, unknown>;
      // A response with blocks Slack will not take is not shown: the poster is told, and it is not recorded.
      const problems = refusal(body.blocks, "blocks");
      if (problems.length > 0) {
        refusedResponses.push({ id: decodeURIComponent(response[1]!), body });
        return answer(400, { ok: false, error: "invalid_blocks", errors: problems });
      }
      responses.push({ id: decodeURIComponent(response[1]!), body });
      return answer(200, { ok: true });
    }
    const api = /^\/api\/([a-zA-Z.]+)$/.exec(url.pathname);
    if (!api || req.method !== "POST") return answer(404, { ok: false, error: "unknown_method" });
    const method = api[1]!;
    const args = parseArgs(raw, req.headers["content-type"]);
    calls.push({ method, args, headers: req.headers });
    const limit = limited.get(method);
    if (limit && limit.times > 0) {
      limit.times--;
      return answer(429, { ok: false, error: "ratelimited" }, { "retry-after": String(limit.seconds) });
    }
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? (typeof args.token === "string" ? args.token : undefined);
    if (token === undefined) return answer(200, { ok: false, error: "not_authed" });
    if (token !== botToken) return answer(200, { ok: false, error: "invalid_auth" });
    return answer(200, web(method, args));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(`fake slack failed: ${String(err)}`);
    });
  });
  keepConnections(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    apiUrl: `${base}/api/`,
    url: base,
    botToken,
    calls,
    responses,
    refusedResponses,
    messages,
    homes,
    callsOf: (method) => calls.filter((c) => c.method === method),
    rateLimit: (method, seconds, times = 1) => void limited.set(method, { seconds, times }),
    refuseNativeBlocks: (on) => void (refuseNative = on),
    failNext: (method, error) => void failures.set(method, [...(failures.get(method) ?? []), error]),
    responseUrl: (id) => `${base}/response/${encodeURIComponent(id)}`,
    triggerId() {
      const id = `${++seq}.${randomId("", 12)}`;
      triggers.add(id);
      return id;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The `x-slack-signature` of a body sent at `timestamp` (seconds). */
export function slackSignature(signingSecret: string, timestamp: number, body: string): string {
  return `v0=${createHmac("sha256", signingSecret).update(`v0:${timestamp}:${body}`).digest("hex")}`;
}

export interface SendOptions {
  signingSecret: string;
  /** Seconds since the epoch; now by default. */
  timestamp?: number;
  /** Replaces the computed signature (for a wrong one). */
  signature?: string;
  /** `x-slack-retry-num`: Slack's count of earlier tries. */
  retryNum?: number;
}

/** Posts `body` to the gateway as Slack does: signed over the raw body, with Slack's retry headers when it is one. */
async function signedPost(url: string, body: string, contentType: string, opts: SendOptions): Promise<{ status: number; body: string; json: () => Record<string, unknown> }> {
  const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": contentType,
      "x-slack-request-timestamp": String(timestamp),
      "x-slack-signature": opts.signature ?? slackSignature(opts.signingSecret, timestamp, body),
      ...(opts.retryNum !== undefined ? { "x-slack-retry-num": String(opts.retryNum), "x-slack-retry-reason": "http_timeout" } : {}),
    },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text, json: () => JSON.parse(text) as Record<string, unknown> };
}

/** Posts a form body to the gateway as Slack does: signed, form-encoded. */
export function sendAsSlack(url: string, form: Record<string, string>, opts: SendOptions) {
  return signedPost(url, new URLSearchParams(form).toString(), "application/x-www-form-urlencoded", opts);
}

/**
 * Posts an Events API callback to the gateway as Slack does
 * (https://docs.slack.dev/apis/events-api/#callback-field): the event in its `event_callback`
 * envelope, as JSON, signed over the raw body.
 */
export function sendEventAsSlack(url: string, event: Record<string, unknown>, opts: SendOptions) {
  const body = JSON.stringify({
    token: "deprecated-verification-token",
    team_id: TEAM_ID,
    api_app_id: "A0TOLLGATE",
    event,
    type: "event_callback",
    event_id: randomId("Ev", 10),
    event_time: Math.floor(Date.now() / 1000),
    authorizations: [{ team_id: TEAM_ID, user_id: "U0BOT", is_bot: true, is_enterprise_install: false }],
    is_ext_shared_channel: false,
  });
  return signedPost(url, body, "application/json", opts);
}

/**
 * The app_home_opened event of `userId` opening a tab of the app
 * (https://docs.slack.dev/reference/events/app_home_opened): `view` is the tab's current view, sent
 * once one was published.
 */
export function appHomeOpened(slack: FakeSlack, userId: string, tab: "home" | "messages" = "home"): Record<string, unknown> {
  const view = slack.homes.get(userId);
  return { type: "app_home_opened", user: userId, channel: `D${userId.slice(1)}`, tab, event_ts: `${Date.now() / 1000}`, ...(tab === "home" && view ? { view: { ...view, app_id: "A0TOLLGATE", bot_id: "B0BOT" } } : {}) };
}

export interface Person {
  userId: string;
  userName?: string;
}

/** The form Slack posts for a slash command typed in `channelId`. */
export function slashCommand(slack: FakeSlack, command: string, text: string, who: Person, channelId = "C0GENERAL", responseId = randomId("cmd-", 8)): Record<string, string> {
  return {
    token: "deprecated-verification-token",
    team_id: TEAM_ID,
    team_domain: "tollgate-test",
    channel_id: channelId,
    channel_name: "general",
    user_id: who.userId,
    user_name: who.userName ?? who.userId.toLowerCase(),
    command,
    text,
    api_app_id: "A0TOLLGATE",
    is_enterprise_install: "false",
    response_url: slack.responseUrl(responseId),
    trigger_id: slack.triggerId(),
  };
}

/** The block_actions payload of a click on a button of the message `ts` in `channelId`. */
export function buttonClick(
  slack: FakeSlack,
  button: { action_id: string; value: string; block_id?: string },
  who: Person,
  message: { channelId: string; ts: string },
  responseId = randomId("act-", 8),
): Record<string, string> {
  const payload = {
    type: "block_actions",
    user: { id: who.userId, username: who.userName ?? who.userId.toLowerCase(), team_id: TEAM_ID },
    api_app_id: "A0TOLLGATE",
    token: "deprecated-verification-token",
    container: { type: "message", message_ts: message.ts, channel_id: message.channelId, is_ephemeral: false },
    trigger_id: slack.triggerId(),
    team: { id: TEAM_ID, domain: "tollgate-test" },
    channel: { id: message.channelId, name: "alerts" },
    message: { type: "message", ts: message.ts, text: "" },
    response_url: slack.responseUrl(responseId),
    actions: [{ type: "button", action_id: button.action_id, block_id: button.block_id ?? "b1", value: button.value, action_ts: `${Date.now() / 1000}` }],
  };
  return { payload: JSON.stringify(payload) };
}

/**
 * The block_actions payload of a click on a button of `userId`'s Home tab: Slack sends the view in
 * place of a message, and no channel, message or response_url.
 */
export function homeButtonClick(slack: FakeSlack, button: { action_id: string; value: string; block_id?: string }, who: Person): Record<string, string> {
  const view = slack.homes.get(who.userId);
  if (!view) throw new Error(`${who.userId} has no Home tab to click on`);
  const payload = {
    type: "block_actions",
    user: { id: who.userId, username: who.userName ?? who.userId.toLowerCase(), team_id: TEAM_ID },
    api_app_id: "A0TOLLGATE",
    token: "deprecated-verification-token",
    container: { type: "view", view_id: view.id },
    trigger_id: slack.triggerId(),
    team: { id: TEAM_ID, domain: "tollgate-test" },
    view: { ...view, state: { values: {} }, app_id: "A0TOLLGATE", bot_id: "B0BOT" },
    actions: [{ type: "button", action_id: button.action_id, block_id: button.block_id ?? "b1", value: button.value, action_ts: `${Date.now() / 1000}` }],
  };
  return { payload: JSON.stringify(payload) };
}

/** The view_submission payload of a modal `view` (as views.open got it) with input values by block id. */
export function viewSubmission(view: Record<string, unknown>, values: Record<string, string>, who: Person): Record<string, string> {
  const payload = {
    type: "view_submission",
    team: { id: TEAM_ID, domain: "tollgate-test" },
    user: { id: who.userId, username: who.userName ?? who.userId.toLowerCase(), team_id: TEAM_ID },
    api_app_id: "A0TOLLGATE",
    token: "deprecated-verification-token",
    trigger_id: `${Date.now()}.trigger`,
    view: {
      ...view,
      id: randomId("V", 10),
      team_id: TEAM_ID,
      state: { values: Object.fromEntries(Object.entries(values).map(([block, value]) => [block, { value: { type: "plain_text_input", value } }])) },
      hash: randomId("", 12),
    },
    response_urls: [],
  };
  return { payload: JSON.stringify(payload) };
}
