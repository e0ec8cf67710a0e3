import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { growthFactor, keepsYoungGenerationSmall, semiSpaceBytes } from "../src/young-generation.ts";

const MODULE = fileURLToPath(new URL("../src/young-generation.ts", import.meta.url));

/**
 * A node process that keeps its young generation small (as `tollgate` does first thing), allocates
 * objects that survive a few collections (as module loading and calls in flight do), lets it grow
 * (as `serve` does once listening) and allocates again: the young generation's size (both
 * semi-spaces, MB) when kept small, after the first work, and after the second.
 */
function youngGeneration(nodeArgs: string[]): { before: number; kept: number; grown: number } {
  const script = `
    const { getHeapSpaceStatistics } = await import("node:v8");
    const size = () => getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size / 2 ** 20;
    const work = () => { const kept = []; for (let i = 0; i < 3e6; i++) { kept.push({ i, s: "x" + i }); if (kept.length > 300000) kept.length = 0; } };
    const { keepYoungGenerationSmall, letYoungGenerationGrow } = await import(${JSON.stringify(MODULE)});
    keepYoungGenerationSmall();
    const before = size();
    work();
    const kept = size();
    letYoungGenerationGrow();
    work();
    console.log(JSON.stringify({ before, kept, grown: size() }));`;
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return JSON.parse(execFileSync(process.execPath, [...nodeArgs, "--import", "tsx", "--input-type=module", "-e", script], { env }).toString());
}

describe("the young generation", () => {
  it("stays at 2 MB at most while kept small, and grows again once let", () => {
    const { before, kept, grown } = youngGeneration([]);
    assert.ok(kept <= Math.max(before, 2), `new space ${before} → ${kept} MB while kept small`);
    assert.ok(grown > kept && grown > 2, `new space ${kept} → ${grown} MB once let grow`);
  });

  it("grows up to the cap `serve` gives, between turns of the event loop, and lets the process exit once stopped", () => {
    const script = `
      const { getHeapSpaceStatistics } = await import("node:v8");
      const size = () => getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size / 2 ** 20;
      const { keepYoungGenerationSmall, letYoungGenerationGrow } = await import(${JSON.stringify(MODULE)});
      keepYoungGenerationSmall();
      const stop = letYoungGenerationGrow(4);
      let largest = 0;
      const kept = [];
      // Calls in flight: each turn allocates well under a semi-space, some of it surviving a while.
      for (let turn = 0; turn < 600; turn++) {
        for (let i = 0; i < 5000; i++) { kept.push({ i, s: "x" + i, a: [i] }); if (kept.length > 200000) kept.length = 0; }
        largest = Math.max(largest, size());
        await new Promise((resolve) => setImmediate(resolve));
      }
      stop();
      console.log(JSON.stringify({ largest }));`;
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    // The timeout fails the test if the observer keeps the process alive after stop().
    const { largest } = JSON.parse(execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { env, timeout: 300_000 }).toString()) as { largest: number };
    // Both semi-spaces: 4 MB each at the cap, against V8's 16 (32 MB) uncapped.
    assert.ok(largest <= 8, `new space reached ${largest} MB with a cap of 4 MB semi-spaces`);
    assert.ok(largest > 4, `new space ${largest} MB: it grew from its start-up size`);
  });

  it("reads one semi-space's capacity whether V8 has both semi-spaces committed or only the active one", () => {
    const MB = 2 ** 20;
    // Figures node 20 reported for 4 MB semi-spaces: both committed, then after a mark-compact that
    // uncommitted the idle one (what once let a 4 MB cap double to 8 MB).
    const active = { space_used_size: 1.95 * MB, space_available_size: 1.98 * MB };
    assert.equal(semiSpaceBytes({ space_size: 8 * MB, ...active }), 4 * MB);
    assert.equal(semiSpaceBytes({ space_size: 4 * MB, ...active }), 4 * MB);
    // V8's shrink to 1 MB semi-spaces after an idle period, before and after the next scavenge.
    assert.equal(semiSpaceBytes({ space_size: 1 * MB, space_used_size: 0, space_available_size: 0.98 * MB }), 1 * MB);
    assert.equal(semiSpaceBytes({ space_size: 2 * MB, space_used_size: 0, space_available_size: 0.98 * MB }), 1 * MB);
  });

  it("doubles while a doubling stays within the cap, and not from there on", () => {
    const MB = 2 ** 20;
    assert.equal(growthFactor(2 * MB, 8), 2);
    assert.equal(growthFactor(4 * MB, 8), 2);
    assert.equal(growthFactor(8 * MB, 8), 1);
    // A capacity V8's own shrink left (1.5 MB doubled twice): 6 MB would double past 8.
    assert.equal(growthFactor(6 * MB, 8), 1);
  });

  it("grows as node's own options say when the operator gives them", () => {
    const { before, kept } = youngGeneration(["--max-semi-space-size=16"]);
    assert.ok(kept > before && kept > 8, `new space ${before} → ${kept} MB`);
  });

  it("is left to the operator's node options, however spelled, and only to those that size it", () => {
    assert.equal(keepsYoungGenerationSmall([], undefined), true);
    assert.equal(keepsYoungGenerationSmall(["--enable-source-maps"], "--max-old-space-size=512"), true);
    assert.equal(keepsYoungGenerationSmall(["--max-semi-space-size=16"], undefined), false);
    assert.equal(keepsYoungGenerationSmall([], "--enable-source-maps  --max_semi_space_size=8"), false);
    assert.equal(keepsYoungGenerationSmall(["--semi-space-growth-factor=4"], ""), false);
    assert.equal(keepsYoungGenerationSmall(["--min-semi-space-size=8"], undefined), false);
  });
});
