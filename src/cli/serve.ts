import { once } from "node:events";
import { mkdirSync } from "node:fs";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Express } from "express";
import { join } from "node:path";
import { createGateway } from "../app.ts";
import type { Config } from "../config.ts";
import type { Integration } from "../integration.ts";
import type { Logger } from "../logger.ts";
import { CliError } from "./admin-client.ts";
import type { Command } from "./commands.ts";
import { claimServerFile, removeServerFile, writeServerFile } from "./server-file.ts";

/** Where people reach a server listening on `host`: the loopback address when it listens on every interface. */
export function reachableUrl(host: string, port: number): string {
  const any = host === "0.0.0.0" || host === "::" || host === "";
  const shown = any ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  return `http://${shown}:${port}`;
}

/**
 * The one line for people beside the JSON logs. It goes to standard error: the logs are on
 * standard output, and whatever reads them as JSON lines (a log shipper, `| pino-pretty`) would
 * stumble on a line of prose there.
 */
export function startLine(config: Config, url: string): string {
  const database = config.DATABASE_URL ? `PostgreSQL at ${new URL(config.DATABASE_URL).host}` : "embedded PGlite";
  const token = config.TOLLGATE_ADMIN_TOKEN ? "TOLLGATE_ADMIN_TOKEN" : join(config.TOLLGATE_DATA_DIR, "admin.token");
  return `tollgate: listening at ${url} · data folder ${config.TOLLGATE_DATA_DIR} (${database}) · admin token in ${token}`;
}

/**
 * The HTTP server, with limits on how slowly a client may send: headers and the whole request are
 * timed (408, then closed), and idle keep-alive sockets go after a few seconds, so a slowloris
 * costs a socket for a bounded time. Node checks these timers every `connectionsCheckingInterval`.
 */
export function createHttpServer(app: Express, config: Pick<Config, "TOLLGATE_HEADERS_TIMEOUT_MS" | "TOLLGATE_REQUEST_TIMEOUT_MS">): Server {
  const headersTimeout = config.TOLLGATE_HEADERS_TIMEOUT_MS;
  const requestTimeout = Math.max(config.TOLLGATE_REQUEST_TIMEOUT_MS, headersTimeout);
  return createServer({ headersTimeout, requestTimeout, keepAliveTimeout: 5_000, connectionsCheckingInterval: Math.min(headersTimeout, 5_000) }, app);
}

/** Listens on PORT and HOST; a port in use (or not ours to take) is one line for people, not a stack trace. */
async function listen(app: Express, config: Config): Promise<Server> {
  const server = createHttpServer(app, config).listen(config.PORT, config.HOST);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.once("listening", () => {
        server.off("error", reject);
        resolve();
      });
    });
    return server;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new CliError(`port ${config.PORT} is in use on ${config.HOST}: stop what listens there, or set PORT to another`, 1);
    if (code === "EACCES") throw new CliError(`port ${config.PORT} on ${config.HOST} needs privileges this process lacks: set PORT to one above 1023`, 1);
    if (code === "EADDRNOTAVAIL") throw new CliError(`HOST ${config.HOST} is not an address of this machine`, 1);
    throw err;
  }
}

/**
 * Runs the gateway until SIGINT/SIGTERM, then stops taking requests and flushes the recorder.
 * The data folder is claimed first: a second server on it is refused before it opens the database.
 */
export async function serve(config: Config, logger: Logger, integrations: readonly Integration[], noteDataDir: () => void = () => {}): Promise<number> {
  const dataDir = config.TOLLGATE_DATA_DIR;
  mkdirSync(dataDir, { recursive: true });
  noteDataDir();
  const claim = claimServerFile(dataDir, process.pid);
  if (!claim.ok) {
    const { url, pid } = claim.holder;
    throw new CliError(`${url ? `already running at ${url}` : "already starting"} (pid ${pid}) on the data folder ${dataDir}; stop it, or give this server its own TOLLGATE_DATA_DIR`, 1);
  }
  let gateway: Awaited<ReturnType<typeof createGateway>> | undefined;
  try {
    gateway = await createGateway(config, logger, undefined, integrations);
    const server = await listen(gateway.app, config);
    const { port } = server.address() as AddressInfo;
    const url = reachableUrl(config.HOST, port);
    writeServerFile(dataDir, { url, pid: process.pid });
    logger.info({ port, database: gateway.database.driver, prices: gateway.catalog.source, adminTokenFrom: config.TOLLGATE_ADMIN_TOKEN ? "TOLLGATE_ADMIN_TOKEN" : `${dataDir}/admin.token` }, "tollgate listening");
    process.stderr.write(`${startLine(config, url)}\n`);
    const signal = await Promise.race([once(process, "SIGINT"), once(process, "SIGTERM")]);
    logger.info({ signal: signal[0] }, "shutting down");
    removeServerFile(dataDir, process.pid);
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    await gateway.close();
    logger.info("stopped");
    return 0;
  } catch (err) {
    removeServerFile(dataDir, process.pid);
    await gateway?.close();
    throw err;
  }
}

export const serveCommand: Command = (ctx) => serve(ctx.config, ctx.logger, ctx.integrations, ctx.noteDataDir);
