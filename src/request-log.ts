import { randomUUID } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import type { Logger } from "./logger.ts";

/** Gives every request an id (the caller's `x-request-id` if sane) and logs one line when it ends. */
export function requestLog(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const given = req.get("x-request-id");
    const id = given && /^[\w.:-]{1,100}$/.test(given) ? given : randomUUID();
    res.locals.requestId = id;
    res.setHeader("x-request-id", id);
    const started = performance.now();
    res.on("finish", () => {
      // The path only: query strings and bodies can carry things that must not reach logs.
      logger.info({ reqId: id, method: req.method, path: req.originalUrl.split("?")[0], status: res.statusCode, ms: Math.round(performance.now() - started) }, "request");
    });
    next();
  };
}
