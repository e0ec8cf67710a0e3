import { setFlagsFromString } from "node:v8";

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
 */

/** Node options that size the young generation: when the operator gave one, V8 grows it as they said. */
const SIZING = ["--max-semi-space-size", "--min-semi-space-size", "--semi-space-growth-factor", "--max-heap-size"];
/** V8's default, restored once start-up is over. */
const V8_GROWTH_FACTOR = 2;

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

/** Start-up is over: the young generation grows with the load again, as V8 grows it by default. */
export function letYoungGenerationGrow(): void {
  if (!keptSmall) return;
  setFlagsFromString(`--semi-space-growth-factor=${V8_GROWTH_FACTOR}`);
  keptSmall = false;
}
