import { createHash, timingSafeEqual } from "node:crypto";
import { Sha256 } from "@aws-crypto/sha256-js";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { SignatureV4 } from "@smithy/signature-v4";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import {
  type Behaviour,
  DEFAULT_DELTAS,
  type FakeUpstream,
  type ProviderContract,
  type RecordedRequest,
  type Reply,
  answerText,
  json,
  piece,
  randomId,
  startFake,
} from "./fake-upstream.ts";

/*
 * A fake Amazon Bedrock Runtime, written from the Bedrock API reference:
 * `POST /model/{modelId}/converse` (ConverseResponse with `usage` TokenUsage and `metrics`),
 * `/converse-stream` (an `application/vnd.amazon.eventstream` of messageStart, contentBlockDelta…,
 * contentBlockStop, messageStop and metadata with the usage), and for Anthropic models
 * `/invoke` (Anthropic's Messages body, `anthropic_version: bedrock-2023-05-31` required) and
 * `/invoke-with-response-stream` (`chunk` events whose `bytes` are Anthropic's stream events in
 * base64, the last with `amazon-bedrock-invocationMetrics`). Requests are authenticated by a
 * Bedrock API key (`Authorization: Bearer`) or by AWS Signature Version 4, which the fake
 * recomputes from the credentials it knows. Errors are `{"message"}` with the exception's name in
 * `x-amzn-errortype`, as restJson1 services answer.
 */

/** The Bedrock API key the fake accepts. */
export const BEDROCK_API_KEY = "ABSKQmVkcm9ja0FQSUtleS1mYWtlLTAxMjM0NTY3ODk=";

/** The region the fake serves: a request signed for another is refused, as AWS refuses it. */
export const BEDROCK_REGION = "us-east-1";

/** IAM credentials the fake accepts: long-term keys, and temporary ones that need their session token. */
export const BEDROCK_CREDENTIALS = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
export const BEDROCK_TEMPORARY_CREDENTIALS = {
  accessKeyId: "ASIAIOSFODNN7EXAMPLE",
  secretAccessKey: "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
  sessionToken: "IQoJb3JpZ2luX2VjEFakeSessionToken0123456789",
};
const KNOWN = [BEDROCK_CREDENTIALS, BEDROCK_TEMPORARY_CREDENTIALS];

/** What Converse reports: a prompt mostly read from the cache, with cache writes of both lifetimes. */
export const BEDROCK_USAGE = {
  inputTokens: 50,
  outputTokens: 420,
  totalTokens: 15_470,
  cacheReadInputTokens: 12_000,
  cacheWriteInputTokens: 3000,
  cacheDetails: [
    { ttl: "1h", inputTokens: 2000 },
    { ttl: "5m", inputTokens: 1000 },
  ],
};

/** What Claude through InvokeModel reports, in Anthropic's own shape. */
export const BEDROCK_ANTHROPIC_USAGE = { input_tokens: 80, cache_creation_input_tokens: 500, cache_read_input_tokens: 2000, output_tokens: 250 };

/** The model name Claude's own body gives, which is not the Bedrock model id. */
export const CLAUDE_ANSWERING_MODEL = "claude-sonnet-4-5-20250929";

/** Exception names by status, from the Bedrock Runtime API reference's "Errors" sections. */
const EXCEPTIONS: Record<number, [name: string, message: string]> = {
  400: ["ValidationException", "Input validation failed."],
  403: ["AccessDeniedException", "You don't have access to the model with the specified model ID."],
  404: ["ResourceNotFoundException", "The requested resource could not be found."],
  408: ["ModelTimeoutException", "Model timed out."],
  424: ["ModelErrorException", "The model returned an error."],
  429: ["ThrottlingException", "Too many requests, please wait before trying again."],
  500: ["InternalServerException", "The server encountered an internal error."],
  503: ["ServiceUnavailableException", "The service is temporarily unable to handle the request."],
};

const exceptionName = (status: number): string => EXCEPTIONS[status]?.[0] ?? (status >= 500 ? "InternalServerException" : "ValidationException");

function bedrockError(status: number, message?: string, name = exceptionName(status)): Reply {
  return json(status, { message: message ?? EXCEPTIONS[status]?.[1] ?? `Error ${status}` }, { "x-amzn-errortype": `${name}:http://internal.amazon.com/coral/com.amazon.bedrock/` });
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);

/** One event-stream message as Bedrock frames it; the service pads payloads with a `p` field. */
function eventFrame(type: string, payload: Record<string, unknown>): Uint8Array {
  return codec.encode({
    headers: {
      ":event-type": { type: "string", value: type },
      ":content-type": { type: "string", value: "application/json" },
      ":message-type": { type: "string", value: "event" },
    },
    body: fromUtf8(JSON.stringify({ ...payload, p: "abcdefghijklmnopqrstuvwxyzABCDEF".slice(0, 1 + (type.length % 20)) })),
  });
}

const header = (request: RecordedRequest, name: string): string | undefined => {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

const sha256Hex = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

/** `20250101T120000Z` → the moment it names. */
function amzDate(text: string | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text ?? "");
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number);
  return new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!));
}

const FIVE_MINUTES = 5 * 60_000;

/**
 * Checks a SigV4 request as AWS does: the key is known, the scope is this region and service, the
 * date is fresh, the body hash is the body's, and the signature recomputed over the signed headers
 * matches. The fake's own SignatureV4 recomputes it, from the secret only the fake and the gateway know.
 */
async function verifySigV4(request: RecordedRequest, authorization: string): Promise<Reply | undefined> {
  const parsed = AUTHORIZATION.exec(authorization);
  if (!parsed) return bedrockError(403, "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.", "IncompleteSignatureException");
  const [, keyId, day, region, service, signedList = "", signature = ""] = parsed;
  const credentials = KNOWN.find((c) => c.accessKeyId === keyId);
  if (!credentials) return bedrockError(403, "The security token included in the request is invalid.", "UnrecognizedClientException");
  if (service !== "bedrock" || region !== BEDROCK_REGION)
    return bedrockError(403, `Credential should be scoped to a valid region and to the service 'bedrock'.`, "InvalidSignatureException");
  const date = amzDate(header(request, "x-amz-date"));
  if (!date || day !== header(request, "x-amz-date")?.slice(0, 8)) return bedrockError(403, "Date must be in ISO-8601 'basic format' and match the credential scope.", "InvalidSignatureException");
  if (Math.abs(date.getTime() - Date.now()) > FIVE_MINUTES) return bedrockError(403, "Signature expired.", "InvalidSignatureException");
  if ("sessionToken" in credentials && header(request, "x-amz-security-token") !== credentials.sessionToken)
    return bedrockError(403, "The security token included in the request is invalid.", "UnrecognizedClientException");
  const claimedHash = header(request, "x-amz-content-sha256");
  if (claimedHash !== undefined && claimedHash !== sha256Hex(request.raw))
    return bedrockError(403, "The provided 'x-amz-content-sha256' header does not match what was computed.", "InvalidSignatureException");
  const signedNames = signedList.split(";");
  for (const required of ["host", "x-amz-date"]) if (!signedNames.includes(required)) return bedrockError(403, `'${required}' must be a signed header.`, "InvalidSignatureException");
  const headers: Record<string, string> = {};
  for (const name of signedNames) {
    const value = request.headers[name];
    if (value === undefined) return bedrockError(403, `Signed header '${name}' is missing from the request.`, "InvalidSignatureException");
    headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  const q = request.path.indexOf("?");
  const query: Record<string, string> = Object.fromEntries(new URLSearchParams(q === -1 ? "" : request.path.slice(q + 1)));
  const signer = new SignatureV4({ service: "bedrock", region: BEDROCK_REGION, credentials, sha256: Sha256 });
  const expected = await signer.sign(
    { method: request.method, protocol: "https:", hostname: headers.host ?? "", path: q === -1 ? request.path : request.path.slice(0, q), query, headers, body: request.raw },
    { signingDate: date },
  );
  const ours = /Signature=([0-9a-f]{64})$/.exec(expected.headers.authorization ?? "")?.[1] ?? "";
  if (ours.length !== signature.length || !timingSafeEqual(Buffer.from(ours), Buffer.from(signature)))
    return bedrockError(
      403,
      "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
      "InvalidSignatureException",
    );
  return undefined;
}

type Body = Record<string, unknown>;

const bodyOf = (request: RecordedRequest): Body => (typeof request.body === "object" && request.body !== null && !Array.isArray(request.body) ? (request.body as Body) : {});

/** Converse's `messages` must be a non-empty list; the fake checks as much of the contract as it answers. */
function converse(request: RecordedRequest, stream: boolean, b: Behaviour): Reply {
  const messages = bodyOf(request).messages;
  if (!Array.isArray(messages) || messages.length === 0) return bedrockError(400, "The model returned the following errors: messages: at least one message is required");
  const usage = b.usage ?? BEDROCK_USAGE;
  const deltas = b.deltas ?? DEFAULT_DELTAS;
  if (!stream)
    return json(200, {
      output: { message: { role: "assistant", content: [{ text: answerText(deltas, b.deltaBytes) }] } },
      stopReason: "end_turn",
      usage,
      metrics: { latencyMs: 412 },
    });
  function* frames(): Generator<Uint8Array> {
    yield eventFrame("messageStart", { role: "assistant" });
    for (let i = 0; i < deltas; i++) yield eventFrame("contentBlockDelta", { contentBlockIndex: 0, delta: { text: piece(i, b.deltaBytes) } });
    yield eventFrame("contentBlockStop", { contentBlockIndex: 0 });
    yield eventFrame("messageStop", { stopReason: "end_turn" });
    yield eventFrame("metadata", { usage, metrics: { latencyMs: 412 } });
  }
  return { kind: "stream", contentType: "application/vnd.amazon.eventstream", frames: frames() };
}

const ANTHROPIC_MODEL = /(^|\.)anthropic\.claude-/;

/** Anthropic's Messages API through InvokeModel: the body is Anthropic's, without `model` and with Bedrock's version. */
function invokeAnthropic(request: RecordedRequest, stream: boolean, b: Behaviour): Reply {
  const body = bodyOf(request);
  if (body.anthropic_version !== "bedrock-2023-05-31") return bedrockError(400, "Malformed input request: #: required key [anthropic_version] not found, please reformat your input and try again.");
  if ("model" in body) return bedrockError(400, "Malformed input request: #: extraneous key [model] is not permitted, please reformat your input and try again.");
  if (typeof body.max_tokens !== "number") return bedrockError(400, "Malformed input request: #: required key [max_tokens] not found, please reformat your input and try again.");
  const usage = b.usage ?? BEDROCK_ANTHROPIC_USAGE;
  const deltas = b.deltas ?? DEFAULT_DELTAS;
  const id = randomId("msg_bdrk_01", 22);
  if (!stream)
    return json(
      200,
      { id, type: "message", role: "assistant", model: CLAUDE_ANSWERING_MODEL, content: [{ type: "text", text: answerText(deltas, b.deltaBytes) }], stop_reason: "end_turn", stop_sequence: null, usage },
      {
        "x-amzn-bedrock-input-token-count": String(usage.input_tokens),
        "x-amzn-bedrock-output-token-count": String(usage.output_tokens),
        "x-amzn-bedrock-invocation-latency": "512",
      },
    );
  const chunk = (event: Body) => eventFrame("chunk", { bytes: Buffer.from(JSON.stringify(event)).toString("base64") });
  function* frames(): Generator<Uint8Array> {
    const startUsage = { ...usage, output_tokens: 1 };
    yield chunk({ type: "message_start", message: { id, type: "message", role: "assistant", model: CLAUDE_ANSWERING_MODEL, content: [], stop_reason: null, stop_sequence: null, usage: startUsage } });
    yield chunk({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
    for (let i = 0; i < deltas; i++) yield chunk({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: piece(i, b.deltaBytes) } });
    yield chunk({ type: "content_block_stop", index: 0 });
    yield chunk({ type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: usage.output_tokens } });
    yield chunk({
      type: "message_stop",
      "amazon-bedrock-invocationMetrics": { inputTokenCount: usage.input_tokens, outputTokenCount: usage.output_tokens, invocationLatency: 512, firstByteLatency: 120 },
    });
  }
  return { kind: "stream", contentType: "application/vnd.amazon.eventstream", frames: frames() };
}

const contract: ProviderContract = {
  authorise(request, _url, key) {
    const authorization = header(request, "authorization") ?? "";
    const bearer = /^Bearer (\S+)$/.exec(authorization)?.[1];
    if (bearer !== undefined) return bearer === key ? undefined : bedrockError(403, "Invalid API Key format: Must start with pre-defined prefix", "UnrecognizedClientException");
    if (authorization === "") return bedrockError(403, "Missing Authentication Token", "MissingAuthenticationTokenException");
    return verifySigV4(request, authorization);
  },
  errorBody: (status, message) => ({ message: message ?? EXCEPTIONS[status]?.[1] ?? `Error ${status}` }),
  errorHeaders: (status) => ({ "x-amzn-errortype": `${exceptionName(status)}:http://internal.amazon.com/coral/com.amazon.bedrock/` }),
  answer(request, url, behaviour) {
    const match = /^\/model\/([^/]+)\/(converse|converse-stream|invoke|invoke-with-response-stream)$/.exec(url.pathname);
    if (request.method !== "POST" || !match) return bedrockError(404, `Unknown operation ${request.method} ${url.pathname}`, "UnknownOperationException");
    const [, encoded = "", operation] = match;
    const model = decodeURIComponent(encoded);
    if (operation === "converse" || operation === "converse-stream") return converse(request, operation === "converse-stream", behaviour);
    if (!ANTHROPIC_MODEL.test(model)) return bedrockError(400, "The provided model identifier is invalid.");
    return invokeAnthropic(request, operation === "invoke-with-response-stream", behaviour);
  },
  commonHeaders: () => ({ "x-amzn-requestid": crypto.randomUUID() }),
};

/** A fake Bedrock Runtime on a loopback port, accepting `apiKey` as a Bedrock API key and the IAM credentials above. */
export function startFakeBedrock(apiKey = BEDROCK_API_KEY): Promise<FakeUpstream> {
  return startFake(contract, apiKey);
}
