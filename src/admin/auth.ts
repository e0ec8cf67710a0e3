import { createHash, timingSafeEqual } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import type { Admission, FailureLimit } from "../http/failure-limit.ts";
import { sendProblem } from "../http/problem.ts";

const digest = (text: string) => createHash("sha256").update(text).digest();

/** Whether `presented` is the secret, in time that depends on neither (their lengths included: both are hashed first). */
export function sameSecret(presented: string, secret: string): boolean {
  return timingSafeEqual(digest(presented), digest(secret));
}

/** What a refused guesser is told: how long to wait, and why. */
export function tooManyFailures(refused: Exclude<Admission, { ok: true }>): string {
  const minutes = Math.ceil(refused.retryAfterSeconds / 60);
  const from = refused.reason === "address" ? "from this address" : "at this gateway";
  return `too many failed sign-ins ${from}; try again in ${minutes} minute${minutes === 1 ? "" : "s"}`;
}

/**
 * Guards the admin API with the admin bearer token, compared in constant time. A request that
 * presents a wrong token counts against `failures`, the same limit as the dashboard's sign-in:
 * it is one secret, so guessing it is limited at every door it opens.
 */
export function requireAdmin(adminToken: string, failures: FailureLimit) {
  return (req: Request, res: Response, next: NextFunction) => {
    const address = req.socket.remoteAddress ?? "";
    const admitted = failures.admit(address);
    if (!admitted.ok) {
      res.set("retry-after", String(admitted.retryAfterSeconds));
      return sendProblem(res, "too_many_requests", tooManyFailures(admitted));
    }
    const presented = /^Bearer\s+(\S+)$/i.exec(req.get("authorization") ?? "")?.[1];
    if (presented !== undefined && sameSecret(presented, adminToken)) {
      failures.succeed(address);
      return next();
    }
    // No token at all is no guess.
    if (presented !== undefined) failures.fail(address);
    sendProblem(res, "unauthorized", "the admin API needs `Authorization: Bearer <TOLLGATE_ADMIN_TOKEN>`");
  };
}
