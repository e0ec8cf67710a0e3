import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * How long a test, a wait or a child process may take before it counts as hung: far beyond what
 * anything takes on a loaded 2-core machine, so only a hang reaches it, and a hang fails instead
 * of stalling the run.
 */
export const HANG_MS = 300_000;

/** How long waitFor waits for a condition by default: generous, since the machine may be loaded. */
export const WAIT_MS = 60_000;

/** Polls `check` every 10 ms until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
