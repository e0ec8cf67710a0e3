import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type protobuf from "protobufjs";

/*
 * OTLP's protobuf encoding, read and written by protobufjs from the OpenTelemetry project's own
 * .proto files (proto/ at the repository root): nothing of the wire format is written by hand here.
 */

const PROTO_DIR = fileURLToPath(new URL("../../proto/", import.meta.url));

interface Messages {
  request: protobuf.Type;
  response: protobuf.Type;
  status: protobuf.Type;
}

let loaded: Messages | undefined;

/**
 * Parsed on first use, so a gateway that never sees protobuf never pays for it: protobufjs itself
 * is required here too (it is CommonJS, so synchronously), not at start-up.
 */
function messages(): Messages {
  if (loaded) return loaded;
  const { Root } = createRequire(import.meta.url)("protobufjs") as typeof protobuf;
  const root = new Root();
  root.resolvePath = (_origin, target) => (target.startsWith("google/protobuf/") ? target : PROTO_DIR + target);
  root.loadSync(["opentelemetry/proto/collector/trace/v1/trace_service.proto", "google/rpc/status.proto"]);
  loaded = {
    request: root.lookupType("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"),
    response: root.lookupType("opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse"),
    status: root.lookupType("google.rpc.Status"),
  };
  return loaded;
}

type Json = Record<string, unknown>;

const hex = (bytes: unknown): unknown => (bytes instanceof Uint8Array ? Buffer.from(bytes).toString("hex") : bytes);

/**
 * OTLP/JSON writes trace and span ids as hex where the generic protobuf JSON mapping would write
 * base64; the spans are turned into that form so one reader serves both encodings.
 */
function withHexIds(request: Json): Json {
  for (const rs of (request.resourceSpans as Json[] | undefined) ?? [])
    for (const ss of (rs.scopeSpans as Json[] | undefined) ?? [])
      for (const span of (ss.spans as Json[] | undefined) ?? []) {
        span.traceId = hex(span.traceId);
        span.spanId = hex(span.spanId);
      }
  return request;
}

/**
 * An `ExportTraceServiceRequest` in the shape of its OTLP/JSON encoding: camelCase fields, 64-bit
 * integers as decimal strings, enums as numbers, ids as hex.
 */
export function decodeTraceRequest(bytes: Uint8Array): { ok: true; value: Json } | { ok: false; message: string } {
  const { request } = messages();
  try {
    const message = request.decode(bytes);
    return { ok: true, value: withHexIds(request.toObject(message, { longs: String, enums: Number, defaults: false })) };
  } catch (err) {
    return { ok: false, message: `not a protobuf ExportTraceServiceRequest: ${(err as Error).message}` };
  }
}

export interface PartialSuccess {
  rejectedSpans: number;
  errorMessage: string;
}

export function encodeTraceResponse(partial: PartialSuccess | undefined): Uint8Array {
  const { response } = messages();
  return response.encode(response.fromObject(partial ? { partialSuccess: partial } : {})).finish();
}

export function encodeStatus(code: number, message: string): Uint8Array {
  const { status } = messages();
  return status.encode(status.fromObject({ code, message })).finish();
}
