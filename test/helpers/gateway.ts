import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { integrations } from "../../integrations/index.ts";
import { type Gateway, createGateway } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import type { Database } from "../../src/db/connection.ts";
import type { Integration } from "../../src/integration.ts";
import { createLogger } from "../../src/logger.ts";
import { openTestDatabase } from "./db.ts";
import { keepConnections } from "./wait.ts";

export const ADMIN_TOKEN = "test-admin-token-0123456789";

export interface TestGateway {
  gateway: Gateway;
  base: string;
  /** The gateway's HTTP server, for a test to watch its requests and responses. */
  server: Server;
  /** fetch against the gateway with the admin token. */
  admin(path: string, init?: RequestInit): Promise<Response>;
  /** Creates an ingest key (optionally bound to attribution) and returns the key. */
  ingestKey(attribution?: Record<string, string>): Promise<string>;
  close(): Promise<void>;
}

export interface TestGatewayOptions {
  /**
   * The database to run on, left open on close: several gateways with different settings can
   * share one ledger, or the database can be reached through a TcpCutter. A database of its own otherwise.
   */
  database?: Database;
  /** The platforms to compose in; every one of integrations/index.ts otherwise. */
  integrations?: readonly Integration[];
}

/** The real gateway on a loopback port over a database of its own (or the one given). */
export async function startTestGateway(env: Record<string, string> = {}, options: TestGatewayOptions = {}): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), "tollgate-test-"));
  const config = loadConfig({ TOLLGATE_DATA_DIR: dataDir, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, TOLLGATE_BATCH_WAIT_MS: "2", TOLLGATE_PROXY_BATCH_WAIT_MS: "2", ...env });
  const database = options.database ?? (await openTestDatabase());
  // A platform's settings are read as the gateway is built: a bad one must not leave our database open.
  const gateway = await createGateway(config, createLogger("silent"), database, options.integrations ?? (await Promise.all(integrations.map((s) => s.load())))).catch(
    async (err: unknown) => {
      if (!options.database) await database.close();
      rmSync(dataDir, { recursive: true, force: true });
      throw err;
    },
  );
  const server = gateway.listen(0, "127.0.0.1");
  keepConnections(server);
  await once(server, "listening");
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const admin = (path: string, init: RequestInit = {}) =>
    fetch(base + path, { ...init, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json", ...init.headers } });
  return {
    gateway,
    base,
    server,
    admin,
    async ingestKey(attribution = {}) {
      const res = await admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "ingest", name: `k-${Math.random()}`, ...attribution }) });
      return ((await res.json()) as { key: string }).key;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await gateway.close();
      if (!options.database) await database.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
