import assert from "node:assert/strict";
import type { Server } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * How long a test, a wait or a child process may take before it counts as hung: far beyond what
 * anything takes on a loaded 2-core machine, so only a hang reaches it, and a hang fails instead
 * of stalling the run.
 */
export const HANG_MS = 300_000;

/** How long waitFor waits for a condition by default: as long as a hang takes, since under load a server may take a minute to start. */
export const WAIT_MS = HANG_MS;

/**
 * Keeps idle keep-alive connections to a test server open until the test closes it. With Node's
 * default 5 s, a client reusing a connection as the server closes it gets ECONNRESET ("Connection
 * error." in the SDKs): a race whose window a loaded machine widens to seconds.
 */
export function keepConnections(server: Server): void {
  server.keepAliveTimeout = HANG_MS;
}

/** Polls `check` every 10 ms until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
