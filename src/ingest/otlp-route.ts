import { type Request, type Response, Router } from "express";
import { ERROR_KINDS, type ErrorKind } from "../errors.ts";
import { textOf } from "../http/charset.ts";
import { spansToEvents } from "./otlp.ts";
import { type PartialSuccess, decodeTraceRequest, encodeStatus, encodeTraceResponse } from "./otlp-protobuf.ts";
import { authenticatedBody, setRefusalHeaders } from "./sender-auth.ts";
import { bindToSender } from "./usage-item.ts";
import type { IngestDeps } from "./usage-route.ts";

/** OTLP/HTTP's two encodings; an answer is sent in the encoding of its request. */
type Encoding = "protobuf" | "json";

const ENCODINGS: Readonly<Record<string, Encoding>> = { "application/x-protobuf": "protobuf", "application/json": "json" };

/** The gRPC status code OTLP's `google.rpc.Status` carries for each kind of error. */
const GRPC_CODES: Partial<Record<ErrorKind, number>> = {
  invalid: 3, // INVALID_ARGUMENT
  unsupported_media_type: 3,
  unauthorized: 16, // UNAUTHENTICATED
  too_large: 8, // RESOURCE_EXHAUSTED
  storage_unavailable: 14, // UNAVAILABLE
  unavailable: 14,
};

/** OTLP/HTTP failures are a `google.rpc.Status` (OTLP specification, "Failures"), with the kind's HTTP status. */
function sendStatus(res: Response, encoding: Encoding, kind: ErrorKind, message: string): void {
  const code = GRPC_CODES[kind] ?? 13; // INTERNAL
  res.status(ERROR_KINDS[kind].status);
  if (encoding === "protobuf") res.type("application/x-protobuf").send(Buffer.from(encodeStatus(code, message)));
  else res.json({ code, message });
}

function sendResponse(res: Response, encoding: Encoding, partial: PartialSuccess | undefined): void {
  if (encoding === "protobuf") res.type("application/x-protobuf").send(Buffer.from(encodeTraceResponse(partial)));
  // proto3 JSON writes int64 as a string.
  else res.json(partial ? { partialSuccess: { rejectedSpans: String(partial.rejectedSpans), errorMessage: partial.errorMessage } } : {});
}

function parse(encoding: Encoding, body: Buffer, contentType: string | undefined): { ok: true; value: unknown } | { ok: false; kind: ErrorKind; message: string } {
  if (encoding === "protobuf") {
    const decoded = decodeTraceRequest(body);
    return decoded.ok ? decoded : { ok: false, kind: "invalid", message: decoded.message };
  }
  const text = textOf(body, contentType);
  if (!text.ok) return text;
  try {
    return { ok: true, value: JSON.parse(text.text) };
  } catch (err) {
    return { ok: false, kind: "invalid", message: `body is not JSON: ${(err as Error).message}` };
  }
}

/** OTLP/HTTP traces, protobuf or JSON: GenAI spans become usage events; other spans are ignored. */
export function otlpRouter(deps: IngestDeps): Router {
  const router = Router();
  router.post("/v1/traces", async (req: Request, res: Response) => {
    const contentType = req.get("content-type");
    const encoding = ENCODINGS[(contentType ?? "").split(";")[0]!.trim().toLowerCase()];
    // The encoding is known before anything is read, so even a refusal is in the sender's own.
    if (!encoding) return sendStatus(res, "json", "unsupported_media_type", "send OTLP/HTTP protobuf (application/x-protobuf) or JSON (application/json)");
    const auth = await authenticatedBody(req, deps);
    if (!auth.ok) {
      if (auth.kind === "aborted") return;
      setRefusalHeaders(res, auth);
      return sendStatus(res, encoding, auth.kind, auth.message);
    }
    const parsed = parse(encoding, auth.body, contentType);
    if (!parsed.ok) return sendStatus(res, encoding, parsed.kind, parsed.message);
    const mapped = spansToEvents(parsed.value, { source: auth.sender.source, now: new Date() });
    if (mapped.errorMessage && mapped.rejectedSpans === 0 && mapped.events.length === 0) return sendStatus(res, encoding, "invalid", mapped.errorMessage);
    // A span the ledger cannot store is rejected like any bad span, not retried by the exporter forever.
    const built = mapped.events.map((e) => deps.recorder.builder.build(bindToSender(e, auth.sender)));
    const unstorable = built.flatMap((b) => (b.ok ? [] : [`span ${JSON.stringify(b.seen.id)}: ${b.reason}`]));
    const events = built.flatMap((b) => (b.ok ? [b.event] : []));
    const rejectedSpans = mapped.rejectedSpans + unstorable.length;
    const errorMessage = [mapped.errorMessage, ...unstorable].filter(Boolean).join("; ");
    try {
      if (events.length > 0) await deps.recorder.record(events);
    } catch {
      res.set("retry-after", "5");
      return sendStatus(res, encoding, "storage_unavailable", "the ledger could not be written; retry the export");
    }
    sendResponse(res, encoding, rejectedSpans > 0 ? { rejectedSpans, errorMessage } : undefined);
  });
  return router;
}
