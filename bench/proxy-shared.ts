/** What the proxy bench's three processes (orchestrator, load generator, mock upstream) agree on. */

export const MOCK_KEY = "sk-bench-upstream-0123456789abcdef";
/** The snapshot the mock answers with, as OpenAI does; it is in the price catalog, so every call is priced. */
export const MOCK_MODEL = "gpt-4o-mini-2024-07-18";

/** One fixed-rate run of the load generator against one origin. */
export interface Phase {
  origin: string;
  path: string;
  /** The whole Authorization header: the provider key direct, a Tollgate virtual key through the proxy. */
  authorization: string;
  stream: boolean;
  rate: number;
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
