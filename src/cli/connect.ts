import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import type { Config } from "../config.ts";
import type { Integration } from "../integration.ts";
import type { Logger } from "../logger.ts";
import { AdminClient, CliError } from "./admin-client.ts";
import { readServerFile } from "./server-file.ts";

export interface Connection {
  client: AdminClient;
  /** Where the answer came from, for the user: a running server, or this process. */
  via: string;
  close(): Promise<void>;
}

/**
 * The admin API of the running server for this data folder (or TOLLGATE_URL); with none running,
 * a gateway started inside this process on a loopback port, so every command has one code path.
 */
export async function connect(config: Config, logger: Logger, integrations: readonly Integration[] = []): Promise<Connection> {
  if (config.TOLLGATE_URL) return { client: new AdminClient(config.TOLLGATE_URL, remoteToken(config, config.TOLLGATE_URL)), via: config.TOLLGATE_URL, close: async () => {} };
  const local = readServerFile(config.TOLLGATE_DATA_DIR)?.url;
  if (local) return { client: new AdminClient(local, remoteToken(config, local)), via: local, close: async () => {} };
  // Loaded only here: a command answered by a running server needs neither express nor the database.
  const { createGateway } = await import("../app.ts");
  // A one-off command neither delivers nor runs schedules: the outbox and the jobs wait for `serve`.
  const gateway = await createGateway({ ...config, TOLLGATE_JOBS: "off" }, logger, undefined, integrations);
  const server = gateway.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    client: new AdminClient(`http://127.0.0.1:${port}`, gateway.adminToken),
    via: "local",
    async close() {
      await new Promise((resolve) => server.close(resolve));
      await gateway.close();
    },
  };
}

/**
 * The admin token for the gateway at `url`: the configured one, or the one this data folder
 * already holds (a server running on it made it). Never a new one: a token made here would be
 * unknown there, and every call a 401.
 */
function remoteToken(config: Config, url: string): string {
  const file = join(config.TOLLGATE_DATA_DIR, "admin.token");
  const token = config.TOLLGATE_ADMIN_TOKEN ?? (existsSync(file) ? readFileSync(file, "utf8").trim() : undefined);
  if (!token) throw new CliError(`${url === config.TOLLGATE_URL ? "TOLLGATE_URL" : "the server on this data folder"} is ${url}: set TOLLGATE_ADMIN_TOKEN to that gateway's admin token`);
  return token;
}

/**
 * Runs `work` against the admin API of a running server, or of a gateway started here; a command
 * that needs a platform's part in the gateway (`tollgate telegram link`: Telegram, for its deep
 * links) names the integrations that gateway needs.
 */
export async function withClient<T>(ctx: { config: Config; logger: Logger }, work: (client: AdminClient) => Promise<T>, integrations: readonly Integration[] = []): Promise<T> {
  const connection = await connect(ctx.config, ctx.logger, integrations);
  try {
    return await work(connection.client);
  } finally {
    await connection.close();
  }
}
