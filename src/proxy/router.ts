import type { IncomingMessage, ServerResponse } from "node:http";
import type { Dispatcher } from "undici";
import { type ApiKeys, type KeyInfo, modelAllowed } from "../keys/api-keys.ts";
import type { Built, EventBuilder, LedgerEvent } from "../ledger/build-event.ts";
import type { Logger } from "../logger.ts";
import { holdBody, joined } from "../http/hold.ts";
import { ERROR_KINDS } from "../errors.ts";
import { attribute, headerTags } from "./attribution.ts";
import { ledgerFilter } from "./billing.ts";
import { ADMITTED, type BudgetBlock, type BudgetGate, NOTHING_RECORDED } from "./budget-gate.ts";
import { type Call, type ForwardOptions, forward, newCallId, sendProviderError } from "./forward.ts";
import { normaliseProvider } from "../providers/registry.ts";
import type { Provider } from "../providers/types.ts";
import { requestBody } from "./request-body.ts";

/** Where a route's upstream is. */
export interface Upstream {
  /** Scheme, host and port of the upstream base URL. */
  origin: string;
  dispatcher: Dispatcher;
  /** Path of the upstream base URL, prefixed to every forwarded path ("" for a host root). */
  basePath: string;
}

/** One provider mounted at `/<name>`: how it is spoken and where its upstream is. */
export interface ProxyRoute {
  provider: Provider;
  /** The provider's own settings from the configuration, handed back to it when it authorises a request. */
  settings: unknown;
  /** undefined when its base URL is not configured (a provider without a default). */
  upstream: Upstream | undefined;
}

/** Where the gateway finds the real provider key for a route. */
export interface ProviderKeySource {
  get(provider: string): string | undefined | Promise<string | undefined>;
}

export interface ProxyDeps {
  routes: ReadonlyMap<string, ProxyRoute>;
  keys: ApiKeys;
  providerKeys: ProviderKeySource;
  gate: BudgetGate;
  builder: EventBuilder;
  record: (built: Built) => void;
  /** Runs `send` once what `record` took is journaled: the answer's last bytes wait for it. */
  whenRecorded: (send: () => void) => void;
  logger: Logger;
  onDisconnect: "drain" | "cancel";
  drainTimeoutMs: number;
  maxDrains: number;
  upstreamTimeoutMs: number;
  /** Forward a client's own provider key when it presents one instead of a Tollgate key. */
  allowProviderKeys: boolean;
  maxRequestBytes: number;
}

const BODYLESS = new Set(["GET", "HEAD", "OPTIONS", "DELETE"]);
/** The query of a call that has none: shared, as nothing adds to it (credentials are only deleted). */
const NO_QUERY = new URLSearchParams();

/** A client's own `x-request-id`, echoed when sane (as every other route does). */
const SANE_REQUEST_ID = /^[\w.:-]{1,100}$/;
function replyIdOf(req: IncomingMessage, id: string): string {
  const given = req.headers["x-request-id"];
  return typeof given === "string" && SANE_REQUEST_ID.test(given) ? given : id;
}

/** How long a client waits before asking again about a budget or key that could not be checked. */
const UNCHECKED_RETRY_SECONDS = "5";

/** The longest `retry-after` a budget refusal names: beyond it, waiting will not help soon. */
const RETRY_AFTER_MAX_SECONDS = 60;

/**
 * A budget refusal is not fixed by retrying: `x-should-retry: false`, which the official SDKs
 * honour before anything else. `retry-after` only when the budget resets within a minute: the SDKs
 * obey it literally (openai for any length, Anthropic's up to 24 days), so naming a reset hours away
 * would put a caller to sleep until then. The reset time is always in the error body. The Vercel
 * AI SDK retries every 429 twice whatever the headers say, sleeping 2 s then 4 s unless
 * `retry-after-ms` names a shorter wait: `0` there turns its retries (each refused from memory)
 * into an immediate failure rather than six seconds asleep.
 */
function budgetRetryHeaders(resetsAt: Date): Record<string, string> {
  const seconds = Math.max(1, Math.ceil((resetsAt.getTime() - Date.now()) / 1000));
  return { "x-should-retry": "false", ...(seconds <= RETRY_AFTER_MAX_SECONDS ? { "retry-after": String(seconds) } : { "retry-after-ms": "0" }) };
}

/** Why a call's key was refused, saying so when it is a live key of the other kind. */
function refusedKeyMessage(presented: string | undefined, found: KeyInfo | null): string {
  if (found?.kind === "ingest") return "this is a Tollgate ingest key, for reporting usage to /v1/usage; calls through the proxy take a virtual key (tollgate keys create --kind virtual)";
  return presented ? "the Tollgate key is not valid or has been revoked" : "send a Tollgate virtual key (tlg_...) where your SDK sends its API key";
}

/** A hard budget's refusal, in the provider's own error shape. */
function refuse(res: ServerResponse, call: Pick<Call, "provider" | "id" | "replyId">, block: BudgetBlock): void {
  const details = {
    budget: block.budget,
    spend_usd: block.spend_usd,
    amount_usd: block.amount_usd,
    remaining_usd: block.remaining_usd,
    resets_at: block.resets_at.toISOString(),
  };
  if (block.kind === "unchecked")
    return sendProviderError(res, call, 503, "budget_unavailable", `budget ${block.budget} cannot be checked right now; try again shortly`, { budget: block.budget }, { "x-should-retry": "false", "retry-after": UNCHECKED_RETRY_SECONDS });
  const message =
    block.kind === "exhausted"
      ? `budget ${block.budget} is exhausted ($${block.spend_usd} of $${block.amount_usd}); it resets at ${details.resets_at}`
      : `budget ${block.budget} has $${block.remaining_usd} of $${block.amount_usd} left and this request could cost up to $${block.reserve_usd}; set a lower max_tokens, or wait until it resets at ${details.resets_at}`;
  sendProviderError(res, call, 429, "budget_exceeded", message, { ...details, reserve_usd: block.reserve_usd }, budgetRetryHeaders(block.resets_at));
}

/**
 * The proxy, in front of express on the raw HTTP server: `/<provider>/...` requests are taken
 * (true) and answered here; anything else is left (false) for express. Authentication,
 * attribution and the budget check happen here, from memory for known keys and leased budgets;
 * the bytes are moved by forward.ts.
 */
export function proxyHandler(deps: ProxyDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const opts: ForwardOptions = {
    builder: deps.builder,
    onDisconnect: deps.onDisconnect,
    drainTimeoutMs: deps.drainTimeoutMs,
    drains: { active: 0, max: deps.maxDrains },
    upstreamTimeoutMs: deps.upstreamTimeoutMs,
  };
  return (req, res) => {
    const url = req.url ?? "/";
    const slash = url.indexOf("/", 1);
    if (slash <= 1) return false;
    const prefix = url.slice(1, slash);
    // A provider is reached by any of its names (`/google/...` is Gemini's route): looked up only on a miss.
    const route = deps.routes.get(prefix) ?? deps.routes.get(normaliseProvider(prefix));
    if (!route) return false;
    handle(route, url.slice(slash), req, res, deps, opts).catch((err: unknown) => {
      deps.logger.error({ err, provider: route.provider.name }, "proxy failure");
      sendProviderError(res, { provider: route.provider, id: "" }, 500, "gateway_error", "the gateway failed to handle this request");
    });
    return true;
  };
}

/** The same handler as express middleware, for an app served without the raw front (its other routes fall through). */
export function proxyMiddleware(take: ReturnType<typeof proxyHandler>) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void) => {
    if (!take(req, res)) next();
  };
}

/** One line per proxied call, as express's routes get from the request log; built only when info is logged. */
function logWhenDone(logger: Logger, req: IncomingMessage, res: ServerResponse, id: string, path: string, started: number): void {
  res.once("finish", () => {
    // The path only: query strings and bodies can carry things that must not reach logs.
    logger.info({ reqId: id, method: req.method, path, status: res.statusCode, ms: Math.round(performance.now() - started) }, "request");
  });
}

async function handle(route: ProxyRoute, rest: string, req: IncomingMessage, res: ServerResponse, deps: ProxyDeps, opts: ForwardOptions): Promise<void> {
  const { provider } = route;
  const id = newCallId();
  const started = performance.now();
  const startedAt = new Date();
  const replyId = replyIdOf(req, id);
  const q = rest.indexOf("?");
  const path = q === -1 ? rest : rest.slice(0, q);
  if (deps.logger.isLevelEnabled("info")) logWhenDone(deps.logger, req, res, replyId, `/${provider.name}${path}`, started);
  const own = { provider, id, replyId };
  const method = req.method ?? "GET";
  const bodyless = BODYLESS.has(method);
  // Refused unread: a body that says it is over the limit is never taken in (and its connection not kept).
  if (!bodyless && Number(req.headers["content-length"]) > deps.maxRequestBytes) return tooLarge(res, own, deps.maxRequestBytes);
  const params = q === -1 ? NO_QUERY : new URLSearchParams(rest.slice(q + 1));
  const presented = provider.clientKey(req.headers, params);
  let found: KeyInfo | null = null;
  if (presented) {
    try {
      // Known keys are answered from memory; only a key this process has never seen waits on the
      // database, its body unread meanwhile (only the socket's own buffer holds any of it).
      const lookup = deps.keys.find(presented);
      found = lookup instanceof Promise ? await lookup : lookup;
    } catch (err) {
      deps.logger.warn({ provider: provider.name, error: (err as Error).name }, "a virtual key could not be checked: the database did not answer");
      return sendProviderError(res, own, 503, "key_check_unavailable", "the gateway cannot check this Tollgate key right now; try again shortly", {}, { "retry-after": UNCHECKED_RETRY_SECONDS });
    }
  }
  const key = found?.kind === "virtual" ? found : null;
  const passThrough = !key && deps.allowProviderKeys && presented !== undefined && !presented.startsWith("tlg_");
  if (!key && !passThrough) return sendProviderError(res, own, 401, "invalid_api_key", refusedKeyMessage(presented, found));
  if (key?.allowed_providers && !key.allowed_providers.includes(provider.name))
    return sendProviderError(res, own, 403, "provider_not_allowed", `this Tollgate key may not call ${provider.name}; it may call ${key.allowed_providers.join(", ")}`);
  const tagged = headerTags(req.headers);
  if (!tagged.ok) return sendProviderError(res, own, ERROR_KINDS[tagged.kind].status, ERROR_KINDS[tagged.kind].code, tagged.message);

  let body: Buffer | undefined;
  if (!bodyless) {
    // A body that declared too much was refused above, unread; one that grows over the limit stops here.
    const held = await holdBody(req, deps.maxRequestBytes);
    if (!held.whole) return tooLarge(res, own, deps.maxRequestBytes);
    body = joined(held);
  }
  const operation = provider.operation(req.method ?? "GET", path);
  const read = requestBody(body, req.headers["content-type"], operation.kind === "inference");
  const parsed = read instanceof Promise ? await read : read;
  if (!parsed.ok) return sendProviderError(res, own, 415, "unsupported_body", parsed.reason);
  const json = parsed.json;
  const facts = provider.inspect(path, json, params, body);
  if (key && !modelAllowed(key.allowed_models, facts.model))
    return sendProviderError(res, own, 403, "model_not_allowed", `this Tollgate key may not use ${facts.model}; it may use ${key.allowed_models!.join(", ")}`);
  const attribution = attribute(key, req.headers, facts, tagged.tags);

  // The spread last: on Node 20 a spread followed by new fields took 10-30 µs a call (V8 leaves its
  // fast path for that shape), the fields then the spread under 1 µs. No key of the two overlaps.
  const checked = deps.gate.check({ id, provider: provider.name, model: facts.model, body: json, bodyBytes: body?.length ?? 0, ...attribution });
  const verdict = checked instanceof Promise ? await checked : checked;
  if (!verdict.admitted) return refuse(res, own, verdict.block);
  const { hold } = verdict;
  try {
    if (!route.upstream)
      return sendProviderError(res, own, 503, "provider_not_configured", `the gateway has no ${provider.name} upstream: set ${provider.config.baseUrlVariable}`);
    let credential: string | undefined;
    if (passThrough) credential = presented;
    else {
      const stored = deps.providerKeys.get(provider.name);
      credential = stored instanceof Promise ? await stored : stored;
    }
    for (const name of provider.credentialQuery) params.delete(name);
    const query = params.size > 0 ? `?${params}` : "";
    const billed = ledgerFilter(provider.name, operation, id);
    const call: Call = {
      id,
      provider,
      path,
      facts,
      attribution,
      started,
      startedAt,
      replyId,
      credential,
      // The hold is settled with every event the call records (a batch read's are its results'),
      // before they go to the ledger; a call that records nothing settles it in the finally below.
      // Loops, not flatMaps: for a call's one event the two flatMaps took ~0.53 µs, these ~0.04.
      record: (seen) => {
        const kept: Built[] = [];
        for (const one of seen) {
          const billable = billed(one);
          if (billable) kept.push(billable);
        }
        if (verdict !== ADMITTED) {
          const events: LedgerEvent[] = [];
          for (const built of kept) if (built.ok) events.push(built.event);
          hold.settle(events);
        }
        for (const built of kept) deps.record(built);
      },
      whenRecorded: deps.whenRecorded,
    };
    await forward(call, { upstream: route.upstream, settings: route.settings }, req, res, body, query, opts);
  } finally {
    // A call that never reached the ledger (no provider key, a failure) gives back what it held.
    hold.settle(NOTHING_RECORDED);
  }
}

/** 413, and the connection closed after it: the rest of the body is not read. */
function tooLarge(res: ServerResponse, call: Pick<Call, "provider" | "id" | "replyId">, limit: number): void {
  res.shouldKeepAlive = false;
  sendProviderError(res, call, 413, "request_too_large", `request bodies are limited to ${limit} bytes`, {}, { connection: "close" });
}
