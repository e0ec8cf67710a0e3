/** The longest a pool connection waits before its next attempt to reach Postgres, in seconds. */
export const MAX_RECONNECT_DELAY_SECONDS = 1;

/**
 * postgres.js's `backoff`: how long a connection waits, after `retries` failed attempts in a row
 * across the pool, before it tries again. Its own default grows as 3^retries / 100 s up to 20 s, so
 * a pool that met a refusing Postgres a dozen times (a few seconds of outage under traffic) waited
 * 10-20 s after Postgres was back before it tried again, and nothing was recorded meanwhile. A
 * connection is only attempted for a query waiting on it, and the journal's replay already paces
 * those during an outage: here the wait doubles from 50 ms to a second, halved at random up to half
 * so the pools of several workers do not knock in step.
 */
export function reconnectDelaySeconds(retries: number, random = Math.random()): number {
  return (0.5 + random / 2) * Math.min(0.05 * 2 ** retries, MAX_RECONNECT_DELAY_SECONDS);
}
