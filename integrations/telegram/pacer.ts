/*
 * Telegram's send limits, kept per chat (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
 * about one message a second in a chat, at most 20 a minute in a group, and after a 429 nothing
 * to that chat until its `retry_after` has passed. Other chats are never held up by one that waits.
 *
 * Pure bookkeeping over times in milliseconds: callers say what time it is, so the rules are tested
 * without clocks. It is per process: with several gateway processes, the outbox still sends one
 * message of a chat at a time, and a 429 that slips through is honoured like any other.
 */

export interface PaceLimits {
  /** Between two messages to one chat. */
  perChatMs: number;
  /** Messages to one group in any minute. */
  perGroupPerMinute: number;
  minuteMs: number;
}

export const PACE: PaceLimits = { perChatMs: 1000, perGroupPerMinute: 20, minuteMs: 60_000 };

/** Chats remembered before those with nothing left to remember are forgotten. */
const REMEMBERED_CHATS = 1024;

/** Group, supergroup and channel ids are negative; a private chat's id is the user's, positive. */
export const isGroup = (chatId: number) => chatId < 0;

interface ChatState {
  /** Send times still inside the last minute, oldest first. */
  sent: number[];
  /** No message before this (a 429's retry_after). */
  heldUntil: number;
}

export class ChatPacer {
  private readonly chats = new Map<number, ChatState>();

  constructor(private readonly limits: PaceLimits = PACE) {}

  private state(chatId: number, now: number): ChatState {
    let state = this.chats.get(chatId);
    if (!state) {
      state = { sent: [], heldUntil: 0 };
      this.chats.set(chatId, state);
    }
    while (state.sent.length > 0 && state.sent[0]! <= now - this.limits.minuteMs) state.sent.shift();
    return state;
  }

  /** The earliest time at or after `now` a message may go to the chat. */
  earliest(chatId: number, now: number): number {
    const { sent, heldUntil } = this.state(chatId, now);
    let at = Math.max(now, heldUntil);
    const last = sent.at(-1);
    if (last !== undefined) at = Math.max(at, last + this.limits.perChatMs);
    const { perGroupPerMinute, minuteMs } = this.limits;
    if (isGroup(chatId) && sent.length >= perGroupPerMinute) at = Math.max(at, sent[sent.length - perGroupPerMinute]! + minuteMs);
    return at;
  }

  /** Takes the chat's next slot: answers how long to wait from `now` before sending, and counts the message as sent then. */
  reserve(chatId: number, now: number): number {
    if (this.chats.size > REMEMBERED_CHATS) this.sweep(now);
    const at = this.earliest(chatId, now);
    this.state(chatId, now).sent.push(at);
    return at - now;
  }

  /** Telegram answered 429 with `retry_after` seconds: the chat waits that long from `now`. */
  hold(chatId: number, retryAfterMs: number, now: number): void {
    const state = this.state(chatId, now);
    state.heldUntil = Math.max(state.heldUntil, now + retryAfterMs);
  }

  /** Forgets chats with nothing left to remember, so a long-running gateway does not keep every chat it ever wrote to. */
  private sweep(now: number): void {
    for (const [chatId, state] of this.chats) {
      this.state(chatId, now);
      if (state.sent.length === 0 && state.heldUntil <= now) this.chats.delete(chatId);
    }
  }
}
