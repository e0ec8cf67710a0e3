import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { type IncomingHttpHeaders, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { chartProblems } from "../helpers/adaptive-card.ts";
import { keepConnections } from "../helpers/wait.ts";

/** Every Teams chart element in an activity's cards that does not have Teams' documented shape. */
function chartElementProblems(body: unknown): string[] {
  const problems: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (Array.isArray(v)) v.forEach((item, i) => walk(item, `${path}[${i}]`));
    else if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      if (typeof o.type === "string" && o.type.startsWith("Chart.")) problems.push(...chartProblems(o, path));
      for (const [k, child] of Object.entries(o)) walk(child, `${path}.${k}`);
    }
  };
  walk((body as { attachments?: unknown }).attachments, "attachments");
  return problems;
}

/*
 * The Bot Framework connector a Teams bot talks to, from its REST contract
 * (https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference):
 * - POST /v3/conversations/{conversationId}/activities: send to a conversation → {id}
 * - POST /v3/conversations/{conversationId}/activities/{activityId}: reply to an activity → {id}
 * - PUT /v3/conversations/{conversationId}/activities/{activityId}: update an activity → {id}
 * - POST /v3/conversations: create a conversation → {id, activityId}
 * Errors are `{error: {code, message}}` with the HTTP status; throttling is 429 with Retry-After.
 * Told to, it checks the bot's `Authorization: Bearer` token like the real connector (401 without
 * one it accepts).
 * Cards' chart elements (Chart.*) must have Teams' documented shape, or the activity is refused
 * (400 BadArgument). It records every call, keeps the activities it holds by id, and can be told to answer the next
 * calls with an error status. Its address is the serviceUrl of the activities tests send the bot.
 */

export interface ConnectorCall {
  method: string;
  /** The path with the conversation id decoded. */
  path: string;
  conversationId?: string;
  activityId?: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface HeldActivity {
  conversationId: string;
  activity: Record<string, unknown>;
  updates: number;
}

export interface FakeConnector {
  /** The serviceUrl, with the trailing slash Teams gives. */
  serviceUrl: string;
  calls: ConnectorCall[];
  /** Activities sent or updated, by id. */
  activities: Map<string, HeldActivity>;
  /** The next `times` calls answer `status` (with Retry-After when given). */
  failNext(status: number, times?: number, retryAfterSeconds?: number): void;
  /** Every call about this conversation answers `status` from now on (a bot removed from it: 403). */
  refuse(conversationId: string, status: number): void;
  /** From now on only calls bearing one of `tokens` are answered; the others get 401. */
  requireTokens(tokens: ReadonlySet<string>): void;
  close(): Promise<void>;
}

export async function startFakeConnector(): Promise<FakeConnector> {
  const calls: ConnectorCall[] = [];
  const activities = new Map<string, HeldActivity>();
  const failures: { status: number; retryAfter?: number }[] = [];
  const refused = new Map<string, number>();
  let accepted: ReadonlySet<string> | undefined;
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    let body: Record<string, unknown> = {};
    try {
      body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      body = {};
    }
    const url = new URL(req.url ?? "/", "http://fake");
    const m = /^\/v3\/conversations(?:\/([^/]+)\/activities(?:\/([^/]+))?)?\/?$/.exec(url.pathname);
    const conversationId = m?.[1] ? decodeURIComponent(m[1]) : undefined;
    const activityId = m?.[2] ? decodeURIComponent(m[2]) : undefined;
    calls.push({ method: req.method ?? "", path: decodeURIComponent(url.pathname), ...(conversationId ? { conversationId } : {}), ...(activityId ? { activityId } : {}), headers: req.headers, body });
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(payload));
    };
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (accepted && !(bearer && accepted.has(bearer))) return send(401, { message: "Authorization has been denied for this request." });
    const failure = (conversationId && refused.has(conversationId) ? { status: refused.get(conversationId)! } : undefined) ?? failures.shift();
    if (failure) {
      const code = failure.status === 403 ? "BotNotInConversationRoster" : failure.status === 429 ? "Throttled" : "ServiceError";
      return send(failure.status, { error: { code, message: `fake connector answered ${failure.status}` } }, failure.retryAfter !== undefined ? { "retry-after": String(failure.retryAfter) } : {});
    }
    if (!m) return send(404, { error: { code: "NotFound", message: `no route ${req.method} ${url.pathname}` } });
    // Teams refuses a card whose chart elements it cannot read.
    const charts = chartElementProblems(body);
    if (charts.length > 0) return send(400, { error: { code: "BadArgument", message: `invalid chart: ${charts.join("; ")}` } });
    if (req.method === "POST" && !conversationId) {
      const id = `a:${randomUUID()}`;
      return send(201, { id, activityId: randomUUID(), serviceUrl: `http://${req.headers.host}/` });
    }
    if (!conversationId) return send(405, { error: { code: "BadArgument", message: "method not allowed" } });
    if (req.method === "PUT" && activityId) {
      const held = activities.get(activityId);
      if (!held || held.conversationId !== conversationId) return send(404, { error: { code: "ActivityNotFoundInConversation", message: "no such activity" } });
      held.activity = body;
      held.updates++;
      return send(200, { id: activityId });
    }
    if (req.method === "POST") {
      const id = `1${Date.now()}${Math.floor(Math.random() * 1000)}`;
      activities.set(id, { conversationId, activity: body, updates: 0 });
      return send(201, { id });
    }
    send(405, { error: { code: "BadArgument", message: "method not allowed" } });
  });
  keepConnections(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    serviceUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    calls,
    activities,
    failNext(status, times = 1, retryAfterSeconds) {
      for (let i = 0; i < times; i++) failures.push({ status, ...(retryAfterSeconds !== undefined ? { retryAfter: retryAfterSeconds } : {}) });
    },
    refuse(conversationId, status) {
      refused.set(conversationId, status);
    },
    requireTokens(tokens) {
      accepted = tokens;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
