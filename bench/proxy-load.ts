import { Client } from "undici";
import { percentile } from "./postgres.ts";
import type { ClosedLoop, ClosedResult, Phase, PhaseResult, Summary, Target } from "./proxy-shared.ts";

/**
 * The proxy bench's load generator, in a process of its own.
 *
 * Open loop (a Phase): a fixed schedule per connection. LANES connections each send every
 * LANES / rate seconds, lane i offset by i / rate, so together they send evenly at the rate and
 * no two lanes fire in lockstep (a generator whose workers all wake together turns a rate into
 * bursts and measures the burst). A request leaves on its schedule whether or not earlier ones
 * were answered; on a lane still busy it waits in that lane's queue, and the wait counts in its
 * latency. Latency runs from the moment a request is handed to undici; how late that moment was
 * against the schedule is reported beside it, so a generator that falls behind shows.
 *
 * Closed loop (a ClosedLoop): `connections` lanes each send the next request as soon as the last
 * is answered, for a fixed time: the most the target answers.
 *
 * Forked by bench/proxy.ts: receives a Phase or ClosedLoop, answers with its result.
 */

const LANES = 64;
/** Past the last send, how long answers are waited for before the rest count as errors. */
const SETTLE_MS = 10_000;

const lanes = new Map<string, Client[]>();
// Kept across phases, so every phase after the warm-up starts on warm keep-alive connections.
function lanesFor(origin: string, count: number): Client[] {
  let list = lanes.get(origin);
  if (!list) lanes.set(origin, (list = []));
  while (list.length < count) list.push(new Client(origin, { pipelining: 1, keepAliveTimeout: 120_000 }));
  return list;
}

/**
 * After a phase gave up on requests (cancelled them), the origin's connections are closed and
 * made anew: a cancelled request can leave a connection that answers nothing more.
 */
function renewLanes(origin: string): void {
  for (const client of lanes.get(origin) ?? []) void client.destroy().catch(() => undefined);
  lanes.delete(origin);
}

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

/**
 * One request; calls back with the time to its first body chunk and a problem (undefined when it was
 * answered whole). No AbortSignal: undici adds an abort listener per request to the signal it is
 * given, so one signal shared by a phase's hundreds of outstanding requests set off Node's
 * MaxListenersExceededWarning (listeners removed as requests end: no leak). Requests given up on are
 * failed by destroying their lanes (renewLanes) instead.
 */
function send(client: Client, target: Target, stream: boolean, body: string, done: (firstByte: number, problem: string | undefined) => void): void {
  const sent = performance.now();
  let firstByte = NaN;
  client.request({ path: target.path, method: "POST", headers: target.headers, body, headersTimeout: SETTLE_MS, bodyTimeout: SETTLE_MS }).then(
    (res) => {
      let tail = "";
      res.body.on("data", (chunk: Buffer) => {
        if (Number.isNaN(firstByte)) firstByte = performance.now() - sent;
        tail = (tail + chunk.toString("latin1")).slice(-64);
      });
      res.body.on("end", () => {
        if (res.statusCode !== 200) done(firstByte, `status ${res.statusCode}: ${tail}`);
        else if (stream && !tail.endsWith("data: [DONE]\n\n")) done(firstByte, "stream did not end with [DONE]");
        else done(firstByte, undefined);
      });
      res.body.on("error", (err: Error) => done(firstByte, err.message));
    },
    (err: Error) => done(firstByte, err.message),
  );
}

async function openLoop(phase: Phase): Promise<PhaseResult> {
  const clients = lanesFor(phase.target.origin, LANES);
  const body = requestBody(phase.stream);
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
  // Requests still queued or unanswered when the phase gives up on them are cancelled (their lanes
  // destroyed), so they cannot hold the next phase's lanes.
  let over = false;

  // Request n is lane n mod LANES's (n div LANES)-th: each lane keeps its own fixed period.
  const fire = (n: number, scheduled: number) => {
    const sent = performance.now();
    lag[n] = sent - scheduled;
    outstanding++;
    send(clients[n % LANES]!, phase.target, phase.stream, body, (firstByte, problem) => {
      if (over) return;
      lastAnswer = performance.now();
      if (problem === undefined) {
        latency[n] = lastAnswer - sent;
        ttfb[n] = firstByte;
      } else {
        errors++;
        firstError ??= problem;
      }
      if (--outstanding === 0) settled();
    });
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
      over = true;
      renewLanes(phase.target.origin);
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

async function closedLoop(loop: ClosedLoop): Promise<ClosedResult> {
  const clients = lanesFor(loop.target.origin, loop.connections);
  const body = requestBody(false);
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const until = started + loop.seconds * 1000;
  // An answer still awaited SETTLE_MS after the end is cancelled (its lane destroyed) and counted as an error.
  const timer = setTimeout(() => renewLanes(loop.target.origin), loop.seconds * 1000 + SETTLE_MS);
  await Promise.all(
    clients.slice(0, loop.connections).map(
      (client) =>
        new Promise<void>((laneDone) => {
          const again = () => {
            if (performance.now() >= until) return laneDone();
            const sent = performance.now();
            send(client, loop.target, false, body, (_firstByte, problem) => {
              if (problem === undefined) latencies.push(performance.now() - sent);
              else {
                errors++;
                firstError ??= problem;
              }
              again();
            });
          };
          again();
        }),
    ),
  );
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  return {
    completed: latencies.length,
    errors,
    firstError,
    seconds: Math.round(seconds * 100) / 100,
    perSecond: Math.round(latencies.length / seconds),
    latency: summarise(Float64Array.from(latencies)),
  };
}

process.on("message", (message: Phase | ClosedLoop) => {
  const work = "connections" in message ? closedLoop(message) : openLoop(message);
  work.then(
    (result) => process.send?.(result),
    (err: unknown) => process.send?.({ failed: String(err) }),
  );
});
process.on("disconnect", () => process.exit(0));
