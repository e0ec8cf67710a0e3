/** What the proxy bench's three processes (orchestrator, load generator, mock upstream) agree on. */

export const MOCK_KEY = "sk-bench-upstream-0123456789abcdef";
/** The snapshot the mock answers with, as OpenAI does; it is in the price catalog, so every call is priced. */
export const MOCK_MODEL = "gpt-4o-mini-2024-07-18";

/** Where the load goes: the mock itself, Tollgate or Portkey in front of it. */
export interface Target {
  origin: string;
  path: string;
  /** Every request header: the key (the provider key direct, a Tollgate virtual key, Portkey's routing headers). */
  headers: Record<string, string>;
}

/** One fixed-rate, open-loop run of the load generator against one target. */
export interface Phase {
  target: Target;
  stream: boolean;
  rate: number;
  seconds: number;
}

/** One closed-loop run: each connection sends again as soon as it is answered. Non-streamed. */
export interface ClosedLoop {
  target: Target;
  connections: number;
  seconds: number;
}

/** Milliseconds. */
export interface Summary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface PhaseResult {
  /** Requests the schedule called for (rate × seconds); every one was sent. */
  scheduled: number;
  /** Answered 200 with a whole body (streams: ending in `data: [DONE]`). */
  completed: number;
  /** Anything else: another status, a transport error, a cut stream, no answer in time. */
  errors: number;
  firstError: string | undefined;
  /** From the first scheduled send to the last answer. */
  seconds: number;
  /** Send to last body byte, over completed requests. */
  latency: Summary;
  /** Send to first body chunk; streams only. */
  ttfb: Summary | undefined;
  /** How late each request left against its schedule: the generator's own lag. */
  lag: Summary;
}

export interface ClosedResult {
  completed: number;
  errors: number;
  firstError: string | undefined;
  seconds: number;
  /** Completed requests per second. */
  perSecond: number;
  latency: Summary;
}
