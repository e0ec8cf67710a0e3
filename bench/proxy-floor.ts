import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { HOP_BY_HOP } from "../src/proxy/forward.ts";
import { Pool } from "../src/proxy/pool.ts";
import { POOL } from "../src/proxy/routes.ts";

/**
 * The floor of the proxy bench: the smallest correct Node proxy, a node:http server passing each
 * request's method, path, headers (less hop-by-hop ones) and body to the mock through an undici pool
 * with Tollgate's own settings, and streaming the answer back as it comes. No keys, no budgets, no
 * recording, no parsing: what Node itself costs per call on this machine, below which no Node
 * gateway goes. The client sends the upstream's key; the answer's status and headers pass unchanged.
 *
 * Forked by bench/proxy.ts with the mock's origin in FLOOR_UPSTREAM; reports `{ port }` over IPC.
 */

const pool = new Pool(process.env.FLOOR_UPSTREAM!, POOL);
/** Hop-by-hop headers; the body's length passes on, as the body does unchanged. */
const DROPPED = new Set([...HOP_BY_HOP].filter((name) => name !== "content-length"));

/** Raw name/value pairs (as node:http keeps them), less those that describe one connection. */
function endToEnd(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!DROPPED.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  return out;
}

const server = createServer((req, res) => {
  const bodyless = req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined;
  pool
    .stream({ path: req.url!, method: req.method as "POST", headers: endToEnd(req.rawHeaders), body: bodyless ? null : req }, ({ statusCode, headers }) => {
      const out: Record<string, string | string[]> = {};
      for (const name in headers) if (!DROPPED.has(name)) out[name] = headers[name]!;
      res.writeHead(statusCode, out);
      return res;
    })
    .catch(() => {
      if (res.headersSent) res.destroy();
      else res.writeHead(502).end();
    });
});
server.keepAliveTimeout = 120_000;
server.listen(0, "127.0.0.1", () => process.send?.({ port: (server.address() as AddressInfo).port }));
// Exits rather than dies, so a CPU profile (bench:proxy-profile of the floor) is written.
process.on("disconnect", () => process.exit(0)).on("SIGTERM", () => process.exit(0));
