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

/**
 * A startup parameter whose only use is its size, sent on every connection postgres.js opens.
 * postgres.js (3.4.x) sends writes under 1 KB from a setImmediate; when a connection closes with
 * such a write pending it cancels the immediate but keeps both it and the bytes, so every later
 * small write on that connection, the next connection's startup message first, is held back: the
 * connection then waits out connect_timeout (10 s by default) and again on each attempt, until
 * 1 KB has piled up. A startup message of 1 KB or more is written at once, which clears that state;
 * if bytes were held back they go first, Postgres refuses the garbled startup and closes, and the
 * next attempt opens cleanly (Postgres logs "invalid length of startup packet" once for it). A
 * dotted name is a placeholder setting Postgres accepts and nothing reads.
 */
export const STARTUP_PADDING = { "tollgate.startup_padding": "0".repeat(1024) };
