/**
 * Failed sign-in attempts, counted in memory so nobody can guess a secret at will: each client
 * address may fail `perAddress` times in a window, and all addresses together `overall` times.
 * A window opens at its first failure and closes `windowMs` later. Past a limit every attempt
 * (a right one too, or a guess would still be told when it hit) is refused until the window
 * closes. Memory is bounded without any sign-in: an address is remembered only for a failure,
 * failures stop being counted once `overall` is reached, and no window outlives two of the
 * overall one: at most twice `overall` addresses are held.
 *
 * The overall limit would let anyone shut the door on everyone with `overall` wrong guesses, so
 * an address that succeeded within `trustMs` is held to its own limit only. Only someone who
 * holds the secret adds to that list, so it is no memory an outsider controls (and it is capped).
 */

export interface FailureLimits {
  perAddress: number;
  overall: number;
  windowMs: number;
  /** How long an address that succeeded is spared the overall limit. */
  trustMs: number;
}

/** The dashboard's and the admin API's limits on guessing the admin token (and failed OpenID Connect returns). */
export const SIGN_IN_LIMITS: FailureLimits = { perAddress: 10, overall: 100, windowMs: 15 * 60_000, trustMs: 12 * 3_600_000 };

/** Addresses remembered as having succeeded; past it the oldest is forgotten. */
const MAX_TRUSTED = 10_000;

interface Window {
  failures: number;
  closesAt: number;
}

export type Admission = { ok: true } | { ok: false; retryAfterSeconds: number; reason: "address" | "overall" };

export class FailureLimit {
  /** Insertion order is opening order, and every window is as long: the oldest is always first. */
  private readonly byAddress = new Map<string, Window>();
  private all: Window = { failures: 0, closesAt: 0 };
  /** Addresses that succeeded, with when that stops sparing them; in order of their last success. */
  private readonly trusted = new Map<string, number>();

  constructor(
    private readonly limits: FailureLimits,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Whether an attempt from `address` may be tried now. */
  admit(address: string): Admission {
    const now = this.forgetClosed();
    const mine = this.byAddress.get(address);
    if (mine && mine.failures >= this.limits.perAddress) return { ok: false, retryAfterSeconds: secondsUntil(mine.closesAt, now), reason: "address" };
    if (this.all.failures >= this.limits.overall && !((this.trusted.get(address) ?? 0) > now)) return { ok: false, retryAfterSeconds: secondsUntil(this.all.closesAt, now), reason: "overall" };
    return { ok: true };
  }

  /** Counts a failed attempt from `address` (one that was admitted). */
  fail(address: string): void {
    const now = this.forgetClosed();
    if (this.all.failures >= this.limits.overall) return;
    if (this.all.failures === 0) this.all.closesAt = now + this.limits.windowMs;
    this.all.failures++;
    const mine = this.byAddress.get(address);
    if (mine) mine.failures++;
    else this.byAddress.set(address, { failures: 1, closesAt: now + this.limits.windowMs });
  }

  /** Records a success from `address`: it is spared the overall limit for a while. */
  succeed(address: string): void {
    this.trusted.delete(address);
    this.trusted.set(address, this.clock() + this.limits.trustMs);
    if (this.trusted.size > MAX_TRUSTED) this.trusted.delete(this.trusted.keys().next().value!);
  }

  /** Addresses remembered now for their failures. */
  get size(): number {
    return this.byAddress.size;
  }

  private forgetClosed(): number {
    const now = this.clock();
    for (const [address, window] of this.byAddress) {
      if (window.closesAt > now) break;
      this.byAddress.delete(address);
    }
    if (this.all.closesAt <= now) this.all = { failures: 0, closesAt: 0 };
    return now;
  }
}

const secondsUntil = (at: number, now: number) => Math.max(1, Math.ceil((at - now) / 1000));
