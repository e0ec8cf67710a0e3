import { setFlagsFromString } from "node:v8";

/*
 * V8 sets the old generation's next full collection at a multiple of what the last one kept: up
 * to 4× on a machine with this much memory, the more the faster objects are promoted. A serving
 * gateway keeps ~30 MB live, and under the proxy load about 3.4 KB of each call's ~60 KB outlives
 * two scavenges (measured with --trace-gc-nvp), so its old generation filled with garbage up to
 * 80–127 MB before each full collection: the largest part of the RSS under load (docs/operations.md,
 * memory).
 *
 * `--heap-growing-percent` replaces that multiple by a fixed one: 1.5× what is live, so the old
 * generation peaks ~15 MB over the live heap, for more frequent full collections (marked mostly
 * on V8's helper threads), measured beside the default in one run. It is read at each collection,
 * so it acts from inside the process; node's command line gives it for an operator who wants V8's
 * own policy back (`node --heap-growing-percent=0 bin/tollgate.js serve`) or another figure. NODE_OPTIONS
 * cannot carry it (node refuses this V8 flag there).
 */

/** The old generation's limit after a full collection: this much over what it kept. */
export const HEAP_GROWING_PERCENT = 50;

/** True unless node's command line already says how the old generation grows. */
export function setsOldGenerationGrowth(execArgv: readonly string[]): boolean {
  return !execArgv.some((arg) => arg.split("=", 1)[0]!.replaceAll("_", "-") === "--heap-growing-percent");
}

/** Keeps the old generation within HEAP_GROWING_PERCENT of what is live, unless node's command line said otherwise. */
export function keepOldGenerationNearLive(): void {
  if (setsOldGenerationGrowth(process.execArgv)) setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
