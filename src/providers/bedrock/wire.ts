import { anthropicUsage } from "../anthropic/usage.ts";
import { INFERENCE, operations } from "../operations.ts";
import type { Authorization, CallUsage, Operation, ProviderWire, StreamTap, UpstreamRequest } from "../types.ts";
import { bearerToken, isRecord, requestFacts, usageFrom } from "../wire.ts";
import { bedrockErrorBody, bedrockErrorHeaders } from "./errors.ts";
import { modelCall } from "./operations.ts";
import type { BedrockSettings } from "./settings.ts";
import { sigV4Headers } from "./signing.ts";
import { converseStreamTap, invokeStreamTap, withoutModel } from "./stream-usage.ts";
import { bedrockUsage } from "./usage.ts";

/*
 * Amazon Bedrock Runtime at `/bedrock`: the AWS SDK's BedrockRuntimeClient with its endpoint at
 * the gateway and a Tollgate key as its Bedrock API key (`Authorization: Bearer`). The model is
 * named only in the path. Upstream, the gateway presents a Bedrock API key when it has one, or
 * else signs each request with its IAM credentials (SigV4, over the exact bytes it sends).
 */

const EVENT_STREAM = "application/vnd.amazon.eventstream";

/**
 * InvokeModel bodies are the model's own. Claude's is Anthropic's Messages body, whose `usage` is
 * read by Anthropic's extractor; other models' bodies (each its own format) are not read, and their
 * calls are recorded without a price rather than guessed at.
 */
function invokeUsage(body: unknown): CallUsage {
  return withoutModel({ usage: anthropicUsage.detect(body) ? usageFrom(anthropicUsage.extract(body)) : undefined, model: undefined });
}

/** A stream whose format Tollgate does not read: forwarded untouched, its usage unknown. */
const unread = (): StreamTap => ({ push: (chunk) => chunk, end: () => undefined, result: () => ({ usage: undefined, model: undefined }) });

async function authorize(request: UpstreamRequest, credential: string | undefined, settings: BedrockSettings): Promise<Authorization> {
  // A Bedrock API key (stored, BEDROCK_API_KEY, or the client's own when pass-through is allowed) wins over IAM credentials.
  if (credential !== undefined) return { authorization: `Bearer ${credential}` };
  return settings.iam && sigV4Headers(settings.iam, request);
}

const resourceOperation = operations([], ["async-invoke", "guardrail"]);

/** Billable requests: the model calls (CountTokens is free); anything else (async invocations, guardrails) is counted. */
function bedrockOperation(method: string, path: string): Operation {
  const call = modelCall(path);
  if (call === undefined || method.toUpperCase() !== "POST") return resourceOperation(method, path);
  return call.operation === "count-tokens" ? { kind: "other", name: "count-tokens" } : INFERENCE;
}

export const bedrockWire: ProviderWire<BedrockSettings> = {
  // The SDK sends a Bedrock API key (its `token`, or AWS_BEARER_TOKEN_BEDROCK) as `Authorization: Bearer`.
  clientKey: (headers) => bearerToken(headers),
  // A client's own signing headers mean nothing upstream; the gateway's signer sets its own.
  credentialHeaders: ["authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"],
  credentialQuery: [],
  authorize,
  inspect(path) {
    const call = modelCall(path);
    return requestFacts({ model: call?.model, stream: call?.operation === "converse-stream" || call?.operation === "invoke-with-response-stream" });
  },
  operation: bedrockOperation,
  usageOf(path, body) {
    const call = modelCall(path);
    // A Converse answer names no model: the path's is recorded.
    if (call?.operation === "converse") return { usage: isRecord(body) && isRecord(body.usage) ? usageFrom(bedrockUsage.extract(body)) : undefined, model: undefined };
    if (call?.operation === "invoke") return invokeUsage(body);
    return { usage: undefined, model: undefined };
  },
  isStream: (contentType) => contentType.includes(EVENT_STREAM),
  tap(path) {
    const operation = modelCall(path)?.operation;
    if (operation === "converse-stream") return converseStreamTap();
    if (operation === "invoke-with-response-stream") return invokeStreamTap();
    return unread();
  },
  error: bedrockErrorBody,
  errorHeaders: bedrockErrorHeaders,
};
