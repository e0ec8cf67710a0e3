import { createRequire } from "node:module";
import type { Pool as UndiciPool } from "undici";

/*
 * undici's Pool without the rest of undici. The package's entry loads fetch, WebSocket, EventSource,
 * the HTTP cache and the mock agents as well, about 8 MB resident that the proxy never uses
 * (bench/RESULTS.md, memory). This loads the pool and the request API that the entry would have put
 * on every dispatcher (`dispatcher.request`), the same modules it loads, so a later
 * `import "undici"` (the webhook integration) finds them loaded and shares the one Dispatcher class.
 */
const require = createRequire(import.meta.url);
const Dispatcher = require("undici/lib/dispatcher/dispatcher.js") as { prototype: object };
Object.assign(Dispatcher.prototype, require("undici/lib/api/index.js") as object);

export const Pool = require("undici/lib/dispatcher/pool.js") as typeof UndiciPool;
