import { Pool } from "undici";
import { percentile } from "./postgres.ts";
import type { Phase, PhaseResult, Summary } from "./proxy-shared.ts";

/**
 * The proxy bench's load generator, in a process of its own: open loop at a fixed rate, so each
 * request leaves on its schedule whether or not earlier ones have been answered (a slow answer
 * cannot hold back the requests behind it and hide its own latency). Latency runs from the moment
 * a request is handed to undici; how late that moment was against the schedule is reported
 * beside it, so a generator that falls behind shows rather than flattering the figures.
 *
 * Forked by bench/proxy.ts: receives a Phase, answers with its PhaseResult.
 */

const CONNECTIONS = 256;
/** Past the last send, how long answers are waited for before the rest count as errors. */
const SETTLE_MS = 15_000;

const pools = new Map<string, Pool>();
// Kept across phases, so every phase after the warm-up starts on warm keep-alive connections.
const poolFor = (origin: string): Pool => {
  let pool = pools.get(origin);
  if (!pool) pools.set(origin, (pool = new Pool(origin, { connections: CONNECTIONS, keepAliveTimeout: 120_000 })));
  return pool;
};

const requestBody = (stream: boolean) =>
  JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Say hello in five words." }], max_tokens: 16, ...(stream ? { stream: true } : {}) });

function summarise(values: Float64Array): Summary {
  const sorted = Array.from(values.filter((v) => !Number.isNaN(v))).sort((a, b) => a - b);
  if (sorted.length === 0) return { p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return {
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1]!),
    mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
}

async function run(phase: Phase): Promise<PhaseResult> {
  const pool = poolFor(phase.origin);
  const body = requestBody(phase.stream);
  const headers = { authorization: phase.authorization, "content-type": "application/json" };
  const total = Math.round(phase.rate * phase.seconds);
  const interval = 1000 / phase.rate;
  const latency = new Float64Array(total).fill(NaN);
  const ttfb = new Float64Array(total).fill(NaN);
  const lag = new Float64Array(total);
  let errors = 0;
  let firstError: string | undefined;
  let outstanding = 0;
  let lastAnswer = 0;
  let settled: () => void = () => {};

  const finish = (i: number, sent: number, problem: string | undefined) => {
    lastAnswer = performance.now();
    if (problem === undefined) latency[i] = lastAnswer - sent;
    else {
      ttfb[i] = NaN;
      errors++;
      firstError ??= problem;
    }
    if (--outstanding === 0) settled();
  };

  const fire = (i: number, scheduled: number) => {
    const sent = performance.now();
    lag[i] = sent - scheduled;
    outstanding++;
    pool.request({ path: phase.path, method: "POST", headers, body, headersTimeout: SETTLE_MS, bodyTimeout: SETTLE_MS }).then(
      (res) => {
        let tail = "";
        res.body.on("data", (chunk: Buffer) => {
          if (Number.isNaN(ttfb[i]!)) ttfb[i] = performance.now() - sent;
          tail = (tail + chunk.toString("latin1")).slice(-64);
        });
        res.body.on("end", () => {
          if (res.statusCode !== 200) finish(i, sent, `status ${res.statusCode}: ${tail}`);
          else if (phase.stream && !tail.endsWith("data: [DONE]\n\n")) finish(i, sent, "stream did not end with [DONE]");
          else finish(i, sent, undefined);
        });
        res.body.on("error", (err: Error) => finish(i, sent, err.message));
      },
      (err: Error) => finish(i, sent, err.message),
    );
  };

  const start = performance.now() + 5;
  let next = 0;
  await new Promise<void>((dispatched) => {
    const tick = () => {
      const now = performance.now();
      for (; next < total && start + next * interval <= now; next++) fire(next, start + next * interval);
      if (next < total) setTimeout(tick, Math.max(0, start + next * interval - performance.now()));
      else dispatched();
    };
    tick();
  });
  if (outstanding > 0) {
    const unanswered = await Promise.race([
      new Promise<number>((resolve) => (settled = () => resolve(0))),
      new Promise<number>((resolve) => setTimeout(() => resolve(outstanding), SETTLE_MS)),
    ]);
    if (unanswered > 0) {
      errors += unanswered;
      firstError ??= `${unanswered} requests unanswered ${SETTLE_MS} ms after the last send`;
    }
  }

  const completed = latency.filter((v) => !Number.isNaN(v)).length;
  return {
    scheduled: total,
    completed,
    errors,
    firstError,
    seconds: Math.round(((Math.max(lastAnswer, start) - start) / 1000) * 100) / 100,
    latency: summarise(latency),
    ttfb: phase.stream ? summarise(ttfb) : undefined,
    lag: summarise(lag),
  };
}

process.on("message", (phase: Phase) => {
  run(phase).then(
    (result) => process.send?.(result),
    (err: unknown) => process.send?.({ failed: String(err) }),
  );
});
process.on("disconnect", () => process.exit(0));
