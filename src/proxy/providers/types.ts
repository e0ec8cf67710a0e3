import type { NormalisedUsage } from "../../ledger/providers/types.ts";
import type { SseEvent } from "../sse.ts";

/** What the proxy learns from a client's request body before sending it on. */
export interface RequestFacts {
  /** The model asked for (body `model`, or the Gemini path's model). */
  model: string | undefined;
  /** Whether the answer will be a stream of server-sent events. */
  stream: boolean;
  /** The end user the request names (OpenAI `user`, Anthropic `metadata.user_id`). */
  user: string | undefined;
  /**
   * The body to send upstream when it must differ from the client's (OpenAI chat streams get
   * `stream_options.include_usage`); undefined to send the client's bytes unchanged.
   */
  rewritten: Buffer | undefined;
}

/** What a finished call reported about itself. */
export interface CallUsage {
  usage: NormalisedUsage | undefined;
  /** The model that answered, when the answer says so. */
  model: string | undefined;
}

/**
 * Reads usage from a stream while it is forwarded. Each event is looked at once, in order; the
 * answer says whether the client gets it (an injected usage-only chunk is not theirs to see).
 */
export interface StreamTap {
  onEvent(event: SseEvent): "forward" | "drop";
  result(): CallUsage;
}

/** How one provider's API is spoken: where keys go, what bodies say, how errors look. */
export interface ProxyProvider {
  /** Route prefix and the provider name recorded in the ledger ("openai", "xai", ...). */
  readonly name: string;
  /** The key the client's SDK sent, wherever this provider's SDK puts it. */
  clientKey(headers: Record<string, string | string[] | undefined>, query: URLSearchParams): string | undefined;
  /** Request headers (lower-case) and query parameters that carried the client's key: removed before forwarding. */
  readonly credentialHeaders: readonly string[];
  readonly credentialQuery: readonly string[];
  /** Headers that authenticate the gateway upstream with the provider key. */
  upstreamAuth(providerKey: string): Record<string, string>;
  /** Facts about a JSON request to `path` (the part after the route prefix, with query). */
  inspect(path: string, body: unknown): RequestFacts;
  /** Usage of a whole (non-streamed) JSON answer. */
  usageOf(path: string, body: unknown): CallUsage;
  /** A fresh side reader for one streamed answer; `injected` when the gateway asked for usage itself. */
  tap(path: string, injected: boolean): StreamTap;
  /** A body in this provider's own error shape. */
  error(status: number, code: string, message: string, details?: Record<string, unknown>): unknown;
}
