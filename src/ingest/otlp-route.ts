import { type Request, type Response, Router } from "express";
import { sendProblem } from "../http/problem.ts";
import { spansToEvents } from "./otlp.ts";
import { bindToSender } from "./usage-item.ts";
import { type IngestDeps, authenticateSender, rawUsageBody } from "./usage-route.ts";

/** OTLP/HTTP JSON traces: GenAI spans become usage events; other spans are ignored. */
export function otlpRouter(deps: IngestDeps): Router {
  const router = Router();
  router.post("/v1/traces", rawUsageBody, async (req: Request, res: Response) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const sender = await authenticateSender(req, body, deps);
    if ("error" in sender) return sendProblem(res, "unauthorized", sender.error);
    const type = (req.get("content-type") ?? "").split(";")[0]!.trim();
    if (type !== "application/json")
      return sendProblem(res, "unsupported_media_type", "send OTLP/HTTP JSON (application/json); the protobuf encoding is not accepted");
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch (err) {
      return sendProblem(res, "invalid", `body is not JSON: ${(err as Error).message}`);
    }
    const mapped = spansToEvents(parsed, { source: sender.source, now: new Date() });
    if (mapped.errorMessage && mapped.rejectedSpans === 0 && mapped.events.length === 0) return sendProblem(res, "invalid", mapped.errorMessage);
    // A span the ledger cannot store is rejected like any bad span, not retried by the exporter forever.
    const built = mapped.events.map((e) => deps.recorder.builder.build(bindToSender(e, sender)));
    const unstorable = built.flatMap((b) => (b.ok ? [] : [`span ${JSON.stringify(b.seen.id)}: ${b.reason}`]));
    const events = built.flatMap((b) => (b.ok ? [b.event] : []));
    const rejectedSpans = mapped.rejectedSpans + unstorable.length;
    const errorMessage = [mapped.errorMessage, ...unstorable].filter(Boolean).join("; ");
    try {
      if (events.length > 0) await deps.recorder.record(events);
    } catch {
      res.set("retry-after", "5");
      return sendProblem(res, "storage_unavailable", "the ledger could not be written; retry the export");
    }
    res.json(rejectedSpans > 0 ? { partialSuccess: { rejectedSpans: String(rejectedSpans), errorMessage } } : {});
  });
  return router;
}
