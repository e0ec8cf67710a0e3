import { once } from "node:events";
import { type IncomingMessage, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { randomId } from "./fake-upstream.ts";
import { keepConnections } from "../helpers/wait.ts";

/*
 * Telegram, both ways, from the Bot API's documented contract (https://core.telegram.org/bots/api):
 * - the Bot API: `POST /bot<token>/<method>` with JSON; every answer is `{ok, result}` or
 *   `{ok: false, error_code, description, parameters?}`; a flood limit is 429 with
 *   `parameters.retry_after` in seconds. It records every call, keeps the messages sent (as the
 *   text a person sees, with its entities), and refuses what Telegram refuses: HTML that does not
 *   parse ("can't parse entities"), text over 4,096 characters after parsing, callback_data over
 *   64 bytes, unknown chats, a bot removed from a chat, callback queries answered twice.
 * - Telegram as the sender: updates (commands with their bot_command entity, replies, button
 *   presses) posted to a webhook with X-Telegram-Bot-Api-Secret-Token, or queued for getUpdates
 *   long polling.
 *
 * Its HTML parser follows the "HTML style" rules of the formatting options: only the listed tags,
 * properly nested; `<`, `>` and `&` outside tags and entities escaped; the named entities &lt;
 * &gt; &amp; &quot; and numeric ones. It is stricter than Telegram in one way: a bare `&` is
 * refused (Telegram's documentation asks for it to be escaped; its parser sometimes lets it by).
 */

export interface TelegramUser {
  id: number;
  is_bot: boolean;
  first_name: string;
  username?: string;
}

export interface TelegramChat {
  id: number;
  type: "private" | "group" | "supergroup";
  title?: string;
  first_name?: string;
  username?: string;
}

export interface TelegramCall {
  method: string;
  params: Record<string, any>;
}

export interface Entity {
  type: string;
  offset: number;
  length: number;
  url?: string;
  language?: string;
}

export interface SentMessage {
  message_id: number;
  chat: TelegramChat;
  /** The text as a person reads it: tags gone, entities decoded. */
  text: string;
  entities: Entity[];
  /** What the bot sent, as it sent it. */
  html: string;
  reply_markup?: Record<string, any>;
  reply_to?: number;
  edits: number;
  /** A photo sent with sendPhoto as a multipart upload; `text` and `html` are then its caption. */
  photo?: UploadedFile;
}

/** A file part of a multipart/form-data request, as the Bot API takes uploads. */
export interface UploadedFile {
  filename: string;
  type: string;
  bytes: Buffer;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export type Update = Record<string, any> & { update_id: number };

export interface FakeTelegram {
  /** The Bot API root: give it as TELEGRAM_API_ROOT. */
  apiRoot: string;
  token: string;
  bot: TelegramUser;
  calls: TelegramCall[];
  callsOf(method: string): TelegramCall[];
  /** Messages the bot sent to a chat, oldest first (edits change them in place). */
  messagesIn(chatId: number): SentMessage[];
  addChat(chat: TelegramChat): TelegramChat;
  /** The member's status in a group for getChatMember (`member` unless set). */
  setMemberStatus(chatId: number, userId: number, status: "creator" | "administrator" | "member" | "left"): void;
  /** The bot is removed from the chat: sending there answers 403. */
  removeBot(chatId: number): void;
  /** The next `times` calls of `method` (to `chatId`, if given) answer 429 with retry_after `seconds`. */
  rateLimit(method: string, seconds: number, opts?: { times?: number; chatId?: number }): void;
  /** Updates, as Telegram sends them. */
  command(chat: TelegramChat, from: TelegramUser, text: string): Update;
  text(chat: TelegramChat, from: TelegramUser, text: string, replyTo?: SentMessage): Update;
  press(message: SentMessage, from: TelegramUser, data: string): Update;
  /** The callback query answers (answerCallbackQuery) given to a press, by the update that carried it. */
  answerOf(update: Update): TelegramCall | undefined;
  /** Queues an update for getUpdates (polling mode). */
  queue(update: Update): void;
  close(): Promise<void>;
}

const OK = (result: unknown) => ({ ok: true, result });
const fail = (error_code: number, description: string, parameters?: Record<string, unknown>) => ({ ok: false, error_code, description, ...(parameters ? { parameters } : {}) });

/** The tags of Telegram's HTML style, and what each becomes. */
const TAGS: Record<string, string> = {
  b: "bold",
  strong: "bold",
  i: "italic",
  em: "italic",
  u: "underline",
  ins: "underline",
  s: "strikethrough",
  strike: "strikethrough",
  del: "strikethrough",
  "tg-spoiler": "spoiler",
  span: "spoiler",
  a: "text_link",
  code: "code",
  pre: "pre",
  blockquote: "blockquote",
  "tg-emoji": "custom_emoji",
};

const NAMED_ENTITIES: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"' };

export class EntityError extends Error {}

const byteOffset = (html: string, i: number) => Buffer.byteLength(html.slice(0, i), "utf8");

/** Telegram's HTML parse mode: the plain text and its entities, or EntityError with Telegram's own wording. */
export function parseTelegramHtml(html: string): { text: string; entities: Entity[] } {
  let text = "";
  const entities: Entity[] = [];
  const open: { name: string; type: string; offset: number; attrs: Record<string, string> }[] = [];
  let i = 0;
  while (i < html.length) {
    const ch = html[i]!;
    if (ch === "&") {
      const m = /^&(?:([a-zA-Z]+)|#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6}));/.exec(html.slice(i, i + 12));
      const decoded = m?.[1] !== undefined ? NAMED_ENTITIES[m[1]] : m?.[2] ? String.fromCodePoint(Number(m[2])) : m?.[3] ? String.fromCodePoint(parseInt(m[3], 16)) : undefined;
      if (!m || decoded === undefined) throw new EntityError(`Unsupported HTML entity at byte offset ${byteOffset(html, i)}`);
      text += decoded;
      i += m[0].length;
      continue;
    }
    if (ch !== "<") {
      text += ch;
      i++;
      continue;
    }
    const end = html.indexOf(">", i);
    if (end < 0) throw new EntityError(`Can't find end of the tag at byte offset ${byteOffset(html, i)}`);
    const inner = html.slice(i + 1, end);
    if (inner.startsWith("/")) {
      const name = inner.slice(1).trim().toLowerCase();
      const top = open.pop();
      if (!top) throw new EntityError(`Unexpected end tag at byte offset ${byteOffset(html, i)}`);
      if (top.name !== name) throw new EntityError(`Unmatched end tag at byte offset ${byteOffset(html, i)}, expected "</${top.name}>", found "</${name}>"`);
      if (text.length > top.offset) entities.push({ type: top.type, offset: top.offset, length: text.length - top.offset, ...(top.attrs.href ? { url: top.attrs.href } : {}) });
    } else {
      const m = /^([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?)*)\s*$/.exec(inner);
      const name = m?.[1]?.toLowerCase();
      const type = name ? TAGS[name] : undefined;
      if (!m || !name || !type) throw new EntityError(`Unsupported start tag "${(m?.[1] ?? inner).slice(0, 32)}" at byte offset ${byteOffset(html, i)}`);
      const attrs = Object.fromEntries([...(m[2] ?? "").matchAll(/([a-zA-Z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)].map((a) => [a[1]!.toLowerCase(), a[2] ?? a[3] ?? a[4] ?? ""]));
      if (name === "a" && !attrs.href) throw new EntityError(`Can't find end of tag "a" at byte offset ${byteOffset(html, i)}: no href`);
      if (name === "span" && attrs.class !== "tg-spoiler") throw new EntityError(`Tag "span" must have class "tg-spoiler" at byte offset ${byteOffset(html, i)}`);
      open.push({ name, type, offset: text.length, attrs });
    }
    i = end + 1;
  }
  const unclosed = open.pop();
  if (unclosed) throw new EntityError(`Can't find end tag corresponding to start tag "${unclosed.name}"`);
  return { text, entities: entities.sort((a, b) => a.offset - b.offset) };
}

/**
 * The parameters of a Bot API call: JSON, the query string, or multipart/form-data (how files are
 * uploaded: each file a part with a filename; JSON-valued fields such as reply_markup as text).
 */
async function readJson(req: IncomingMessage): Promise<Record<string, any>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const type = req.headers["content-type"] ?? "";
  if (type.startsWith("multipart/form-data")) {
    const form = await new Request("http://fake/", { method: "POST", headers: { "content-type": type }, body: Buffer.concat(chunks) }).formData();
    const params: Record<string, any> = {};
    for (const [name, value] of form) {
      if (typeof value === "string") params[name] = /^[[{]/.test(value) ? JSON.parse(value) : /^-?\d+$/.test(value) ? Number(value) : value;
      else params[name] = { filename: value.name, type: value.type, bytes: Buffer.from(await value.arrayBuffer()) } satisfies UploadedFile;
    }
    return params;
  }
  const raw = Buffer.concat(chunks).toString("utf8");
  if (!raw) return Object.fromEntries(new URL(req.url ?? "/", "http://x").searchParams);
  return JSON.parse(raw) as Record<string, any>;
}

export const FAKE_BOT_USERNAME = "tollgate_test_bot";

export async function startFakeTelegram(): Promise<FakeTelegram> {
  const botId = 7_000_000_000 + Math.floor(Math.random() * 1_000_000);
  const token = `${botId}:${randomId("AA", 33)}`;
  const bot: TelegramUser = { id: botId, is_bot: true, first_name: "Tollgate", username: FAKE_BOT_USERNAME };
  const calls: TelegramCall[] = [];
  const chats = new Map<number, TelegramChat>();
  const removed = new Set<number>();
  const statuses = new Map<string, string>();
  const messages = new Map<number, SentMessage[]>();
  const limits: { method: string; seconds: number; times: number; chatId?: number }[] = [];
  const queries = new Map<string, { answered: boolean; updateId: number }>();
  const pending: Update[] = [];
  const waiting = new Set<() => void>();
  let webhook: { url: string; secret_token?: string; allowed_updates?: string[] } | undefined;
  let updateId = Math.floor(Math.random() * 1_000_000);
  let userMessageId = 1_000_000;

  const nextMessageId = (chatId: number) => (messages.get(chatId)?.length ?? 0) + 1;
  const findMessage = (chatId: number, id: number) => messages.get(chatId)?.find((m) => m.message_id === id);

  /** Checks a message's text and buttons as Telegram does; the parsed text, or the refusal. */
  function check(params: Record<string, any>): { text: string; entities: Entity[] } | ReturnType<typeof fail> {
    const html = String(params.text ?? "");
    if (html.trim() === "") return fail(400, "Bad Request: message text is empty");
    let parsed: { text: string; entities: Entity[] } = { text: html, entities: [] };
    if (params.parse_mode === "HTML") {
      try {
        parsed = parseTelegramHtml(html);
      } catch (err) {
        if (err instanceof EntityError) return fail(400, `Bad Request: can't parse entities: ${err.message}`);
        throw err;
      }
    } else if (params.parse_mode !== undefined) return fail(400, `Bad Request: unsupported parse_mode ${params.parse_mode}`);
    if (parsed.text.length > 4096) return fail(400, "Bad Request: message is too long");
    for (const row of (params.reply_markup?.inline_keyboard ?? []) as { text?: string; callback_data?: string }[][])
      for (const button of row) {
        if (!button.text) return fail(400, "Bad Request: text buttons are unallowed in the inline keyboard");
        if (button.callback_data !== undefined && (Buffer.byteLength(button.callback_data) > 64 || button.callback_data === "")) return fail(400, "Bad Request: BUTTON_DATA_INVALID");
      }
    return parsed;
  }

  function chatProblem(chatId: unknown): ReturnType<typeof fail> | undefined {
    if (typeof chatId !== "number" || !chats.has(chatId)) return fail(400, "Bad Request: chat not found");
    if (removed.has(chatId)) return fail(403, "Forbidden: bot was kicked from the group chat");
    return undefined;
  }

  function api(method: string, params: Record<string, any>): Record<string, unknown> | Promise<Record<string, unknown>> {
    const limit = limits.find((l) => l.method === method && (l.chatId === undefined || l.chatId === params.chat_id));
    if (limit) {
      if (--limit.times <= 0) limits.splice(limits.indexOf(limit), 1);
      return fail(429, `Too Many Requests: retry after ${limit.seconds}`, { retry_after: limit.seconds });
    }
    switch (method) {
      case "getMe":
        return OK(bot);
      case "setMyCommands":
      case "deleteMyCommands":
        return OK(true);
      case "setWebhook": {
        if (!/^https:\/\//.test(String(params.url ?? ""))) return fail(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook");
        if (params.secret_token !== undefined && !/^[A-Za-z0-9_-]{1,256}$/.test(params.secret_token)) return fail(400, "Bad Request: secret token contains unallowed characters");
        webhook = { url: params.url, secret_token: params.secret_token, allowed_updates: params.allowed_updates };
        return OK(true);
      }
      case "deleteWebhook":
        webhook = undefined;
        return OK(true);
      case "getWebhookInfo":
        return OK({ url: webhook?.url ?? "", has_custom_certificate: false, pending_update_count: pending.length, allowed_updates: webhook?.allowed_updates });
      case "getUpdates":
        return getUpdates(params);
      case "sendMessage": {
        const problem = chatProblem(params.chat_id);
        if (problem) return problem;
        const parsed = check(params);
        if ("ok" in parsed) return parsed;
        const chat = chats.get(params.chat_id)!;
        const sent: SentMessage = {
          message_id: nextMessageId(chat.id),
          chat,
          ...parsed,
          html: params.text,
          ...(params.reply_markup ? { reply_markup: params.reply_markup } : {}),
          ...(params.reply_parameters?.message_id ? { reply_to: params.reply_parameters.message_id } : {}),
          edits: 0,
        };
        messages.set(chat.id, [...(messages.get(chat.id) ?? []), sent]);
        return OK({ message_id: sent.message_id, from: bot, chat, date: Math.floor(Date.now() / 1000), text: sent.text, entities: sent.entities, reply_markup: sent.reply_markup });
      }
      case "sendPhoto": {
        const problem = chatProblem(params.chat_id);
        if (problem) return problem;
        const photo = params.photo as UploadedFile | string | undefined;
        // Tollgate uploads what it draws: a file part, never a URL or a file_id.
        if (!photo || typeof photo === "string") return fail(400, "Bad Request: there is no photo in the request");
        if (!photo.bytes.subarray(0, 8).equals(PNG_SIGNATURE) && photo.bytes[0] !== 0xff) return fail(400, "Bad Request: IMAGE_PROCESS_FAILED");
        if (photo.bytes.length > 10 * 1024 * 1024) return fail(400, "Bad Request: file is too big");
        let caption = { text: "", entities: [] as Entity[] };
        if (params.caption !== undefined) {
          const parsed = check({ ...params, text: params.caption });
          if ("ok" in parsed) return parsed;
          if (parsed.text.length > 1024) return fail(400, "Bad Request: message caption is too long");
          caption = parsed;
        }
        const chat = chats.get(params.chat_id)!;
        const sent: SentMessage = {
          message_id: nextMessageId(chat.id),
          chat,
          ...caption,
          html: String(params.caption ?? ""),
          ...(params.reply_parameters?.message_id ? { reply_to: params.reply_parameters.message_id } : {}),
          edits: 0,
          photo,
        };
        messages.set(chat.id, [...(messages.get(chat.id) ?? []), sent]);
        return OK({ message_id: sent.message_id, from: bot, chat, date: Math.floor(Date.now() / 1000), photo: [{ file_id: randomId("AgAC", 20), width: 1280, height: 600 }], caption: caption.text });
      }
      case "editMessageText": {
        const problem = chatProblem(params.chat_id);
        if (problem) return problem;
        const found = findMessage(params.chat_id, params.message_id);
        if (!found) return fail(400, "Bad Request: message to edit not found");
        const parsed = check(params);
        if ("ok" in parsed) return parsed;
        if (found.html === params.text && JSON.stringify(found.reply_markup ?? null) === JSON.stringify(params.reply_markup ?? null))
          return fail(400, "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message");
        Object.assign(found, parsed, { html: params.text, reply_markup: params.reply_markup, edits: found.edits + 1 });
        return OK({ message_id: found.message_id, chat: found.chat, text: found.text });
      }
      case "answerCallbackQuery": {
        const query = queries.get(String(params.callback_query_id));
        if (!query || query.answered) return fail(400, "Bad Request: query is too old and response timeout expired or query ID is invalid");
        if (params.text !== undefined && String(params.text).length > 200) return fail(400, "Bad Request: MESSAGE_TOO_LONG");
        query.answered = true;
        return OK(true);
      }
      case "getChatMember": {
        const problem = chatProblem(params.chat_id);
        if (problem) return problem;
        const status = statuses.get(`${params.chat_id}:${params.user_id}`) ?? "member";
        return OK({ status, user: { id: params.user_id, is_bot: false, first_name: "someone" } });
      }
      default:
        return fail(404, "Not Found: method not found");
    }
  }

  /** Long polling: the updates after `offset`, at once if there are any, else when one comes or `timeout` seconds pass. */
  async function getUpdates(params: Record<string, any>): Promise<Record<string, unknown>> {
    if (webhook) return fail(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first");
    const offset = Number(params.offset ?? 0);
    while (pending.length > 0 && pending[0]!.update_id < offset) pending.shift();
    const timeout = Number(params.timeout ?? 0);
    if (pending.length === 0 && timeout > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiting.delete(done);
          resolve();
        };
        const timer = setTimeout(done, timeout * 1000);
        waiting.add(done);
      });
    }
    return OK(pending.slice(0, Number(params.limit ?? 100)));
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const match = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(new URL(req.url ?? "/", "http://x").pathname);
    const send = (status: number, body: unknown) => {
      if (res.destroyed) return;
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    if (!match) return send(404, fail(404, "Not Found"));
    if (match[1] !== token) return send(401, fail(401, "Unauthorized"));
    readJson(req)
      .then(async (params) => {
        const method = match[2]!;
        calls.push({ method, params });
        const body = (await api(method, params)) as { ok: boolean; error_code?: number };
        send(body.ok ? 200 : body.error_code!, body);
      })
      .catch((err: Error) => send(500, fail(500, `Internal Server Error: ${err.message}`)));
  });
  keepConnections(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const apiRoot = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  function messageUpdate(chat: TelegramChat, from: TelegramUser, text: string, extra: Record<string, unknown> = {}): Update {
    return { update_id: ++updateId, message: { message_id: ++userMessageId, from, chat, date: Math.floor(Date.now() / 1000), text, ...extra } };
  }

  return {
    apiRoot,
    token,
    bot,
    calls,
    callsOf: (method) => calls.filter((c) => c.method === method),
    messagesIn: (chatId) => messages.get(chatId) ?? [],
    addChat(chat) {
      chats.set(chat.id, chat);
      removed.delete(chat.id);
      return chat;
    },
    setMemberStatus: (chatId, userId, status) => void statuses.set(`${chatId}:${userId}`, status),
    removeBot: (chatId) => void removed.add(chatId),
    rateLimit: (method, seconds, opts = {}) => void limits.push({ method, seconds, times: opts.times ?? 1, ...(opts.chatId !== undefined ? { chatId: opts.chatId } : {}) }),
    command(chat, from, text) {
      const length = text.split(/\s/, 1)[0]!.length;
      return messageUpdate(chat, from, text, { entities: [{ type: "bot_command", offset: 0, length }] });
    },
    text: (chat, from, text, replyTo) =>
      messageUpdate(chat, from, text, replyTo ? { reply_to_message: { message_id: replyTo.message_id, from: bot, chat: replyTo.chat, date: 0, text: replyTo.text } } : {}),
    press(message, from, data) {
      const id = randomId("", 16);
      const update = { update_id: ++updateId, callback_query: { id, from, chat_instance: randomId("", 12), data, message: { message_id: message.message_id, from: bot, chat: message.chat, date: 0, text: message.text } } };
      queries.set(id, { answered: false, updateId: update.update_id });
      return update;
    },
    answerOf: (update) => calls.find((c) => c.method === "answerCallbackQuery" && c.params.callback_query_id === update.callback_query?.id),
    queue(update) {
      pending.push(update);
      for (const wake of waiting) wake();
    },
    async close() {
      for (const wake of waiting) wake();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Posts an update to a webhook as Telegram does, with the secret token header when given. */
export async function postUpdate(url: string, update: Update, secret?: string): Promise<Response> {
  return fetch(url, { method: "POST", headers: { "content-type": "application/json", ...(secret !== undefined ? { "x-telegram-bot-api-secret-token": secret } : {}) }, body: JSON.stringify(update) });
}
