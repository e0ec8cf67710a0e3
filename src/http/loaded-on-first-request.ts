import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Failure } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { sendProblem } from "./problem.ts";

/*
 * The admin API, the dashboard and the ingest doors are not on the proxy's path: loading them at
 * start cost every gateway their modules' source, code and schemas in memory whether or not anyone
 * asks for them (docs/operations.md, memory). Each is loaded by its first request instead, and
 * every request after that goes straight to it.
 */

type Loaded = { ok: true; handler: RequestHandler } | Failure<"unavailable">;

/** What a load that threw answers: the part's name; the error itself goes to the log. */
export function notLoaded(part: string): Failure<"unavailable"> {
  return { ok: false, kind: "unavailable", message: `${part} could not be loaded; try again, and see the gateway's log` };
}

/**
 * A handler that loads `part` (`load`) at its first request and hands every request to it. The
 * requests that arrive while it loads wait for the same load. A load that fails is logged and
 * answered as `unavailable`, and the next request tries again: a failed import is not kept.
 */
export function loadedOnFirstRequest(part: string, load: () => Promise<RequestHandler>, logger: Logger): RequestHandler {
  let loading: Promise<Loaded> | undefined;
  const loadOnce = (): Promise<Loaded> =>
    // Through a promise: a loader that throws before its first await fails the same way.
    (loading ??= Promise.resolve().then(load).then(
      (handler): Loaded => ({ ok: true, handler }),
      (err: unknown): Loaded => {
        loading = undefined;
        // An import's failure names a module or a file, never a request's contents: the message is kept.
        logger.error({ part, error: (err as Error).name, code: (err as { code?: string }).code, message: (err as Error).message }, "loading a part of the gateway failed");
        return notLoaded(part);
      },
    ));
  return (req: Request, res: Response, next: NextFunction) => {
    loadOnce()
      .then((loaded) => (loaded.ok ? loaded.handler(req, res, next) : sendProblem(res, loaded.kind, loaded.message)))
      // A handler that throws as it starts is express's to answer, as it would be had it been loaded at start.
      .catch(next);
  };
}
