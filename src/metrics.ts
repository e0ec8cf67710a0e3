import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** One registry per process, served at /metrics. */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const usageEventsTotal = new Counter({
  name: "tollgate_usage_events_total",
  help: "Usage events received, by outcome (accepted, duplicate, rejected)",
  labelNames: ["outcome"] as const,
  registers: [registry],
});

export const recorderBatchSize = new Histogram({
  name: "tollgate_recorder_batch_size",
  help: "Events written per recorder flush",
  buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
  registers: [registry],
});

export const recorderWriteSeconds = new Histogram({
  name: "tollgate_recorder_write_seconds",
  help: "Time to write one recorder batch (its events, and its number queued for the rollups' fold)",
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

export const proxyRequestsTotal = new Counter({
  name: "tollgate_proxy_requests_total",
  help: "Proxied requests by provider and operation: `inference` is billed; the rest (files.list, batches.retrieve, models.countTokens, ...) are forwarded and never recorded as usage",
  labelNames: ["provider", "operation"] as const,
  registers: [registry],
});
