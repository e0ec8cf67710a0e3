import { Pool } from "undici";
import type { Config } from "../config.ts";
import { providerNamed } from "../providers/registry.ts";
import type { ProxyRoute } from "./router.ts";

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
          dispatcher: new Pool(url.origin, { connections: 256, keepAliveTimeout: 30_000 }),
          basePath: url.pathname.replace(/\/+$/, ""),
        },
      };
      return [name, route];
    }),
  );
}
