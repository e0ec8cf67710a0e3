import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import type { Database } from "../src/db/connection.ts";
import { ANTHROPIC_KEY, startFakeAnthropic } from "./fakes/anthropic.ts";
import { answerText, type FakeUpstream, type RecordedRequest } from "./fakes/fake-upstream.ts";
import { GEMINI_KEY, startFakeGemini } from "./fakes/gemini.ts";
import { OPENAI_KEY, startFakeOpenAI } from "./fakes/openai.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { proxyRow, tokenColumns } from "./helpers/proxy-ledger.ts";

/*
 * Pass-through mode (TOLLGATE_ALLOW_PROVIDER_KEYS=true): a client that presents the provider's own
 * key has it forwarded as it is, and is attributed by its x-tollgate-* headers alone. Two gateways
 * share one ledger: `passThrough` with the option on and no provider keys of its own (so a call can
 * only succeed with the client's key), `strict` with the default and the provider keys configured.
 */

let database: Database;
let openaiFake: FakeUpstream;
let anthropicFake: FakeUpstream;
let geminiFake: FakeUpstream;
let passThrough: TestGateway;
let strict: TestGateway;

before(async () => {
  database = await openTestDatabase();
  [openaiFake, anthropicFake, geminiFake] = await Promise.all([startFakeOpenAI(), startFakeAnthropic(), startFakeGemini()]);
  const upstreams = { OPENAI_BASE_URL: openaiFake.url, ANTHROPIC_BASE_URL: anthropicFake.url, GEMINI_BASE_URL: geminiFake.url };
  passThrough = await startTestGateway({ ...upstreams, TOLLGATE_ALLOW_PROVIDER_KEYS: "true" }, { database });
  strict = await startTestGateway({ ...upstreams, OPENAI_API_KEY: OPENAI_KEY, ANTHROPIC_API_KEY: ANTHROPIC_KEY, GEMINI_API_KEY: GEMINI_KEY }, { database });
});
after(async () => {
  await passThrough?.close();
  await strict?.close();
  await Promise.all([openaiFake?.close(), anthropicFake?.close(), geminiFake?.close()]);
  await database?.close();
});

const ATTRIBUTION = {
  "x-tollgate-team": "growth",
  "x-tollgate-project": "checkout",
  "x-tollgate-feature": "summary",
  "x-tollgate-user": "u-42",
  "x-tollgate-session": "s-7",
  "x-tollgate-tags": "env=prod,tier=free",
};
const ATTRIBUTED = { team: "growth", project: "checkout", feature: "summary", user: "u-42", session: "s-7", tags: { env: "prod", tier: "free" }, api_key_id: null };

const OPENAI_TOKENS = ["1200", "1024", "0", "0", "300", "128"];
const chat = { model: "gpt-4o", messages: [{ role: "user" as const, content: "hi" }] };

/** Everything the upstream was sent, as one text, to look for a credential anywhere in it. */
const everything = (r: RecordedRequest) => JSON.stringify([r.path, r.headers, r.body]);

async function virtualKey(t: TestGateway, attribution: Record<string, string> = {}): Promise<{ key: string; id: string }> {
  const res = await t.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: `k-${Math.random()}`, ...attribution }) });
  assert.equal(res.status, 201);
  return (await res.json()) as { key: string; id: string };
}

describe("pass-through on: the client's own provider key", () => {
  test("OpenAI SDK: the key reaches the upstream unchanged; attribution from headers alone; whole and streamed calls recorded", async () => {
    const client = new OpenAI({ baseURL: `${passThrough.base}/openai/v1`, apiKey: OPENAI_KEY, maxRetries: 0, defaultHeaders: ATTRIBUTION });
    const sentBefore = openaiFake.requests.length;

    const { data, response } = await client.chat.completions.create(chat).withResponse();
    assert.equal(data.choices[0]!.message.content, answerText());
    const upstream = openaiFake.requests.at(-1)!;
    assert.equal(upstream.headers.authorization, `Bearer ${OPENAI_KEY}`, "the client's key, as it sent it");
    assert.deepEqual(Object.keys(upstream.headers).filter((h) => h.startsWith("x-tollgate-")), [], "Tollgate headers stay at the gateway");
    assert.equal(response.headers.get("x-tollgate-cost-usd"), "0.00472");
    const row = await proxyRow(database, response.headers.get("x-tollgate-request-id")!);
    assert.deepEqual({ team: row.team, project: row.project, feature: row.feature, user: row.user, session: row.session, tags: row.tags, api_key_id: row.api_key_id }, ATTRIBUTED);
    assert.equal(row.status, "ok");
    assert.deepEqual(tokenColumns(row), OPENAI_TOKENS);
    assert.equal(row.request_id, response.headers.get("x-request-id"), "the upstream's request id is kept");

    // A stream: the gateway still asks for usage on the client's key, and still hides the usage chunk.
    const stream = await client.chat.completions.create({ ...chat, stream: true }).withResponse();
    let text = "";
    for await (const chunk of stream.data) text += chunk.choices[0]?.delta.content ?? "";
    assert.equal(text, answerText());
    assert.equal(openaiFake.requests.at(-1)!.headers.authorization, `Bearer ${OPENAI_KEY}`);
    const streamed = await proxyRow(database, stream.response.headers.get("x-tollgate-request-id")!);
    assert.deepEqual(tokenColumns(streamed), OPENAI_TOKENS);
    assert.equal(streamed.team, "growth");
    assert.equal(openaiFake.requests.length, sentBefore + 2);
  });

  test("Anthropic SDK: its key arrives as x-api-key and nowhere else; recorded with the header attribution", async () => {
    const client = new Anthropic({ baseURL: `${passThrough.base}/anthropic`, apiKey: ANTHROPIC_KEY, maxRetries: 0, defaultHeaders: ATTRIBUTION });
    const { data, response } = await client.messages.create({ model: "claude-sonnet-4-6", max_tokens: 100, messages: [{ role: "user", content: "hi" }] }).withResponse();
    assert.equal(data.content[0]?.type === "text" && data.content[0].text, answerText());
    const upstream = anthropicFake.requests.at(-1)!;
    assert.equal(upstream.headers["x-api-key"], ANTHROPIC_KEY);
    assert.equal(upstream.headers.authorization, undefined, "one credential header upstream");
    const row = await proxyRow(database, response.headers.get("x-tollgate-request-id")!);
    assert.equal(row.provider, "anthropic");
    assert.equal(row.api_key_id, null);
    assert.equal(row.team, "growth");
    assert.deepEqual(tokenColumns(row), ["15050", "12000", "3000", "2000", "420", "0"]);
  });

  test("Gemini: the client's key in ?key= reaches the upstream in its header, out of the URL", async () => {
    const res = await fetch(`${passThrough.base}/gemini/v1beta/models/gemini-2.5-pro:generateContent?key=${GEMINI_KEY}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...ATTRIBUTION },
      body: JSON.stringify({ contents: [{ role: "user", parts: [{ text: "hi" }] }] }),
    });
    assert.equal(res.status, 200);
    const upstream = geminiFake.requests.at(-1)!;
    assert.equal(upstream.headers["x-goog-api-key"], GEMINI_KEY);
    assert.equal(upstream.path, "/v1beta/models/gemini-2.5-pro:generateContent");
    const row = await proxyRow(database, res.headers.get("x-tollgate-request-id")!);
    assert.equal(row.model, "gemini-2.5-pro");
    assert.equal(row.team, "growth");
    assert.equal(row.api_key_id, null);
  });

  test("a tlg_ key is never passed through: an unknown or revoked one is refused and the upstream sees nothing", async () => {
    const revoked = await virtualKey(passThrough);
    assert.equal((await passThrough.admin(`/api/keys/${revoked.id}`, { method: "DELETE" })).status, 200);
    const sentBefore = openaiFake.requests.length;
    for (const key of ["tlg_not-a-real-key-0123456789", revoked.key]) {
      const client = new OpenAI({ baseURL: `${passThrough.base}/openai/v1`, apiKey: key, maxRetries: 0 });
      const err = await client.chat.completions.create(chat).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof OpenAI.AuthenticationError, `${key.slice(0, 8)}… is refused`);
      assert.equal((err.error as { code?: string }).code, "invalid_api_key");
    }
    assert.equal(openaiFake.requests.length, sentBefore);
  });
});

describe("pass-through off (the default)", () => {
  test("the provider's own key gets a 401 in each provider's error shape; the upstream sees nothing", async () => {
    const sent = () => [openaiFake.requests.length, anthropicFake.requests.length, geminiFake.requests.length];
    const sentBefore = sent();

    const openai = new OpenAI({ baseURL: `${strict.base}/openai/v1`, apiKey: OPENAI_KEY, maxRetries: 0, defaultHeaders: ATTRIBUTION });
    const openaiErr = await openai.chat.completions.create(chat).then(() => null, (e: unknown) => e);
    assert.ok(openaiErr instanceof OpenAI.AuthenticationError);
    assert.equal(openaiErr.status, 401);
    assert.deepEqual(Object.keys(openaiErr.error as object).sort(), ["code", "message", "param", "type"]);
    assert.equal((openaiErr.error as { code: string }).code, "invalid_api_key");

    const anthropic = new Anthropic({ baseURL: `${strict.base}/anthropic`, apiKey: ANTHROPIC_KEY, maxRetries: 0 });
    const anthropicErr = await anthropic.messages.create({ model: "claude-sonnet-4-6", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }).then(() => null, (e: unknown) => e);
    assert.ok(anthropicErr instanceof Anthropic.AuthenticationError);
    assert.deepEqual((anthropicErr.error as { type: string; error: { type: string } }).type, "error");
    assert.equal((anthropicErr.error as { error: { type: string } }).error.type, "authentication_error");

    const gemini = await fetch(`${strict.base}/gemini/v1beta/models/gemini-2.5-pro:generateContent?key=${GEMINI_KEY}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ contents: [{ role: "user", parts: [{ text: "hi" }] }] }),
    });
    assert.equal(gemini.status, 401);
    const geminiErr = ((await gemini.json()) as { error: { code: number; status: string } }).error;
    assert.deepEqual([geminiErr.code, geminiErr.status], [401, "UNAUTHENTICATED"]);

    assert.deepEqual(sent(), sentBefore, "no upstream saw any of them");
  });

  test("Gemini ?key= with a Tollgate key: the upstream gets the gateway's key, the tlg_ key goes nowhere", async () => {
    const { key, id } = await virtualKey(strict, { team: "search" });
    const body = JSON.stringify({ contents: [{ role: "user", parts: [{ text: "hi" }] }] });
    const base = `${strict.base}/gemini/v1beta/models/gemini-2.5-flash`;

    const streamed = await fetch(`${base}:streamGenerateContent?alt=sse&key=${encodeURIComponent(key)}`, { method: "POST", headers: { "content-type": "application/json" }, body });
    assert.equal(streamed.status, 200);
    const text = await streamed.text();
    assert.match(text, /usageMetadata/);
    const upstream = geminiFake.requests.at(-1)!;
    assert.equal(upstream.path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "key= is removed, the other parameters kept");
    assert.equal(upstream.headers["x-goog-api-key"], GEMINI_KEY);
    assert.ok(!everything(upstream).includes(key) && !everything(upstream).includes("tlg_"), "the Tollgate key is in neither the URL, the headers nor the body");
    const row = await proxyRow(database, streamed.headers.get("x-tollgate-request-id")!);
    assert.deepEqual([row.api_key_id, row.team, row.model, row.status], [id, "search", "gemini-2.5-flash", "ok"]);
    assert.deepEqual(tokenColumns(row), ["2000", "1500", "0", "0", "430", "180"]);
    // Gemini sends no request-id header: the row keeps the answer's own responseId.
    assert.equal(row.request_id, /"responseId":"([^"]+)"/.exec(text)?.[1]);

    // The same key in the header Google's SDKs use is swapped the same way.
    const inHeader = await fetch(`${base}:generateContent`, { method: "POST", headers: { "content-type": "application/json", "x-goog-api-key": key }, body });
    assert.equal(inHeader.status, 200);
    const whole = (await inHeader.json()) as { responseId: string };
    assert.equal((await proxyRow(database, inHeader.headers.get("x-tollgate-request-id")!)).request_id, whole.responseId);
    const second = geminiFake.requests.at(-1)!;
    assert.equal(second.headers["x-goog-api-key"], GEMINI_KEY);
    assert.ok(!everything(second).includes("tlg_"));
  });
});

describe("x-tollgate-tags keys an object cannot hold", () => {
  test("a __proto__ tag is refused with a precise 400 that says not to retry; constructor and prototype are recorded as tags", async () => {
    const { key } = await virtualKey(strict);
    const sentBefore = openaiFake.requests.length;
    const refused = new OpenAI({ baseURL: `${strict.base}/openai/v1`, apiKey: key, maxRetries: 2, defaultHeaders: { "x-tollgate-tags": "env=prod,__proto__=x" } });
    const err = await refused.chat.completions.create(chat).then(
      () => assert.fail("the call went through"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof OpenAI.BadRequestError, `a 400, not ${String(err)}`);
    assert.equal(err.code, "invalid_request");
    assert.match(err.message, /x-tollgate-tags: __proto__ cannot be a tag key; choose another name/);
    assert.equal(err.headers?.get("x-should-retry"), "false");
    assert.equal(openaiFake.requests.length, sentBefore, "refused before the upstream, and not retried");

    const kept = new OpenAI({ baseURL: `${strict.base}/openai/v1`, apiKey: key, maxRetries: 0, defaultHeaders: { "x-tollgate-tags": "constructor=a,prototype=b,toString=c" } });
    const { response } = await kept.chat.completions.create(chat).withResponse();
    const row = await proxyRow(database, response.headers.get("x-tollgate-request-id")!);
    assert.deepEqual(row.tags, { constructor: "a", prototype: "b", toString: "c" });
  });
});
