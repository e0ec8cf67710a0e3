import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  BedrockRuntimeClient,
  type BedrockRuntimeServiceException,
  ConverseCommand,
  ConverseStreamCommand,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
} from "@aws-sdk/client-bedrock-runtime";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import { ConfigError, loadConfig } from "../src/config.ts";
import type { Database } from "../src/db/connection.ts";
import type { Tokens } from "../src/ledger/event.ts";
import { createCatalog, type PriceSet, type Rate } from "../src/pricing/index.ts";
import { EventStreamReader } from "../src/providers/bedrock/event-stream.ts";
import { bedrockModelId, modelCall } from "../src/providers/bedrock/operations.ts";
import { converseStreamTap } from "../src/providers/bedrock/stream-usage.ts";
import { bedrockUsage } from "../src/providers/bedrock/usage.ts";
import { normaliseProvider } from "../src/providers/registry.ts";
import {
  BEDROCK_ANTHROPIC_USAGE,
  BEDROCK_API_KEY,
  BEDROCK_CREDENTIALS,
  BEDROCK_REGION,
  BEDROCK_TEMPORARY_CREDENTIALS,
  BEDROCK_USAGE,
  startFakeBedrock,
} from "./fakes/bedrock.ts";
import { answerText, type FakeUpstream } from "./fakes/fake-upstream.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { type ProxyRow, proxyRow, tokenColumns } from "./helpers/proxy-ledger.ts";
import { tokens } from "./helpers/tokens.ts";
import { waitFor } from "./helpers/wait.ts";

/*
 * Amazon Bedrock through the gateway: the AWS SDK's own BedrockRuntimeClient, its endpoint at
 * `/bedrock` and a Tollgate key as its Bedrock API key, against a fake Bedrock Runtime that checks
 * the gateway's SigV4 signatures (or its Bedrock API key) the way AWS does.
 */

const SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0";
const US_SONNET = `us.${SONNET}`;
const GLOBAL_SONNET = `global.${SONNET}`;
const PROFILE_ARN = `arn:aws:bedrock:us-east-1:123456789012:inference-profile/${US_SONNET}`;

// ---------------------------------------------------------------------------------------------
// Pure parts
// ---------------------------------------------------------------------------------------------

describe("Bedrock model ids", () => {
  test("ids and inference profiles are kept as Bedrock names them; ARNs are reduced to them", () => {
    assert.equal(bedrockModelId(SONNET), SONNET);
    assert.equal(bedrockModelId("anthropic.claude-sonnet-4-5-20250929-v1%3A0"), SONNET);
    for (const geo of ["us", "eu", "apac", "global", "us-gov", "jp"]) assert.equal(bedrockModelId(encodeURIComponent(`${geo}.${SONNET}`)), `${geo}.${SONNET}`);
    assert.equal(bedrockModelId(encodeURIComponent(PROFILE_ARN)), US_SONNET);
    assert.equal(bedrockModelId(encodeURIComponent(`arn:aws:bedrock:eu-west-1::foundation-model/${SONNET}`)), SONNET);
    assert.equal(bedrockModelId(encodeURIComponent(`arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/us-gov.${SONNET}`)), `us-gov.${SONNET}`);
  });

  test("an ARN naming no model (an application inference profile) is kept whole, so it is recorded and left unpriced", () => {
    const arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6";
    assert.equal(bedrockModelId(encodeURIComponent(arn)), "application-inference-profile/a1b2c3d4e5f6");
    assert.equal(createCatalog().lookup("bedrock", "application-inference-profile/a1b2c3d4e5f6", new Date()), null);
  });

  test("bad escapes and empty ids name no model", () => {
    assert.equal(bedrockModelId("%E0%A4%A"), undefined);
    assert.equal(bedrockModelId(""), undefined);
    assert.equal(bedrockModelId("%20"), undefined);
  });

  test("paths: the four model calls and count-tokens, nothing else", () => {
    assert.deepEqual(modelCall(`/model/${encodeURIComponent(US_SONNET)}/converse`), { model: US_SONNET, operation: "converse" });
    assert.deepEqual(modelCall(`/model/${encodeURIComponent(PROFILE_ARN)}/converse-stream`), { model: US_SONNET, operation: "converse-stream" });
    assert.deepEqual(modelCall(`/model/${SONNET}/invoke?x=1`), { model: SONNET, operation: "invoke" });
    assert.deepEqual(modelCall(`/model/${SONNET}/invoke-with-response-stream`), { model: SONNET, operation: "invoke-with-response-stream" });
    assert.deepEqual(modelCall(`/model/${SONNET}/count-tokens`), { model: SONNET, operation: "count-tokens" });
    assert.equal(modelCall(`/model/${SONNET}/retrieve`), undefined);
    assert.equal(modelCall("/async-invoke"), undefined);
    // An unencoded ARN splits into segments: not a path the SDK sends.
    assert.equal(modelCall(`/model/${PROFILE_ARN}/converse`), undefined);
  });
});

describe("Bedrock configuration", () => {
  const bedrockSetup = (env: Record<string, string>) => loadConfig({ TOLLGATE_DATA_DIR: "/tmp/unused", ...env }).providers.bedrock;

  test("the upstream follows the region; IAM credentials are read as a pair, with an optional session token", () => {
    assert.deepEqual(bedrockSetup({}), { baseUrl: "https://bedrock-runtime.us-east-1.amazonaws.com", settings: { region: "us-east-1", iam: undefined } });
    assert.equal(bedrockSetup({ AWS_DEFAULT_REGION: "eu-west-3" })?.baseUrl, "https://bedrock-runtime.eu-west-3.amazonaws.com");
    assert.equal(bedrockSetup({ AWS_REGION: "ap-northeast-1", AWS_DEFAULT_REGION: "eu-west-3" })?.baseUrl, "https://bedrock-runtime.ap-northeast-1.amazonaws.com");
    assert.deepEqual(bedrockSetup({ ...iamEnv(BEDROCK_TEMPORARY_CREDENTIALS), BEDROCK_BASE_URL: "http://127.0.0.1:9" }), {
      baseUrl: "http://127.0.0.1:9",
      settings: { region: BEDROCK_REGION, iam: { ...BEDROCK_TEMPORARY_CREDENTIALS, region: BEDROCK_REGION } },
    });
  });

  test("half a key pair, a lone session token or a malformed region stops start-up, naming the variable", () => {
    assert.throws(() => bedrockSetup({ AWS_ACCESS_KEY_ID: BEDROCK_CREDENTIALS.accessKeyId }), ConfigError);
    assert.throws(() => bedrockSetup({ AWS_ACCESS_KEY_ID: "AKIA" }), /AWS_SECRET_ACCESS_KEY: expected AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY together, or neither/);
    assert.throws(() => bedrockSetup({ AWS_SESSION_TOKEN: "t" }), /AWS_SESSION_TOKEN: expected AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY beside a session token/);
    assert.throws(() => bedrockSetup({ AWS_REGION: "Frankfurt" }), /AWS_REGION: expected an AWS region such as us-east-1/);
  });

  test("every door's spelling of Bedrock is one provider", () => {
    for (const name of ["bedrock", "Bedrock", "aws.bedrock", "amazon-bedrock", "aws"]) assert.equal(normaliseProvider(name), "bedrock", name);
  });
});

describe("Bedrock usage", () => {
  test("TokenUsage: input counts leave out cache reads and writes; 1-hour writes come from cacheDetails", () => {
    assert.deepEqual(bedrockUsage.extract({ usage: BEDROCK_USAGE, metrics: { latencyMs: 1 } }), {
      ok: true,
      usage: { tokens: tokens({ input: 15_050, cached_input: 12_000, cache_write: 3000, cache_write_1h: 2000, output: 420 }) },
    });
    assert.deepEqual(bedrockUsage.extract({ inputTokens: 7, outputTokens: 3, totalTokens: 10 }), { ok: true, usage: { tokens: tokens({ input: 7, output: 3 }) } });
  });

  test("a usage object that does not add up is refused at its path", () => {
    const detailsOff = bedrockUsage.extract({ usage: { ...BEDROCK_USAGE, cacheDetails: [{ ttl: "1h", inputTokens: 5 }] } });
    assert.deepEqual(detailsOff, { ok: false, error: { path: "usage.cacheDetails", message: "the cacheDetails inputTokens must add up to cacheWriteInputTokens" } });
    const missing = bedrockUsage.extract({ outputTokens: 3 });
    assert.equal(missing.ok, false);
    assert.equal(!missing.ok && missing.error.path, "inputTokens");
  });
});

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const frame = (type: string, payload: unknown) =>
  codec.encode({
    headers: { ":event-type": { type: "string", value: type }, ":message-type": { type: "string", value: "event" }, ":content-type": { type: "string", value: "application/json" } },
    body: fromUtf8(JSON.stringify(payload)),
  });

describe("Bedrock event streams", () => {
  const stream = Buffer.concat([frame("messageStart", { role: "assistant" }), frame("contentBlockDelta", { contentBlockIndex: 0, delta: { text: "Grüße" } }), frame("metadata", { usage: BEDROCK_USAGE })]);

  test("messages are read whole however the bytes are split", () => {
    for (const size of [1, 2, 3, 5, 11, 16, 61, stream.length]) {
      const reader = new EventStreamReader();
      const events = [];
      for (let i = 0; i < stream.length; i += size) events.push(...reader.push(stream.subarray(i, i + size)));
      assert.deepEqual(
        events.map((e) => [e.kind, e.type]),
        [
          ["event", "messageStart"],
          ["event", "contentBlockDelta"],
          ["event", "metadata"],
        ],
        `split every ${size} bytes`,
      );
      assert.equal(JSON.parse(events[1]!.payload).delta.text, "Grüße");
    }
  });

  test("a damaged message stops the reading (its bytes are still the client's); what came before it counts", () => {
    const damaged = Buffer.from(stream);
    const second = frame("messageStart", { role: "assistant" }).length;
    damaged[second + 20] = damaged[second + 20]! ^ 0xff;
    const reader = new EventStreamReader();
    assert.deepEqual(
      reader.push(damaged).map((e) => e.type),
      ["messageStart"],
    );
    assert.deepEqual(reader.push(frame("metadata", {})), []);
    assert.equal(reader.stopped, true);
    // The tap says so, and the gateway settles the call at an estimate rather than as unread usage.
    const tap = converseStreamTap();
    tap.push(damaged);
    assert.deepEqual(tap.result(), { usage: undefined, model: undefined, partial: true });
    const whole = converseStreamTap();
    whole.push(stream);
    assert.equal(whole.result().partial, undefined);
    assert.ok(whole.result().usage);
  });
});

// ---------------------------------------------------------------------------------------------
// Prices: the expected cost of each call, worked out here from the catalog's rates
// ---------------------------------------------------------------------------------------------

const catalog = createCatalog();

/** A flat per-million-token rate in pico-USD per token, as the catalog holds Bedrock's rates. */
function flat(rate: Rate | undefined): bigint {
  assert.equal(typeof rate, "bigint", "Bedrock's rates are flat");
  return rate as bigint;
}

/**
 * The cost of `t` at `prices`: each class at its own rate; 1-hour cache writes, which AWS prices
 * as Anthropic does, at twice the input rate when the catalog gives them no rate of their own.
 */
function expectedCost(prices: PriceSet, t: Tokens): bigint {
  const input = flat(prices.input);
  const oneHour = prices.cache_write_1h === undefined ? 2n * input : flat(prices.cache_write_1h);
  return (
    BigInt(t.input - t.cached_input - t.cache_write) * input +
    BigInt(t.cached_input) * flat(prices.cache_read) +
    BigInt(t.cache_write - t.cache_write_1h) * flat(prices.cache_write) +
    BigInt(t.cache_write_1h) * oneHour +
    BigInt(t.output) * flat(prices.output)
  );
}

const pricesOf = (model: string): PriceSet => {
  const found = catalog.lookup("bedrock", model, new Date());
  assert.ok(found, `the catalog prices ${model} on Bedrock`);
  return found.prices;
};

const CONVERSE_TOKENS = tokens({ input: 15_050, cached_input: 12_000, cache_write: 3000, cache_write_1h: 2000, output: 420 });
const INVOKE_TOKENS = tokens({ input: 2580, cached_input: 2000, cache_write: 500, output: 250 });

describe("Bedrock prices", () => {
  test("a geographic inference profile is priced as its model; a global one at AWS's global rates, which are lower", () => {
    assert.deepEqual(pricesOf(US_SONNET), pricesOf(SONNET));
    assert.deepEqual(pricesOf(`eu.${SONNET}`), pricesOf(SONNET));
    assert.deepEqual(pricesOf(`apac.${SONNET}`), pricesOf(SONNET));
    assert.ok(flat(pricesOf(GLOBAL_SONNET).input) < flat(pricesOf(SONNET).input));
  });
});

// ---------------------------------------------------------------------------------------------
// Through the gateway, with the AWS SDK
// ---------------------------------------------------------------------------------------------

let database: Database;
let fake: FakeUpstream;
/** Signs upstream with long-term IAM keys. */
let signing: TestGateway;
/** Presents a Bedrock API key upstream. */
let keyed: TestGateway;
/** Signs with temporary credentials (a session token). */
let temporary: TestGateway;

const iamEnv = (credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }): Record<string, string> => ({
  AWS_REGION: BEDROCK_REGION,
  AWS_ACCESS_KEY_ID: credentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  ...(credentials.sessionToken ? { AWS_SESSION_TOKEN: credentials.sessionToken } : {}),
});

before(async () => {
  database = await openTestDatabase();
  fake = await startFakeBedrock();
  const common = { BEDROCK_BASE_URL: fake.url, TOLLGATE_BUDGET_REFRESH_MS: "50", TOLLGATE_JOBS: "off" };
  signing = await startTestGateway({ ...common, ...iamEnv(BEDROCK_CREDENTIALS) }, { database, integrations: [] });
  keyed = await startTestGateway({ ...common, BEDROCK_API_KEY: fake.key }, { database, integrations: [] });
  temporary = await startTestGateway({ ...common, ...iamEnv(BEDROCK_TEMPORARY_CREDENTIALS) }, { database, integrations: [] });
});
after(async () => {
  await signing.close();
  await keyed.close();
  await temporary.close();
  await database.close();
  await fake.close();
});

async function virtualKey(gateway: TestGateway, team: string): Promise<string> {
  const res = await gateway.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: `bedrock-${team}`, team }) });
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { key: string }).key;
}

/**
 * The SDK as a user sets it up: endpoint at the gateway, the Tollgate key as its Bedrock API key.
 * Its default HTTP handler speaks HTTP/2 only; the gateway speaks HTTP/1.1, hence NodeHttpHandler.
 */
function client(gateway: TestGateway, key: string, maxAttempts?: number): BedrockRuntimeClient {
  return new BedrockRuntimeClient({
    region: BEDROCK_REGION,
    endpoint: `${gateway.base}/bedrock`,
    token: { token: key },
    authSchemePreference: ["httpBearerAuth"],
    requestHandler: new NodeHttpHandler(),
    ...(maxAttempts === undefined ? {} : { maxAttempts }),
  });
}

const messages = [{ role: "user" as const, content: [{ text: "hello" }] }];
const claudeBody = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 300, messages: [{ role: "user", content: "hello" }] });

/** Captures the gateway's `x-tollgate-request-id` on every answer the SDK reads. */
function watchCallIds(sdk: BedrockRuntimeClient): string[] {
  const ids: string[] = [];
  sdk.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const id = (result.response as { headers?: Record<string, string> }).headers?.["x-tollgate-request-id"];
      if (id) ids.push(id);
      return result;
    },
    { step: "deserialize", name: "tollgateCallId" },
  );
  return ids;
}

async function ledgerRow(ids: string[]): Promise<ProxyRow> {
  await waitFor("the SDK's call id", () => ids.length > 0);
  return proxyRow(database, ids.at(-1)!);
}

function assertPriced(row: ProxyRow, model: string, t: Tokens, pricedAs = model): void {
  assert.equal(row.provider, "bedrock");
  assert.equal(row.model, model);
  assert.equal(row.status, "ok");
  assert.deepEqual(tokenColumns(row), [t.input, t.cached_input, t.cache_write, t.cache_write_1h, t.output, t.reasoning].map(String));
  assert.equal(row.priced, true);
  assert.equal(BigInt(row.cost), expectedCost(pricesOf(pricedAs), t));
}

/** The last request the fake received. */
const lastUpstream = () => fake.requests.at(-1)!;

describe("Converse and ConverseStream through the gateway", () => {
  test("Converse: the answer as Bedrock gave it, the call signed with SigV4 upstream, the exact cost in the ledger", async () => {
    const sdk = client(signing, await virtualKey(signing, "converse"));
    const ids = watchCallIds(sdk);
    const before = fake.requests.length;
    const out = await sdk.send(new ConverseCommand({ modelId: US_SONNET, messages }));
    assert.equal(out.output?.message?.content?.[0]?.text, answerText());
    assert.equal(out.usage?.cacheReadInputTokens, BEDROCK_USAGE.cacheReadInputTokens);
    assert.equal(fake.requests.length, before + 1);
    const upstream = lastUpstream();
    assert.match(String(upstream.headers.authorization), /^AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE\/\d{8}\/us-east-1\/bedrock\/aws4_request/);
    assert.equal(upstream.path, `/model/${encodeURIComponent(US_SONNET)}/converse`);
    const row = await ledgerRow(ids);
    assertPriced(row, US_SONNET, CONVERSE_TOKENS, SONNET);
    assert.equal(row.team, "converse");
    // Bedrock's own request id (x-amzn-requestid), as the SDK reports it, is the ledger's.
    assert.ok(out.$metadata.requestId);
    assert.equal(row.request_id, out.$metadata.requestId);
  });

  test("ConverseStream: every event reaches the SDK; the metadata event's usage is billed", async () => {
    const sdk = client(signing, await virtualKey(signing, "converse-stream"));
    const ids = watchCallIds(sdk);
    const out = await sdk.send(new ConverseStreamCommand({ modelId: SONNET, messages }));
    let text = "";
    const kinds: string[] = [];
    let usage: unknown;
    for await (const event of out.stream!) {
      kinds.push(Object.keys(event).find((k) => (event as unknown as Record<string, unknown>)[k] !== undefined)!);
      text += event.contentBlockDelta?.delta?.text ?? "";
      usage = event.metadata?.usage ?? usage;
    }
    assert.equal(text, answerText());
    assert.deepEqual(kinds, ["messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockDelta", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"]);
    assert.deepEqual(usage, BEDROCK_USAGE);
    assertPriced(await ledgerRow(ids), SONNET, CONVERSE_TOKENS);
  });

  test("a model given as an inference profile's ARN is recorded and priced as the profile", async () => {
    const sdk = client(signing, await virtualKey(signing, "arn"));
    const ids = watchCallIds(sdk);
    const out = await sdk.send(new ConverseStreamCommand({ modelId: PROFILE_ARN, messages }));
    for await (const _event of out.stream!);
    assertPriced(await ledgerRow(ids), US_SONNET, CONVERSE_TOKENS, SONNET);
  });

  test("a global inference profile costs AWS's global rates", async () => {
    const sdk = client(signing, await virtualKey(signing, "global"));
    const ids = watchCallIds(sdk);
    await sdk.send(new ConverseCommand({ modelId: GLOBAL_SONNET, messages }));
    const row = await ledgerRow(ids);
    assertPriced(row, GLOBAL_SONNET, CONVERSE_TOKENS);
    assert.ok(BigInt(row.cost) < expectedCost(pricesOf(SONNET), CONVERSE_TOKENS));
  });

  test("upstream with a Bedrock API key instead of IAM credentials; the client's Tollgate key never leaves the gateway", async () => {
    const key = await virtualKey(keyed, "api-key");
    const sdk = client(keyed, key);
    const ids = watchCallIds(sdk);
    await sdk.send(new ConverseCommand({ modelId: US_SONNET, messages }));
    assert.equal(lastUpstream().headers.authorization, `Bearer ${BEDROCK_API_KEY}`);
    assert.ok(!JSON.stringify(lastUpstream().headers).includes(key));
    assertPriced(await ledgerRow(ids), US_SONNET, CONVERSE_TOKENS, SONNET);
  });

  test("temporary IAM credentials: the session token is sent and signed", async () => {
    const sdk = client(temporary, await virtualKey(temporary, "temporary"));
    const ids = watchCallIds(sdk);
    await sdk.send(new ConverseCommand({ modelId: US_SONNET, messages }));
    assert.equal(lastUpstream().headers["x-amz-security-token"], BEDROCK_TEMPORARY_CREDENTIALS.sessionToken);
    assert.match(String(lastUpstream().headers.authorization), /SignedHeaders=[^,]*x-amz-security-token/);
    assertPriced(await ledgerRow(ids), US_SONNET, CONVERSE_TOKENS, SONNET);
  });
});

describe("InvokeModel for Claude through the gateway", () => {
  test("InvokeModel: Anthropic's usage in the body is billed, at the Bedrock model's price, not the body's model name", async () => {
    const sdk = client(signing, await virtualKey(signing, "invoke"));
    const ids = watchCallIds(sdk);
    const out = await sdk.send(new InvokeModelCommand({ modelId: US_SONNET, body: claudeBody }));
    const answer = JSON.parse(new TextDecoder().decode(out.body)) as { usage: unknown; content: { text: string }[] };
    assert.deepEqual(answer.usage, BEDROCK_ANTHROPIC_USAGE);
    assert.equal(answer.content[0]?.text, answerText());
    assertPriced(await ledgerRow(ids), US_SONNET, INVOKE_TOKENS, SONNET);
  });

  test("InvokeModelWithResponseStream: Claude's events arrive intact; their usage is billed", async () => {
    const sdk = client(keyed, await virtualKey(keyed, "invoke-stream"));
    const ids = watchCallIds(sdk);
    const out = await sdk.send(new InvokeModelWithResponseStreamCommand({ modelId: US_SONNET, body: claudeBody }));
    const types: string[] = [];
    let text = "";
    for await (const part of out.body!) {
      const event = JSON.parse(new TextDecoder().decode(part.chunk?.bytes)) as { type: string; delta?: { text?: string } };
      types.push(event.type);
      text += event.type === "content_block_delta" ? (event.delta?.text ?? "") : "";
    }
    assert.equal(text, answerText());
    assert.equal(types[0], "message_start");
    assert.equal(types.at(-1), "message_stop");
    assertPriced(await ledgerRow(ids), US_SONNET, INVOKE_TOKENS, SONNET);
  });
});

describe("refusals the SDK understands", () => {
  test("a wrong Tollgate key is refused before Bedrock is called", async () => {
    const before = fake.requests.length;
    const err = (await client(signing, "tlg_not-a-real-key-0123456789", 1)
      .send(new ConverseCommand({ modelId: US_SONNET, messages }))
      .catch((e: unknown) => e)) as BedrockRuntimeServiceException;
    assert.equal(err.name, "UnrecognizedClientException");
    assert.equal(err.$metadata.httpStatusCode, 401);
    assert.match(err.message, /Tollgate key is not valid/);
    assert.equal(fake.requests.length, before);
  });

  test("an upstream error keeps Bedrock's name for it", async () => {
    fake.setNext({ status: 400, message: "The model returned the following errors: bad request" });
    const err = (await client(signing, await virtualKey(signing, "upstream-error"), 1)
      .send(new ConverseCommand({ modelId: US_SONNET, messages }))
      .catch((e: unknown) => e)) as BedrockRuntimeServiceException;
    assert.equal(err.name, "ValidationException");
    assert.equal(err.message, "The model returned the following errors: bad request");
  });

  test("a hard budget with room left holds back what Converse's maxTokens allows, not the model's whole context window", async () => {
    const team = "bedrock-room";
    const res = await signing.admin("/api/budgets", { method: "POST", body: JSON.stringify({ name: team, scope: { team }, amount_usd: "1", period: "month", mode: "hard" }) });
    assert.equal(res.status, 201, await res.clone().text());
    const sdk = client(signing, await virtualKey(signing, team), 1);
    // Uncapped, Claude Sonnet 4.5 could write 200,000 tokens at $16.50 a million: more than the $1 budget.
    let refusal: BedrockRuntimeServiceException | undefined;
    await waitFor("the budget to hold back an uncapped call", async () => {
      refusal = (await sdk.send(new ConverseCommand({ modelId: US_SONNET, messages })).catch((e: unknown) => e)) as BedrockRuntimeServiceException;
      return refusal?.name === "ThrottlingException";
    });
    assert.match(refusal!.message, /could cost up to \$3\.3\d*; set a lower max_tokens/);
    const capped = await sdk.send(new ConverseCommand({ modelId: US_SONNET, messages, inferenceConfig: { maxTokens: 300 } }));
    assert.equal(capped.output?.message?.content?.[0]?.text, answerText());
  });

  test("an exhausted hard budget: a ThrottlingException carrying the budget, promptly, with the SDK's default retries", async () => {
    const team = "bedrock-capped";
    const res = await signing.admin("/api/budgets", { method: "POST", body: JSON.stringify({ name: team, scope: { team }, amount_usd: "0.01", period: "month", mode: "hard" }) });
    assert.equal(res.status, 201, await res.clone().text());
    const ingest = await signing.ingestKey();
    const seeded = await fetch(`${signing.base}/v1/usage`, {
      method: "POST",
      headers: { authorization: `Bearer ${ingest}`, "content-type": "application/json" },
      body: JSON.stringify({ id: "bedrock-capped-seed", timestamp: new Date().toISOString(), provider: "bedrock", model: SONNET, usage: { inputTokens: 1_000_000, outputTokens: 0 }, team }),
    });
    assert.equal(seeded.status, 200, await seeded.clone().text());
    const key = await virtualKey(signing, team);
    const probe = client(signing, key, 1);
    await waitFor("the budget to be exhausted at the gateway", async () => {
      const e = await probe.send(new ConverseCommand({ modelId: US_SONNET, messages })).catch((err: unknown) => err);
      return (e as Error).name === "ThrottlingException";
    });
    const before = fake.requests.length;
    const started = performance.now();
    const err = (await client(signing, key)
      .send(new ConverseCommand({ modelId: US_SONNET, messages }))
      .catch((e: unknown) => e)) as BedrockRuntimeServiceException & Record<string, unknown>;
    const seconds = (performance.now() - started) / 1000;
    assert.equal(err.name, "ThrottlingException");
    assert.equal(err.$metadata.httpStatusCode, 429);
    assert.match(err.message, /budget bedrock-capped is exhausted/);
    assert.equal(err.code, "budget_exceeded");
    assert.equal(err.budget, team);
    assert.equal(err.amount_usd, "0.01");
    // Three attempts with the SDK's throttling backoff (under 3 s of waiting in all); a retry-after would
    // have stretched each of the two waits by 5 s toward a reset next month.
    assert.ok(seconds < 8, `the SDK gave up after ${seconds.toFixed(1)} s`);
    assert.equal(fake.requests.length, before, "a refused call never reaches Bedrock");
  });
});
