// Loaded into the gateway by the memory bench (`node --import ./bench/memory-probe.mjs`), never by
// Tollgate itself: every SAMPLE_MS it appends V8's own view of the process's memory to the file
// named by BENCH_MEMORY_PROBE, one JSON line per sample, for the bench to set beside /proc's RSS.
import { appendFileSync } from "node:fs";
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";

const SAMPLE_MS = 250;
const file = process.env.BENCH_MEMORY_PROBE;
const mb = (bytes) => Math.round((bytes / 2 ** 20) * 10) / 10;

function sample() {
  const m = process.memoryUsage();
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, { size: mb(s.space_size), used: mb(s.space_used_size), physical: mb(s.physical_space_size) }]));
  appendFileSync(file, `${JSON.stringify({ t: Date.now(), rss: mb(m.rss), heapTotal: mb(m.heapTotal), heapUsed: mb(m.heapUsed), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers), spaces })}\n`);
}

// V8 flags set at run time, before the gateway's modules load (BENCH_V8_FLAGS, space-separated):
// some, like --semi-space-growth-factor, act only this way, not from the command line.
for (const flag of (process.env.BENCH_V8_FLAGS ?? "").split(" ").filter(Boolean)) setFlagsFromString(flag);

if (file) {
  sample();
  setInterval(sample, SAMPLE_MS).unref();
}

