import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type DiagLogger, DiagLogLevel, diag } from "@opentelemetry/api";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { sql } from "drizzle-orm";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";

/*
 * Conformance with OpenTelemetry's own JavaScript exporters, protobuf and JSON: GenAI spans exported
 * through them land in the ledger at exact cost, a partial rejection reaches the exporter as OTLP's
 * partial success, and a bad key is a failed export rather than spans dropped in silence.
 */

let t: TestGateway;
let key: string;
const warnings: string[] = [];
before(async () => {
  t = await startTestGateway();
  key = await t.ingestKey();
  // The exporters report a partial success through the OTel diagnostic logger, nowhere else.
  const logger: DiagLogger = {
    error: () => {},
    warn: (...args: unknown[]) => void warnings.push(args.map(String).join(" ")),
    info: () => {},
    debug: () => {},
    verbose: () => {},
  };
  diag.setLogger(logger, DiagLogLevel.WARN);
});
after(async () => {
  diag.disable();
  await t.close();
});

/** Finished spans as an SDK hands them to its exporter, from a real tracer provider. */
function finishedSpans(calls: Record<string, string | number>[]): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "conformance" }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer("conformance");
  for (const attributes of calls) tracer.startSpan("chat gpt-4o", { attributes }).end();
  return memory.getFinishedSpans();
}

/** gpt-4o, 10,000 input of which 8,000 cached, 1,000 output: $0.025 exactly. */
const chat = (team: string, extra: Record<string, string | number> = {}) => ({
  "gen_ai.operation.name": "chat",
  "gen_ai.provider.name": "openai",
  "gen_ai.request.model": "gpt-4o",
  "gen_ai.response.model": "gpt-4o-2024-08-06",
  "gen_ai.usage.input_tokens": 10_000,
  "gen_ai.usage.cache_read.input_tokens": 8_000,
  "gen_ai.usage.output_tokens": 1_000,
  "tollgate.team": team,
  ...extra,
});

function exportThrough(exporter: { export(spans: ReadableSpan[], done: (r: ExportResult) => void): void }, spans: ReadableSpan[]): Promise<ExportResult> {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

async function costOf(span: ReadableSpan): Promise<string | undefined> {
  const { traceId, spanId } = span.spanContext();
  const [row] = await t.gateway.database.rows<{ cost: string }>(sql`select cost::text as cost from usage_events where id = ${`${traceId}:${spanId}`}`);
  return row?.cost;
}

const exporters = {
  protobuf: (headers: Record<string, string>, gzip = false) =>
    new ProtoExporter({ url: `${t.base}/v1/traces`, headers, ...(gzip ? { compression: "gzip" as never } : {}) }),
  json: (headers: Record<string, string>, gzip = false) =>
    new JsonExporter({ url: `${t.base}/v1/traces`, headers, ...(gzip ? { compression: "gzip" as never } : {}) }),
};

for (const [encoding, make] of Object.entries(exporters)) {
  describe(`OpenTelemetry's ${encoding} exporter`, () => {
    test("GenAI spans land in the ledger at exact cost, gzip or not", async () => {
      for (const gzip of [false, true]) {
        const exporter = make({ authorization: `Bearer ${key}` }, gzip);
        const spans = finishedSpans([chat(`${encoding}-${gzip}`), chat(`${encoding}-${gzip}`)]);
        const result = await exportThrough(exporter, spans);
        assert.equal(result.code, ExportResultCode.SUCCESS, String(result.error));
        for (const span of spans) assert.equal(await costOf(span), "25000000000");
        await exporter.shutdown();
      }
    });

    test("a rejected span is reported to the exporter as a partial success; its neighbour is kept", async () => {
      warnings.length = 0;
      const exporter = make({ authorization: `Bearer ${key}` });
      const [good, bad] = finishedSpans([chat(`${encoding}-partial`), chat(`${encoding}-partial`, { "gen_ai.usage.output_tokens": -1 })]);
      const result = await exportThrough(exporter, [good!, bad!]);
      assert.equal(result.code, ExportResultCode.SUCCESS);
      assert.equal(await costOf(good!), "25000000000");
      assert.equal(await costOf(bad!), undefined);
      const partial = warnings.find((w) => w.includes("Partial Success"));
      assert.ok(partial, `no partial success among ${JSON.stringify(warnings)}`);
      assert.match(partial, /"rejectedSpans":("1"|1)/);
      assert.match(partial, new RegExp(bad!.spanContext().spanId));
      await exporter.shutdown();
    });

    test("a bad key fails the export; nothing is recorded", async () => {
      const exporter = make({ authorization: "Bearer tlg_not_a_key" });
      const spans = finishedSpans([chat(`${encoding}-badkey`)]);
      const result = await exportThrough(exporter, spans);
      assert.equal(result.code, ExportResultCode.FAILED);
      assert.equal((result.error as { code?: number }).code, 401);
      assert.equal(await costOf(spans[0]!), undefined);
      await exporter.shutdown();
    });
  });
}

describe("configured by OTEL_EXPORTER_OTLP_* variables, as docs/ingest.md says", () => {
  test("the protobuf exporter with only the endpoint and headers set exports to the gateway", async () => {
    const saved = { ...process.env };
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = t.base;
    process.env.OTEL_EXPORTER_OTLP_HEADERS = `authorization=Bearer ${key}`;
    process.env.OTEL_EXPORTER_OTLP_COMPRESSION = "gzip";
    try {
      const exporter = new ProtoExporter();
      const spans = finishedSpans([chat("env-configured")]);
      const result = await exportThrough(exporter, spans);
      assert.equal(result.code, ExportResultCode.SUCCESS, String(result.error));
      assert.equal(await costOf(spans[0]!), "25000000000");
      await exporter.shutdown();
    } finally {
      for (const k of ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_COMPRESSION"]) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });
});
