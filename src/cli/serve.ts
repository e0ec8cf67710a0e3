import cluster from "node:cluster";
import { once } from "node:events";
import { mkdirSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Gateway } from "../app.ts";
import { within } from "../deadline.ts";
import type { Config } from "../config.ts";
import type { Integration } from "../integration.ts";
import type { Logger } from "../logger.ts";
import { CliError } from "./admin-client.ts";
import type { Command } from "./commands.ts";
import { runPrimary } from "../cluster/primary.ts";
import { workerRole } from "../cluster/worker.ts";
import { claimServerFile, removeServerFile, writeServerFile } from "./server-file.ts";
import { SERVING_SEMI_SPACE_MB, letYoungGenerationGrow } from "../young-generation.ts";

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
  const workers = config.TOLLGATE_WORKERS > 1 ? ` · ${config.TOLLGATE_WORKERS} workers` : "";
  return `tollgate: listening at ${url}${workers} · data folder ${config.TOLLGATE_DATA_DIR} (${database}) · admin token in ${token}`;
}

/** Listens on PORT and HOST; a port in use (or not ours to take) is one line for people, not a stack trace. */
async function listen(gateway: Gateway, config: Config): Promise<Server> {
  const server = gateway.listen(config.PORT, config.HOST);
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

/** How one gateway process meets the world: who learns it listens, what stops it. */
export interface Role {
  logger: Logger;
  /** The port listens. */
  listening(gateway: Gateway, port: number): void;
  /** Resolves with the signal's name once the process is asked to stop. */
  stopRequested: Promise<string>;
  /** The moment it stops taking requests (the server file goes). */
  stopping(): void;
}

/**
 * Runs the gateway in this process until its role says stop, then stops taking requests and
 * flushes the recorder, within TOLLGATE_SHUTDOWN_TIMEOUT_MS whatever it waits on.
 */
async function runGateway(config: Config, integrations: readonly Integration[], role: Role): Promise<number> {
  const { logger } = role;
  let gateway: Gateway | undefined;
  let stopCapping = () => {};
  try {
    // Loaded here, not at the top: a primary supervising workers never builds a gateway, and keeps its memory.
    const { createGateway } = await import("../app.ts");
    gateway = await createGateway(config, logger, undefined, integrations);
    const server = await listen(gateway, config);
    const { port } = server.address() as AddressInfo;
    role.listening(gateway, port);
    // Start-up's garbage is behind us (bin/main.ts kept the young generation small through it);
    // serving grows it up to a cap, not to V8's 32 MB (src/young-generation.ts).
    stopCapping = letYoungGenerationGrow(SERVING_SEMI_SPACE_MB);
    const signal = await role.stopRequested;
    logger.info({ signal }, "shutting down");
    role.stopping();
    // Its observer would keep the process alive once everything else has stopped.
    stopCapping();
    const open = gateway;
    const stopped = await within(
      (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await open.close();
        return true;
      })(),
      config.TOLLGATE_SHUTDOWN_TIMEOUT_MS,
    );
    if (!stopped) {
      // Something does not answer (a hung database, a call that will not end). Every answered
      // call is in the journal already; the next start replays what was not written.
      logger.error({ afterMs: config.TOLLGATE_SHUTDOWN_TIMEOUT_MS }, "shutdown deadline passed; exiting, the journal keeps what was not written");
      process.exit(1);
    }
    logger.info("stopped");
    return 0;
  } catch (err) {
    role.stopping();
    stopCapping();
    await gateway?.close();
    throw err;
  }
}

const signalled = (...signals: NodeJS.Signals[]) => Promise.race(signals.map((s) => once(process, s).then(() => s)));

/**
 * Runs the gateway until SIGINT/SIGTERM: in this process, or with TOLLGATE_WORKERS above 1 as a
 * primary supervising that many worker processes, each a whole gateway (this same command, forked).
 * The data folder is claimed first: a second server on it is refused before it opens the database.
 */
export async function serve(config: Config, logger: Logger, integrations: readonly Integration[], noteDataDir: () => void = () => {}): Promise<number> {
  if (cluster.isWorker) {
    try {
      return await runGateway(config, integrations, workerRole(logger));
    } finally {
      // The channel to the primary would keep the process alive; once it is gone the worker exits with its code.
      cluster.worker?.disconnect();
    }
  }
  const dataDir = config.TOLLGATE_DATA_DIR;
  mkdirSync(dataDir, { recursive: true });
  noteDataDir();
  const claim = claimServerFile(dataDir, process.pid);
  if (!claim.ok) {
    const { url, pid } = claim.holder;
    throw new CliError(`${url ? `already running at ${url}` : "already starting"} (pid ${pid}) on the data folder ${dataDir}; stop it, or give this server its own TOLLGATE_DATA_DIR`, 1);
  }
  const announce = (port: number, details: Record<string, unknown>) => {
    const url = reachableUrl(config.HOST, port);
    writeServerFile(dataDir, { url, pid: process.pid });
    logger.info({ ...details, adminTokenFrom: config.TOLLGATE_ADMIN_TOKEN ? "TOLLGATE_ADMIN_TOKEN" : `${dataDir}/admin.token` }, "tollgate listening");
    process.stderr.write(`${startLine(config, url)}\n`);
  };
  const leave = () => removeServerFile(dataDir, process.pid);
  if (config.TOLLGATE_WORKERS > 1) {
    try {
      return await runPrimary(config, logger, { announce, leave });
    } finally {
      leave();
    }
  }
  return runGateway(config, integrations, {
    logger,
    listening: (gateway, port) => announce(port, { port, database: gateway.database.driver, prices: gateway.catalog.source }),
    stopRequested: signalled("SIGINT", "SIGTERM"),
    stopping: leave,
  });
}

export const serveCommand: Command = (ctx) => serve(ctx.config, ctx.logger, ctx.integrations, ctx.noteDataDir);
