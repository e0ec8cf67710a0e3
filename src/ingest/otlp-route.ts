import { type Request, type Response, Router } from "express";
import { sendProblem } from "../problem.ts";
import { spansToEvents } from "./otlp.ts";
import { bindToSender } from "./usage-item.ts";
import { type IngestDeps, authenticateSender, rawUsageBody } from "./usage-route.ts";

/** OTLP/HTTP JSON traces: GenAI spans become usage events; other spans are ignored. */
export function otlpRouter(deps: IngestDeps): Router {
  const router = Router();
  router.post("/v1/traces", rawUsageBody, async (req: Request, res: Response) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const sender = await authenticateSender(req, body, deps);
    if ("error" in sender) return sendProblem(res, 401, "Unauthorized", sender.error);
    const type = (req.get("content-type") ?? "").split(";")[0]!.trim();
    if (type !== "application/json")
      return sendProblem(res, 415, "Unsupported Media Type", "send OTLP/HTTP JSON (application/json); the protobuf encoding is not accepted");
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch (err) {
      return sendProblem(res, 400, "Bad Request", `body is not JSON: ${(err as Error).message}`);
    }
    const { events, rejectedSpans, errorMessage } = spansToEvents(parsed, { source: sender.source });
    if (errorMessage && rejectedSpans === 0 && events.length === 0) return sendProblem(res, 400, "Bad Request", errorMessage);
    try {
      if (events.length > 0) await deps.recorder.record(events.map((e) => bindToSender(e, sender)));
    } catch {
      res.set("retry-after", "5");
      return sendProblem(res, 503, "Storage unavailable", "the ledger could not be written; retry the export");
    }
    res.json(rejectedSpans > 0 ? { partialSuccess: { rejectedSpans: String(rejectedSpans), errorMessage } } : {});
  });
  return router;
}
