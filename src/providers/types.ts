import type { z } from "zod";
import type { ServiceTier } from "../ledger/event.ts";
import type { NormalisedUsage, UsageExtractor } from "./usage.ts";

/*
 * The one interface every provider folder fills in (src/providers/<name>/index.ts), and that the
 * registry lists. Config reads `config`, pricing `catalogId`, every door `name` and `aliases`, the
 * usage webhook `usage`, and the proxy the rest. Nothing outside src/providers/ knows a provider.
 */

export type HeaderBag = Record<string, string | string[] | undefined>;

/** What the proxy learns from a client's request before sending it on. */
export interface RequestFacts {
  /** The model asked for (body `model`, or a model named in the path). */
  model: string | undefined;
  /** Whether the answer will be a stream. */
  stream: boolean;
  /** The end user the request names (OpenAI `user`, Anthropic `metadata.user_id`). */
  user: string | undefined;
  /**
   * The body to send upstream when it must differ from the client's (OpenAI chat streams get
   * `stream_options.include_usage`); undefined to send the client's bytes unchanged.
   */
  rewritten: Buffer | undefined;
  /** Tags the request itself implies (Azure: its deployment), added to the call's attribution tags. */
  tags?: Readonly<Record<string, string>> | undefined;
}

/** What a finished call reported about itself. */
export interface CallUsage {
  usage: NormalisedUsage | undefined;
  /** The model that answered, when the answer says so. */
  model: string | undefined;
  /**
   * The ledger id the usage belongs to when it is not the call's own: a finished batch read back
   * (`batch:<id>`), so that every later poll finds it recorded already.
   */
  key?: string;
  /**
   * Usages the answer reports for other ledger ids, each recorded as its own event in place of the
   * call's (an Anthropic batch's results file: one per succeeded request, keyed as `key` says).
   */
  results?: readonly CallUsage[];
  /** The counts are the gateway's estimate (src/proxy/estimate.ts), not the provider's report. */
  estimated?: boolean;
  /**
   * The stream was not read to its end (an event too large to hold, a framing the reader could not
   * follow), though its bytes all went on: usage read before that point may fall short of the
   * call's (Anthropic reports output at the end), so the call is settled like one cut short.
   */
  partial?: boolean;
  /** The tier the call was served on when no usage could be read to say so (a batch's result). */
  tier?: ServiceTier;
}

/**
 * What a request does, for the ledger (src/providers/operations.ts): `inference` is billed from its
 * answer; a `batch` read is billed once, when its answer first shows the batch finished with usage;
 * anything else (listing, retrieval, files, token counting) is forwarded and counted by `name`, never
 * recorded as usage. Names are a provider's own fixed words, so they can label a metric.
 */
export type Operation = { kind: "inference" } | { kind: "batch" | "other"; name: string };

/**
 * Reads usage from a streamed answer while it is forwarded. It sees the upstream's bytes (already
 * decoded of any content-encoding) in order, and says what the client gets of them: the same bytes,
 * or fewer (an injected usage-only event is not the client's to see). The framing is the
 * provider's: server-sent events (sse.ts) or, for Bedrock, AWS's binary event stream.
 */
export interface StreamTap {
  /** Bytes for the client now (undefined or empty: nothing yet). */
  push(chunk: Buffer): Buffer | undefined;
  /** The stream ended: whatever is still due to the client. */
  end(): Buffer | undefined;
  result(): CallUsage;
}

/** One request on its way upstream, as the provider authorises it (SigV4 signs all of it). */
export interface UpstreamRequest {
  method: string;
  /** The whole upstream URL: the base URL, the client's path, and its query without client credentials. */
  url: URL;
  /** Headers going upstream (lower-case): the client's, minus hop-by-hop, credentials and Tollgate's own. */
  headers: Readonly<Record<string, string>>;
  /** The exact bytes going upstream. */
  body: Buffer | undefined;
}

/** Headers to set on the upstream request, or undefined when there is no credential to set them from. */
export type Authorization = Record<string, string> | undefined;

/** How a provider is configured from the environment. */
export interface ProviderConfig<S = unknown> {
  /** The variable that sets the upstream's base URL (OPENAI_BASE_URL). */
  readonly baseUrlVariable: string;
  /** The base URL when that variable is unset; undefined when there is none and the operator must set it. */
  defaultBaseUrl(settings: S): string | undefined;
  /** The variable holding the upstream key (OPENAI_API_KEY); a key stored with `tollgate providers` wins over it. */
  readonly apiKeyVariable: string;
  /**
   * Further variables the provider reads (Bedrock: its region and AWS credentials), a zod object keyed
   * by variable name, validated with the rest of the configuration; unset and empty values arrive as undefined.
   */
  readonly settings: z.ZodType<S>;
}

/** Where a provider's OTLP GenAI spans say more than, or differ from, the conventions' generic attributes. */
export interface OtlpQuirks {
  /** Span attributes naming the tier a call was served on, and how a value maps to ours. */
  serviceTier?: { readonly keys: readonly string[]; read(value: string): ServiceTier | undefined };
  /**
   * Counts as this provider's own API reports them, which the Vercel AI SDK before v6 passed
   * through unchanged (the conventions want input with cache, output with reasoning).
   */
  nativeCounts?: { readonly inputExcludesCache?: boolean; readonly outputExcludesReasoning?: boolean };
}

/** One provider: everything the gateway knows about it. */
export interface Provider<S = unknown> {
  /** The name every door records and the proxy routes by (`/<name>/...`): lower case. */
  readonly name: string;
  /** Other spellings of the name at any door (SDKs, OTel `gen_ai.provider.name`, LiteLLM), lower case. */
  readonly aliases: readonly string[];
  /** The price catalog's (genai-prices') id for this provider. */
  readonly catalogId: string;
  /** Its usage format: the proxy's answers, the usage webhook's raw `usage`. */
  readonly usage: UsageExtractor;
  readonly otlp?: OtlpQuirks;
  readonly config: ProviderConfig<S>;

  /** The key the client's SDK sent, wherever this provider's SDK puts it. */
  clientKey(headers: HeaderBag, query: URLSearchParams): string | undefined;
  /** Request headers (lower-case) and query parameters that carried the client's key: removed before forwarding. */
  readonly credentialHeaders: readonly string[];
  readonly credentialQuery: readonly string[];
  /**
   * The headers that authenticate one upstream request. `credential` is the provider key (stored,
   * from the environment, or the client's own when pass-through is allowed); undefined when there is
   * none, and then a provider that needs no key (SigV4 from `settings`) may still authorise.
   */
  authorize(request: UpstreamRequest, credential: string | undefined, settings: S): Authorization | Promise<Authorization>;
  /**
   * Facts about a request to `path` (the part after the route prefix, without query, as the client
   * sent it: percent-escapes kept); `body` is its JSON, if any; `query` its query parameters;
   * `bytes` the body as it came, for a rewrite that keeps the client's own text.
   */
  inspect(path: string, body: unknown, query: URLSearchParams, bytes?: Buffer): RequestFacts;
  /** What a request with this method to `path` (as for `inspect`) does. */
  operation(method: string, path: string): Operation;
  /** Usage of a whole (non-streamed) JSON answer. */
  usageOf(path: string, body: unknown): CallUsage;
  /**
   * The JSON answer the client gets instead of `body` (the upstream's, to a request to `path`), or
   * undefined to pass it on unchanged: Anthropic's batch object names its results file by an absolute
   * URL on Anthropic's host, which its SDKs would follow around the gateway.
   */
  rewriteAnswer?(path: string, body: unknown): unknown;
  /** Whether an answer with this content type, to a request to `path`, is a stream to read through `tap`. */
  isStream(contentType: string, path: string): boolean;
  /** A fresh side reader for one streamed answer; `injected` when the gateway asked for usage itself. */
  tap(path: string, injected: boolean): StreamTap;
  /** A body in this provider's own error shape. */
  error(status: number, code: string, message: string, details?: Record<string, unknown>): unknown;
  /**
   * The headers of such an error, given the gateway's own (`retry-after`, ...), where the provider's
   * SDKs read more from headers than from the body (Bedrock names the exception in `x-amzn-errortype`).
   */
  errorHeaders?(status: number, headers: Readonly<Record<string, string>>): Record<string, string>;
}

/** How a provider's API is spoken on the wire: the part of a Provider its wire.ts fills in. */
export type ProviderWire<S = unknown> = Omit<Provider<S>, "name" | "aliases" | "catalogId" | "usage" | "otlp" | "config">;
