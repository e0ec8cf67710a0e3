import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { createGateway, resolveAdminToken } from "../app.ts";
import type { Config } from "../config.ts";
import type { Integration } from "../integration.ts";
import type { Logger } from "../logger.ts";
import { AdminClient } from "./admin-client.ts";
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
  const remote = config.TOLLGATE_URL ?? readServerFile(config.TOLLGATE_DATA_DIR)?.url;
  if (remote) return { client: new AdminClient(remote, resolveAdminToken(config)), via: remote, close: async () => {} };
  // A one-off command neither delivers nor runs schedules: the outbox and the jobs wait for `serve`.
  const gateway = await createGateway({ ...config, TOLLGATE_JOBS: "off" }, logger, undefined, integrations);
  const server = gateway.app.listen(0, "127.0.0.1");
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
