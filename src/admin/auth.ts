import { timingSafeEqual } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import { sendProblem } from "../http/problem.ts";

/** Guards the admin API with the admin bearer token, compared in constant time. */
export function requireAdmin(adminToken: string) {
  const expected = Buffer.from(adminToken);
  return (req: Request, res: Response, next: NextFunction) => {
    const presented = Buffer.from(/^Bearer\s+(\S+)$/i.exec(req.get("authorization") ?? "")?.[1] ?? "");
    if (presented.length === expected.length && timingSafeEqual(presented, expected)) return next();
    sendProblem(res, "unauthorized", "the admin API needs `Authorization: Bearer <TOLLGATE_ADMIN_TOKEN>`");
  };
}
