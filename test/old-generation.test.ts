import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { HEAP_GROWING_PERCENT, setsOldGenerationGrowth } from "../src/old-generation.ts";

const MODULE = fileURLToPath(new URL("../src/old-generation.ts", import.meta.url));

/**
 * A node process that sets the old generation's growth as `tollgate` does first thing, keeps
 * ~20 MB live and then churns objects that outlive two scavenges (promoted, then garbage), as
 * calls under load do: the largest old space seen, MB, what a full collection then keeps, and the
 * young generation's size (V8 adds one semi-space to the limit).
 */
function oldGeneration(nodeArgs: string[]): { peak: number; live: number; young: number } {
  const script = `
    const { getHeapSpaceStatistics } = await import("node:v8");
    const old = () => getHeapSpaceStatistics().find((s) => s.space_name === "old_space");
    const { keepOldGenerationNearLive } = await import(${JSON.stringify(MODULE)});
    keepOldGenerationNearLive();
    const live = [];
    for (let i = 0; i < 150000; i++) live.push({ i, s: "live" + i, a: [i, i + 1] });
    const ring = new Array(60000);
    let peak = 0;
    for (let i = 0; i < 2.5e6; i++) {
      ring[i % ring.length] = { i, s: "x" + i, a: [i] };
      if (i % 5000 === 0) peak = Math.max(peak, old().space_size);
    }
    globalThis.gc();
    console.log(JSON.stringify({ peak: peak / 2 ** 20, live: old().space_used_size / 2 ** 20, kept: live.length + ring.length, young: getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size / 2 ** 20 }));`;
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  // Marking neither incremental nor concurrent: a full collection then starts when the old
  // generation reaches its limit, not when marking begun earlier happens to end (sooner on a
  // loaded machine, whose slowed mutator promotes less meanwhile), so the peak measures the limit.
  const gc = ["--expose-gc", "--no-incremental-marking", "--no-concurrent-marking"];
  return JSON.parse(execFileSync(process.execPath, [...gc, ...nodeArgs, "--import", "tsx", "--input-type=module", "-e", script], { env }).toString());
}

describe("the old generation", () => {
  // V8's own policy moves with how fast objects are promoted, so the operator's figure here is a
  // fixed one: 4×, V8's own ceiling on this machine.
  it(`peaks near what is live (${HEAP_GROWING_PERCENT} % over it, plus a semi-space), and as node's command line says when it says`, () => {
    const near = oldGeneration([]);
    const operators = oldGeneration(["--heap-growing-percent=300"]);
    assert.ok(near.peak <= near.live * (1 + HEAP_GROWING_PERCENT / 100) + near.young + 8, `old space peaked at ${near.peak.toFixed(1)} MB with ${near.live.toFixed(1)} MB live`);
    assert.ok(operators.peak > near.peak * 1.5, `with --heap-growing-percent=300: ${operators.peak.toFixed(1)} MB; near live: ${near.peak.toFixed(1)} MB`);
  });

  it("is left to node's command line when it says how the old generation grows, however spelled", () => {
    assert.equal(setsOldGenerationGrowth([]), true);
    assert.equal(setsOldGenerationGrowth(["--max-old-space-size=512", "--enable-source-maps"]), true);
    assert.equal(setsOldGenerationGrowth(["--heap-growing-percent=0"]), false);
    assert.equal(setsOldGenerationGrowth(["--heap_growing_percent=100"]), false);
  });
});
