import { Pool } from "undici";
import type { Config } from "../config.ts";
import { providerFor } from "./providers/index.ts";
import type { ProxyRoute } from "./router.ts";

/** Every provider the gateway fronts, each with a keep-alive connection pool to its upstream. */
export function proxyRoutes(config: Config): Map<string, ProxyRoute> {
  const bases: Record<string, string> = {
    openai: config.OPENAI_BASE_URL,
    anthropic: config.ANTHROPIC_BASE_URL,
    gemini: config.GEMINI_BASE_URL,
    ...config.TOLLGATE_PROVIDERS,
  };
  return new Map(
    Object.entries(bases).map(([name, base]) => {
      const url = new URL(base);
      const route: ProxyRoute = {
        provider: providerFor(name),
        dispatcher: new Pool(url.origin, { connections: 256, keepAliveTimeout: 30_000 }),
        basePath: url.pathname.replace(/\/+$/, ""),
      };
      return [name, route];
    }),
  );
}
