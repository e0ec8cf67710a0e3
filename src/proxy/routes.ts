import { Pool } from "./pool.ts";
import type { Config } from "../config.ts";
import { providerNamed } from "../providers/registry.ts";
import type { ProxyRoute } from "./router.ts";

/**
 * The upstream pool's tuning. One request per connection at a time (pipelining 1): a slow
 * answer must never hold up the ones queued behind it on the same socket, and providers' load
 * balancers do not promise pipelining. Idle connections are kept a minute, or as long as the
 * provider's own `keep-alive: timeout=` says (up to ten minutes, less two seconds so we close
 * first), so a steady load never pays a handshake per call.
 */
export const POOL = { connections: 256, pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000, keepAliveTimeoutThreshold: 2_000 } as const;

/** Every provider the gateway fronts, each with a keep-alive connection pool to its upstream. */
export function proxyRoutes(config: Config): Map<string, ProxyRoute> {
  return new Map(
    Object.entries(config.providers).map(([name, setup]) => {
      const url = setup.baseUrl === undefined ? undefined : new URL(setup.baseUrl);
      const route: ProxyRoute = {
        provider: providerNamed(name),
        settings: setup.settings,
        upstream: url && {
          origin: url.origin,
          dispatcher: new Pool(url.origin, POOL),
          basePath: url.pathname.replace(/\/+$/, ""),
        },
      };
      return [name, route];
    }),
  );
}
