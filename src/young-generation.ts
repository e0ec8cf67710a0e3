import { PerformanceObserver } from "node:perf_hooks";
import { getHeapSpaceStatistics, type HeapSpaceInfo, setFlagsFromString } from "node:v8";

/*
 * V8's young generation starts at 1 MB semi-spaces and doubles whenever many objects survive a
 * collection, up to 16 MB semi-spaces: 32 MB that start-up's module loading alone fills, and that
 * V8 then keeps resident while the gateway idles. Measured with `npm run bench:memory`, it was the
 * largest part of an idle gateway's RSS after the node binary itself.
 *
 * `--semi-space-growth-factor=1`, set at run time before the modules load, keeps it at its smallest
 * (2 MB at most, measured) through start-up; once serving, V8's own factor (2) lets it grow with the
 * calls in flight, as before. (`--max-semi-space-size` acts only on node's command line, which `tollgate` does not
 * own; the growth factor is read at each resize, so it acts from inside the process.) An operator
 * who sizes the young generation with node's own options keeps V8's behaviour under them throughout.
 *
 * Under load V8 would then grow it to 16 MB semi-spaces (32 MB resident, kept while the load lasts);
 * `serve` stops the growth at SERVING_SEMI_SPACE_MB instead, which is what `--max-semi-space-size=8`
 * does but without filling it at start-up. The same factor does it: after each collection, V8's 2
 * while one more doubling stays within the cap, 1 from there on (V8 also shrinks it when the load
 * stops).
 * The factor is set between turns of the event loop, so one synchronous task that allocates more
 * than a semi-space (collections back to back) can take the young generation one growth step past
 * the cap before it is read back. Measured with `npm run bench:memory`
 * (docs/operations.md, memory): the RSS peak under the proxy load, and CPU per call, beside V8's 16.
 */

/** Node options that size the young generation: when the operator gave one, V8 grows it as they said. */
const SIZING = ["--max-semi-space-size", "--min-semi-space-size", "--semi-space-growth-factor", "--max-heap-size"];
/** V8's default, restored once start-up is over. */
const V8_GROWTH_FACTOR = 2;
/** The largest semi-space a serving gateway's young generation grows to, MB (V8's own limit is 16). */
export const SERVING_SEMI_SPACE_MB = 8;

/** True unless the process's node options (command line or NODE_OPTIONS) already size the young generation. */
export function keepsYoungGenerationSmall(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  // V8 takes `--max_semi_space_size` as well as `--max-semi-space-size`.
  const name = (arg: string) => arg.split("=", 1)[0]!.replaceAll("_", "-");
  return ![...execArgv, ...(nodeOptions ?? "").split(/\s+/)].some((arg) => SIZING.includes(name(arg)));
}

let keptSmall = false;

/** Keeps the young generation at its smallest until `letYoungGenerationGrow`, unless node's options size it. */
export function keepYoungGenerationSmall(): void {
  if (!keepsYoungGenerationSmall(process.execArgv, process.env.NODE_OPTIONS)) return;
  setFlagsFromString("--semi-space-growth-factor=1");
  keptSmall = true;
}

/** What V8 reports of the young generation: committed bytes, and what the active semi-space holds and has free. */
export type NewSpaceStatistics = Pick<HeapSpaceInfo, "space_size" | "space_used_size" | "space_available_size">;

const newSpaceStatistics = (): NewSpaceStatistics | undefined => getHeapSpaceStatistics().find((s) => s.space_name === "new_space");

/**
 * One semi-space's capacity, bytes. V8 reports the young generation's committed memory: both
 * semi-spaces, or only the active one after a mark-compact that found the allocation rate low and
 * uncommitted the idle one (the next scavenge commits it again, at the same capacity). Read as both,
 * that halved figure once let the growth factor back to 2 just before a scavenge doubled a young
 * generation already at the cap. The active semi-space's used and free bytes (its capacity less the
 * unused end of the current allocation buffer) tell which of the two the committed figure is.
 */
export function semiSpaceBytes(stats: NewSpaceStatistics): number {
  const active = stats.space_used_size + stats.space_available_size;
  return stats.space_size >= 1.5 * active ? stats.space_size / 2 : stats.space_size;
}

/**
 * V8's growth factor for the young generation's next resize: its own (doubling) while one doubling
 * stays within `capMb` semi-spaces, none from there on. Shrinks V8 makes on its own can leave a
 * capacity that is not a power of two; doubling never takes such a one past the cap either.
 */
export function growthFactor(semiBytes: number, capMb: number): number {
  return V8_GROWTH_FACTOR * semiBytes <= capMb * 2 ** 20 ? V8_GROWTH_FACTOR : 1;
}

/**
 * From now on and after each collection: V8's growth factor while a doubling stays within `capMb`
 * semi-spaces, none from there on. Returns what stops it: a `gc` observer keeps node's event loop alive.
 */
function capYoungGeneration(capMb: number): () => void {
  let factor: number | undefined;
  const adjust = () => {
    const stats = newSpaceStatistics();
    if (!stats) return;
    const wanted = growthFactor(semiSpaceBytes(stats), capMb);
    if (wanted === factor) return;
    factor = wanted;
    setFlagsFromString(`--semi-space-growth-factor=${factor}`);
  };
  adjust();
  const observer = new PerformanceObserver(adjust);
  observer.observe({ entryTypes: ["gc"] });
  return () => observer.disconnect();
}

/**
 * Start-up is over: the young generation grows with the load again, as V8 grows it by default, or
 * up to `capMb` semi-spaces when given (`serve`, which calls what this returns as it stops).
 */
export function letYoungGenerationGrow(capMb?: number): () => void {
  if (!keptSmall) return () => {};
  keptSmall = false;
  if (capMb !== undefined) return capYoungGeneration(capMb);
  setFlagsFromString(`--semi-space-growth-factor=${V8_GROWTH_FACTOR}`);
  return () => {};
}
