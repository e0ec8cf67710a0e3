import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { createGateway } from "../app.ts";
import type { Config } from "../config.ts";
import type { Integration } from "../integration.ts";
import type { Logger } from "../logger.ts";
import { removeServerFile, writeServerFile } from "./server-file.ts";

/** Runs the gateway until SIGINT/SIGTERM, then stops taking requests and flushes the recorder. */
export async function serve(config: Config, logger: Logger, integrations: readonly Integration[]): Promise<number> {
  const gateway = await createGateway(config, logger, undefined, integrations);
  const server = gateway.app.listen(config.PORT, config.HOST);
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  writeServerFile(config.TOLLGATE_DATA_DIR, { url: `http://127.0.0.1:${port}`, pid: process.pid });
  logger.info(
    { port, database: gateway.database.driver, prices: gateway.catalog.source, adminTokenFrom: config.TOLLGATE_ADMIN_TOKEN ? "TOLLGATE_ADMIN_TOKEN" : `${config.TOLLGATE_DATA_DIR}/admin.token` },
    "tollgate listening",
  );
  const signal = await Promise.race([once(process, "SIGINT"), once(process, "SIGTERM")]);
  logger.info({ signal: signal[0] }, "shutting down");
  removeServerFile(config.TOLLGATE_DATA_DIR, process.pid);
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
  await gateway.close();
  logger.info("stopped");
  return 0;
}
