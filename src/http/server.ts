import { type RequestListener, type Server, createServer } from "node:http";
import type { Config } from "../config.ts";

/**
 * The HTTP server, with limits on how slowly a client may send: headers and the whole request are
 * timed (408, then closed), and idle keep-alive sockets go after a few seconds, so a slowloris
 * costs a socket for a bounded time. Node checks these timers every `connectionsCheckingInterval`.
 * `noDelay`: proxied answers are written whole, so nothing is gained by Nagle's wait.
 */
export function createHttpServer(
  listener: RequestListener,
  config: Pick<Config, "TOLLGATE_HEADERS_TIMEOUT_MS" | "TOLLGATE_REQUEST_TIMEOUT_MS">,
): Server {
  const headersTimeout = config.TOLLGATE_HEADERS_TIMEOUT_MS;
  const requestTimeout = Math.max(config.TOLLGATE_REQUEST_TIMEOUT_MS, headersTimeout);
  return createServer(
    { noDelay: true, headersTimeout, requestTimeout, keepAliveTimeout: 5_000, connectionsCheckingInterval: Math.min(headersTimeout, 5_000) },
    listener,
  );
}
