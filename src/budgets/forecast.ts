/**
 * End-of-period spend projection. Pure: the spend figures and the clock are arguments.
 *
 * The projection is the spend so far plus the recent run rate over the time left, where the run
 * rate is the spend of the last 7 whole UTC days and today so far (or of the period so far, when
 * it began more recently) divided by that window's length. A recent window rather than the whole
 * period follows a change of pace within a month without being thrown by one busy hour. Before
 * 20 % of the period (at most 7 days) has passed there is too little to go on, and no forecast is
 * made.
 */

export const FORECAST_METHOD =
  "spend so far plus the run rate of the last 7 days (or of the period so far, if shorter) over the time left; made once 20 % of the period, at most 7 days, has passed";

const DAY_MS = 86_400_000;
const RECENT_DAYS = 7;
const MAX_WAIT_MS = 7 * DAY_MS;

interface Window {
  start: Date;
  end: Date;
}

/**
 * Where the run-rate window begins: 7 days before today's UTC midnight, so the window is made of
 * whole day rollups, or the period's start if that is later.
 */
export function recentWindowStart(period: Window, now: Date): Date {
  const midnight = Math.floor(now.getTime() / DAY_MS) * DAY_MS;
  return new Date(Math.max(period.start.getTime(), midnight - RECENT_DAYS * DAY_MS));
}

/** Whether enough of the period has passed for a projection to mean something. */
export function forecastReady(period: Window, now: Date): boolean {
  const length = period.end.getTime() - period.start.getTime();
  const elapsed = now.getTime() - period.start.getTime();
  return elapsed >= Math.min(length / 5, MAX_WAIT_MS) && now < period.end;
}

export interface ForecastInput {
  period: Window;
  now: Date;
  /** pico-USD in the period so far. */
  spend: bigint;
  /** pico-USD since recentWindowStart(period, now). */
  recentSpend: bigint;
}

/** Projected pico-USD at the period's end, or null while it is too early to say. */
export function forecastSpend({ period, now, spend, recentSpend }: ForecastInput): bigint | null {
  if (!forecastReady(period, now)) return null;
  const windowMs = BigInt(now.getTime() - recentWindowStart(period, now).getTime());
  const leftMs = BigInt(period.end.getTime() - now.getTime());
  if (windowMs <= 0n) return null;
  return spend + (recentSpend * leftMs) / windowMs;
}

export interface RunOutInput extends ForecastInput {
  /** pico-USD the budget allows. */
  amount: bigint;
}

/**
 * When the budget's amount is reached at the recent run rate (the forecast's), or null when it
 * will not be within the period, is already reached, or it is too early to say.
 */
export function runOutAt({ period, now, spend, recentSpend, amount }: RunOutInput): Date | null {
  if (!forecastReady(period, now) || spend >= amount || recentSpend <= 0n) return null;
  const windowMs = BigInt(now.getTime() - recentWindowStart(period, now).getTime());
  if (windowMs <= 0n) return null;
  const at = now.getTime() + Number(((amount - spend) * windowMs) / recentSpend);
  return at < period.end.getTime() ? new Date(at) : null;
}
