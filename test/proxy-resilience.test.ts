import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { type IncomingMessage, type ServerResponse, request } from "node:http";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { sql } from "drizzle-orm";
import OpenAI from "openai";
import type { Database } from "../src/db/connection.ts";
import { within } from "../src/deadline.ts";
import { ANTHROPIC_KEY, startFakeAnthropic } from "./fakes/anthropic.ts";
import { answerText, type FakeUpstream, type ReplyProgress } from "./fakes/fake-upstream.ts";
import { OPENAI_KEY, startFakeOpenAI } from "./fakes/openai.ts";
import { NEEDS_POSTGRES_TO_CUT, throughCutter } from "./helpers/db-outage.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { proxyRow, proxyRows, tokenColumns } from "./helpers/proxy-ledger.ts";
import { assertRollupsMatchEvents } from "./helpers/rollups.ts";
import { HANG_MS, WAIT_MS, waitFor } from "./helpers/wait.ts";

/*
 * What the proxy does when something other than the happy path happens: clients that leave or read
 * slowly, upstreams that hang, break off, fail or cannot be reached, and a ledger database that goes
 * away under traffic. Real SDKs against the real gateway against fake providers; the fakes report
 * what reached them, so the far side of the gateway is checked too. Gateways with different
 * settings share one ledger.
 */

let database: Database;
let openaiFake: FakeUpstream;
let anthropicFake: FakeUpstream;
/** TOLLGATE_ON_DISCONNECT=cancel, default upstream timeout (10 minutes). */
let cancelling: TestGateway;
/** TOLLGATE_UPSTREAM_TIMEOUT_MS=1000 (the smallest allowed), default drain; plus an upstream nothing listens on. */
let impatient: TestGateway;
let cancellingKey: string;
let impatientKey: string;

const UPSTREAM_TIMEOUT_MS = 1000;
const OPENAI_TOKENS = ["1200", "1024", "0", "0", "300", "128"];
const ZERO = ["0", "0", "0", "0", "0", "0"];
const chat = { model: "gpt-4o", messages: [{ role: "user" as const, content: "hi" }] };

async function virtualKey(t: TestGateway): Promise<string> {
  const res = await t.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: `k-${Math.random()}`, team: "search" }) });
  return ((await res.json()) as { key: string }).key;
}

before(async () => {
  database = await openTestDatabase();
  [openaiFake, anthropicFake] = await Promise.all([startFakeOpenAI(), startFakeAnthropic()]);
  const upstreams = { OPENAI_BASE_URL: openaiFake.url, OPENAI_API_KEY: OPENAI_KEY, ANTHROPIC_BASE_URL: anthropicFake.url, ANTHROPIC_API_KEY: ANTHROPIC_KEY };
  cancelling = await startTestGateway({ ...upstreams, TOLLGATE_ON_DISCONNECT: "cancel" }, { database });
  impatient = await startTestGateway(
    { ...upstreams, TOLLGATE_UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS), TOLLGATE_PROVIDERS: "dead=http://127.0.0.1:1", DEAD_API_KEY: "sk-dead-0123456789" },
    { database },
  );
  [cancellingKey, impatientKey] = await Promise.all([virtualKey(cancelling), virtualKey(impatient)]);
});
after(async () => {
  await cancelling?.close();
  await impatient?.close();
  await Promise.all([openaiFake?.close(), anthropicFake?.close()]);
  await database?.close();
});

const openai = (t: TestGateway, key: string) => new OpenAI({ baseURL: `${t.base}/openai/v1`, apiKey: key, maxRetries: 0 });

/** Waits for the fake to be done with an answer (finished or hung up on), failing instead of hanging. */
async function settled(reply: ReplyProgress, what: string, timeoutMs = WAIT_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new assert.AssertionError({ message: `the upstream's connection was still open ${timeoutMs} ms later: ${what}` })), timeoutMs);
  });
  try {
    await Promise.race([reply.settled, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

describe("client disconnects with TOLLGATE_ON_DISCONNECT=cancel", () => {
  test("OpenAI stream: the upstream request is cut off at once; recorded as aborted at an estimate (the model, no usage yet)", { timeout: HANG_MS }, async () => {
    const deltas = 100;
    openaiFake.setNext({ deltas, delayMs: 25 });
    const abort = new AbortController();
    const { data: stream, response } = await openai(cancelling, cancellingKey).chat.completions.create({ ...chat, stream: true }, { signal: abort.signal }).withResponse();
    const id = response.headers.get("x-tollgate-request-id")!;
    let text = "";
    // The SDK ends an aborted stream's iteration quietly.
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (text) abort.abort();
    }
    // The SDK may have a chunk or two in hand when it stops (a busy machine): what matters is that it stopped.
    assert.match(text, /^Hello/);

    const reply = openaiFake.requests.at(-1)!.reply;
    await settled(reply, "cancel mode must close it when the client leaves");
    assert.equal(reply.closedEarly, true, "the gateway hung up on the upstream");
    assert.ok(reply.frames < deltas / 2, `the upstream stopped soon after the client left (${reply.frames} of ${deltas + 3} frames sent)`);

    const row = await proxyRow(database, id);
    assert.equal(row.status, "aborted");
    assert.equal(row.model, "gpt-4o", "the model named by the first chunk");
    // Chat streams report usage only in their last chunk, which a cancelled call never gets:
    // OpenAI still bills the prompt and what it generated, so the call is priced at the gateway's
    // estimate ("hi" is one token; "Hello" and what else was read before the cut), marked so.
    assert.equal(row.estimated, true);
    assert.equal(row.priced, true);
    assert.equal(row.input_tokens, "1");
    assert.ok(Number(row.output_tokens) >= 1, `output estimated from what was relayed (${row.output_tokens})`);
    assert.notEqual(row.cost, "0");
    assert.match(row.request_id ?? "", /^req_/);
  });

  test("Anthropic stream: cut off too; the input-side usage message_start gave is kept", { timeout: HANG_MS }, async () => {
    anthropicFake.setNext({ deltas: 100, delayMs: 25 });
    const client = new Anthropic({ baseURL: `${cancelling.base}/anthropic`, apiKey: cancellingKey, maxRetries: 0 });
    const abort = new AbortController();
    const { data: stream, response } = await client.messages
      .create({ model: "claude-sonnet-4-6", max_tokens: 1000, messages: [{ role: "user", content: "hi" }], stream: true }, { signal: abort.signal })
      .withResponse();
    const id = response.headers.get("x-tollgate-request-id")!;
    let deltas = 0;
    for await (const event of stream) {
      if (event.type === "content_block_delta") deltas++;
      abort.abort();
    }
    assert.equal(deltas, 0, "the client left before any text");
    const reply = anthropicFake.requests.at(-1)!.reply;
    await settled(reply, "cancel mode must close it when the client leaves");
    assert.equal(reply.closedEarly, true);

    const row = await proxyRow(database, id);
    assert.equal(row.status, "aborted");
    // 50 uncached + 12,000 cache reads + 3,000 cache writes (2,000 for an hour), exactly as message_start
    // reported them; output as far as message_start counted it (1), or, where the gateway had read
    // more (the thinking block) before the cut, its estimate of that, marked as one.
    const [input, cached, writes, writes1h, output] = tokenColumns(row);
    assert.deepEqual([input, cached, writes, writes1h], ["15050", "12000", "3000", "2000"]);
    assert.ok(Number(output) >= 1);
    assert.equal(row.estimated, Number(output) > 1, `output ${output}`);
    assert.notEqual(row.cost, "0", "the prompt it was charged for is priced");
  });

  test("a gzip-compressed stream is cut off upstream as well", { timeout: HANG_MS }, async () => {
    openaiFake.setNext({ deltas: 100, delayMs: 25, gzip: true });
    const abort = new AbortController();
    const res = await fetch(`${cancelling.base}/openai/v1/chat/completions`, {
      method: "POST",
      signal: abort.signal,
      headers: { authorization: `Bearer ${cancellingKey}`, "content-type": "application/json", "accept-encoding": "gzip" },
      body: JSON.stringify({ ...chat, stream: true }),
    });
    const id = res.headers.get("x-tollgate-request-id")!;
    await res.body!.getReader().read();
    abort.abort();
    const reply = openaiFake.requests.at(-1)!.reply;
    await settled(reply, "the compressed body must be closed with its decompressor");
    assert.equal(reply.closedEarly, true);
    assert.ok(reply.frames < 50, `${reply.frames} frames sent`);
    assert.equal((await proxyRow(database, id)).status, "aborted");
  });
});

describe("a client that leaves before the upstream's answer begins", () => {
  /** Sends a streamed chat call and hangs up once the upstream has it, before its head; the call's ledger row, found by its feature. */
  async function leaveEarly(t: TestGateway, key: string): Promise<{ reply: ReplyProgress; row: () => Promise<{ status: string; output_tokens: string; estimated: boolean }> }> {
    const feature = `left-early-${randomUUID()}`;
    const before = openaiFake.requests.length;
    const req = request(`${t.base}/openai/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "x-tollgate-feature": feature },
    });
    req.on("error", () => {});
    req.end(JSON.stringify({ ...chat, stream: true }));
    await waitFor("the call to reach the upstream", () => openaiFake.requests.length > before);
    req.destroy();
    const reply = openaiFake.requests.at(-1)!.reply;
    const row = async () => {
      type Row = { status: string; output_tokens: string; estimated: boolean };
      let found: Row[] = [];
      await waitFor(`the ledger row of the call with feature ${feature}`, async () => {
        found = await database.rows<Row>(sql`select status, output_tokens::text, estimated from usage_events where source = 'proxy' and feature = ${feature}`);
        return found.length > 0;
      });
      assert.equal(found.length, 1, "recorded once");
      return found[0]!;
    };
    return { reply, row };
  }

  test("cancel: the upstream is hung up on as its answer begins, the call recorded as aborted", { timeout: HANG_MS }, async () => {
    openaiFake.setNext({ headDelayMs: 300, deltas: 100, delayMs: 10 });
    const { reply, row } = await leaveEarly(cancelling, cancellingKey);
    await settled(reply, "cancel mode must close it once the answer begins");
    assert.equal(reply.closedEarly, true, "the gateway hung up on the upstream");
    assert.equal((await row()).status, "aborted");
  });

  test("drain: the answer is read to its end for its usage, the call recorded as aborted", { timeout: HANG_MS }, async () => {
    openaiFake.setNext({ headDelayMs: 300, deltas: 20, delayMs: 5 });
    const { reply, row } = await leaveEarly(impatient, impatientKey);
    await settled(reply, "drain mode reads the answer to its end");
    assert.equal(reply.finished, true);
    const recorded = await row();
    assert.equal(recorded.status, "aborted");
    assert.equal(recorded.estimated, false, "the usage the stream reported at its end");
    assert.equal(recorded.output_tokens, "300");
  });
});

describe("upstream failures", () => {
  test("an upstream that never answers: a 504 in each provider's shape after TOLLGATE_UPSTREAM_TIMEOUT_MS, recorded as an error, upstream hung up on", { timeout: HANG_MS }, async () => {
    openaiFake.setNext({ hang: true });
    anthropicFake.setNext({ hang: true });
    const started = performance.now();
    const anthropic = new Anthropic({ baseURL: `${impatient.base}/anthropic`, apiKey: impatientKey, maxRetries: 0 });
    const [openaiErr, anthropicErr] = await Promise.all([
      openai(impatient, impatientKey).chat.completions.create(chat).then(() => null, (e: unknown) => e),
      anthropic.messages.create({ model: "claude-sonnet-4-6", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }).then(() => null, (e: unknown) => e),
    ]);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= UPSTREAM_TIMEOUT_MS - 50 && elapsed < UPSTREAM_TIMEOUT_MS + 4000, `answered after ${Math.round(elapsed)} ms`);

    assert.ok(openaiErr instanceof OpenAI.APIError && openaiErr.status === 504, String(openaiErr));
    assert.deepEqual(openaiErr.error, { message: "the provider did not answer in time", type: "server_error", param: null, code: "upstream_timeout" });
    assert.ok(anthropicErr instanceof Anthropic.APIError && anthropicErr.status === 504, String(anthropicErr));
    assert.deepEqual(anthropicErr.error, { type: "error", error: { type: "timeout_error", message: "the provider did not answer in time" } });

    for (const [err, fake, model] of [
      [openaiErr, openaiFake, "gpt-4o"],
      [anthropicErr, anthropicFake, "claude-sonnet-4-6"],
    ] as const) {
      const row = await proxyRow(database, err.headers!.get("x-tollgate-request-id")!);
      assert.deepEqual([row.status, row.model, row.request_id], ["error", model, null]);
      assert.deepEqual(tokenColumns(row), ZERO);
      const reply = fake.requests.at(-1)!.reply;
      await settled(reply, "a timed-out request must not be left open");
      assert.equal(reply.closedEarly, true);
    }
  });

  for (const gzip of [false, true]) {
    test(`a stream that stalls mid-way${gzip ? " (gzip)" : ""}: the client's stream fails instead of hanging or ending as if whole, recorded as an error`, { timeout: HANG_MS }, async () => {
      openaiFake.setNext({ deltas: 3, delayMs: UPSTREAM_TIMEOUT_MS * 3, gzip });
      const { data: stream, response } = await openai(impatient, impatientKey)
        .chat.completions.create({ ...chat, stream: true }, { signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS * 6) })
        .withResponse();
      const id = response.headers.get("x-tollgate-request-id")!;
      let chunks = 0;
      const err = await (async () => {
        for await (const _ of stream) chunks++;
      })().then(() => null, (e: unknown) => e);
      assert.ok(err instanceof Error, "the client learns the stream broke off");
      assert.ok(!(err instanceof OpenAI.APIUserAbortError), `the gateway ended it, not the client's own deadline (${String(err)})`);
      assert.equal(chunks, 1, "what came before the stall was delivered");

      const row = await proxyRow(database, id);
      assert.equal(row.status, "error", "a broken-off answer is not a success");
      assert.equal(row.model, "gpt-4o");
      const reply = openaiFake.requests.at(-1)!.reply;
      await settled(reply, "the stalled upstream must be hung up on");
      assert.equal(reply.closedEarly, true);
    });
  }

  test("an upstream 500 reaches the client verbatim and is recorded as an error with the upstream's request id", async () => {
    openaiFake.setNext({ status: 500 });
    const res = await fetch(`${impatient.base}/openai/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${impatientKey}`, "content-type": "application/json" },
      body: JSON.stringify(chat),
    });
    assert.equal(res.status, 500);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.equal(res.headers.get("openai-processing-ms"), "12", "the upstream's own headers pass");
    assert.equal(
      await res.text(),
      '{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}',
    );
    const row = await proxyRow(database, res.headers.get("x-tollgate-request-id")!);
    assert.equal(row.status, "error");
    assert.equal(row.request_id, res.headers.get("x-request-id"));
    assert.deepEqual(tokenColumns(row), ZERO);

    // The same for a client that asked for a stream: the SDK sees the upstream's own error.
    openaiFake.setNext({ status: 500, message: "upstream exploded" });
    const err = await openai(impatient, impatientKey).chat.completions.create({ ...chat, stream: true }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof OpenAI.InternalServerError);
    assert.equal(err.message, "500 upstream exploded");
    assert.equal((await proxyRow(database, err.headers!.get("x-tollgate-request-id")!)).status, "error");
  });

  // With content-length the answer is gathered from the connection; without, read from undici's body stream.
  for (const chunked of [false, true]) {
    test(`a whole JSON answer held ${chunked ? "without" : "with"} content-length: priced in a header and recorded; broken off, a 502 recorded as an error`, async () => {
      openaiFake.setNext({ chunked }, { chunked, cutAfter: 40 });
      const { data, response } = await openai(impatient, impatientKey).chat.completions.create(chat).withResponse();
      assert.equal(data.choices[0]!.message.content, answerText());
      assert.ok(Number(response.headers.get("x-tollgate-cost-usd")) > 0, "the cost rides in a header");
      const whole = await proxyRow(database, response.headers.get("x-tollgate-request-id")!);
      assert.equal(whole.status, "ok");
      assert.deepEqual(tokenColumns(whole), OPENAI_TOKENS);

      const err = await openai(impatient, impatientKey).chat.completions.create(chat).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof OpenAI.APIError && err.status === 502, String(err));
      assert.equal((err.error as { code: string }).code, "upstream_interrupted");
      const cut = await proxyRow(database, err.headers!.get("x-tollgate-request-id")!);
      assert.deepEqual([cut.status, cut.model], ["error", "gpt-4o"]);
      assert.deepEqual(tokenColumns(cut), ZERO);
    });
  }

  test("an upstream nothing listens on: a 502 in the provider's shape, recorded as an error", async () => {
    const client = new OpenAI({ baseURL: `${impatient.base}/dead/v1`, apiKey: impatientKey, maxRetries: 0 });
    const err = await client.chat.completions.create({ ...chat, model: "grok-4" }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof OpenAI.APIError && err.status === 502, String(err));
    assert.equal((err.error as { code: string }).code, "upstream_unreachable");
    const row = await proxyRow(database, err.headers!.get("x-tollgate-request-id")!);
    assert.deepEqual([row.provider, row.model, row.status], ["dead", "grok-4", "error"]);
  });
});

describe("a slow client on a large stream", () => {
  test("backpressure: the gateway queues next to nothing for a client that does not read, the upstream is held, and the whole stream arrives in the end", { timeout: HANG_MS }, async () => {
    const deltas = 10_000;
    const deltaBytes = 4096;
    openaiFake.setNext({ deltas, deltaBytes });
    const streamBytes = deltas * deltaBytes; // 41 MB of text, more on the wire
    /** The most the gateway may hold in memory for its client: a few socket chunks, against a 41 MB stream. */
    const queueLimit = 1024 * 1024;

    // The gateway's own response to this client, seen from its server: its writableLength is what
    // the gateway has queued in memory for the client (the response's buffer and its socket's).
    const gatewayResponse = new Promise<ServerResponse>((resolve) => cancelling.server.once("request", (_req: IncomingMessage, res: ServerResponse) => resolve(res)));
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(`${cancelling.base}/openai/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${cancellingKey}`, "content-type": "application/json" },
      });
      req.on("response", resolve).on("error", reject);
      req.end(JSON.stringify({ ...chat, stream: true }));
    });
    response.pause();
    assert.equal(response.statusCode, 200);
    const reply = openaiFake.requests.at(-1)!.reply;
    const toClient = await gatewayResponse;
    let mostQueued = 0;
    const watch = setInterval(() => (mostQueued = Math.max(mostQueued, toClient.writableLength)), 2);

    /** Resolves when the upstream is held back (waiting for 'drain', nothing more sent for a while) or done. */
    const upstreamAtRest = async () => {
      let last = -1;
      let since = performance.now();
      await waitFor("the upstream to be held back or finish", () => {
        if (reply.bytes !== last) [last, since] = [reply.bytes, performance.now()];
        return reply.finished || (reply.blocked && performance.now() - since > 200);
      });
    };

    try {
      // The client reads nothing at first: the upstream must stop, held by TCP, not by the gateway's memory.
      await upstreamAtRest();
      assert.equal(reply.finished, false, "the upstream could not send it all into a client that reads nothing");
      assert.ok(reply.blockedWrites > 0);
      // What did get sent sits in kernel socket buffers on the two loopback hops (about 9 MB here; it depends on TCP tuning).
      assert.ok(reply.bytes < streamBytes / 2, `${(reply.bytes / 1e6).toFixed(1)} MB sent upstream of a ${(streamBytes / 1e6).toFixed(0)} MB stream`);
      assert.ok(toClient.writableLength < queueLimit, `the gateway holds ${toClient.writableLength} bytes for its client`);

      // Then it reads slowly: a few megabytes at a time, stopping in between.
      const chunks: Buffer[] = [];
      let received = 0;
      let ended = false;
      response.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        received += chunk.length;
      });
      response.on("end", () => (ended = true));
      let rounds = 0;
      while (!ended) {
        const target = received + 4 * 1024 * 1024;
        response.resume();
        await waitFor("the client to read on", () => ended || received >= target);
        response.pause();
        rounds++;
        if (ended) break;
        await upstreamAtRest();
        assert.ok(toClient.writableLength < queueLimit, `round ${rounds}: the gateway holds ${toClient.writableLength} bytes for its client`);
      }
      assert.ok(rounds >= 5, `read in ${rounds} rounds`);
      assert.equal(reply.finished, true);
      assert.ok(mostQueued < queueLimit, `at most ${mostQueued} bytes were queued for the client at any time`);

      const events = Buffer.concat(chunks).toString("utf8").split("\n\n").filter(Boolean);
      assert.equal(events.at(-1), "data: [DONE]");
      let text = "";
      for (const event of events.slice(0, -1)) {
        const chunk = JSON.parse(event.replace(/^data: /, "")) as { choices: { delta: { content?: string } }[]; usage?: unknown };
        assert.ok(chunk.choices.length > 0 && !chunk.usage, "the usage chunk the gateway asked for is not passed on");
        text += chunk.choices[0]!.delta.content ?? "";
      }
      assert.ok(text === answerText(deltas, deltaBytes), "every delta arrived, in order");
    } finally {
      clearInterval(watch);
    }

    const row = await proxyRow(database, response.headers["x-tollgate-request-id"] as string);
    assert.equal(row.status, "ok");
    assert.deepEqual(tokenColumns(row), OPENAI_TOKENS);
  });
});

describe("the ledger database goes away under proxy traffic", () => {
  test(
    "calls keep being answered, /readyz says degraded, and once it is back every call is in the ledger exactly once",
    { skip: NEEDS_POSTGRES_TO_CUT, timeout: HANG_MS },
    async () => {
      // Each stage takes seconds when healthy; a bound well under the test's own names the stage that stuck.
      const STAGE_MS = 60_000;
      const cuttable = await throughCutter(database);
      const t = await startTestGateway({ OPENAI_BASE_URL: openaiFake.url, OPENAI_API_KEY: OPENAI_KEY }, { database: cuttable.database });
      try {
        const key = await virtualKey(t);
        const unseen = await virtualKey(t);
        const client = openai(t, key);
        const ids: string[] = [];
        /** One whole and one streamed call, both read to the end; their call ids are kept. */
        const pair = async () => {
          const whole = await client.chat.completions.create(chat).withResponse();
          assert.equal(whole.data.choices[0]!.message.content, answerText());
          ids.push(whole.response.headers.get("x-tollgate-request-id")!);
          const streamed = await client.chat.completions.create({ ...chat, stream: true }).withResponse();
          let text = "";
          for await (const chunk of streamed.data) text += chunk.choices[0]?.delta.content ?? "";
          assert.equal(text, answerText());
          ids.push(streamed.response.headers.get("x-tollgate-request-id")!);
        };
        const calls = async (n: number) => {
          for (let i = 0; i < n; i++) await pair();
        };
        const readyz = async () => (await (await fetch(`${t.base}/readyz`)).json()) as { status: string; database: string; journal: { unrecorded_events: number } };
        const stored = async (some: string[]) => (await proxyRows(database, some)).length;

        await calls(3);
        await waitFor("the first calls recorded", async () => (await stored(ids)) === 6, STAGE_MS);

        // A burst of concurrent calls with the network cut under it: some usage is being written at
        // that moment (committed or not, the gateway cannot always know), the rest waits in the journal.
        const burst = Array.from({ length: 8 }, pair);
        await waitFor("the burst under way", () => ids.length >= 10, STAGE_MS);
        cuttable.cutter.cut();
        await Promise.all(burst);

        const before = ids.length;
        await calls(5);
        const during = ids.slice(before);
        const ready = await readyz();
        assert.equal(ready.status, "degraded");
        assert.equal(ready.database, "unreachable");
        // A key this gateway never saw cannot be checked now: a 503 to try again, in OpenAI's error shape.
        const refused = await fetch(`${t.base}/openai/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${unseen}`, "content-type": "application/json" }, body: JSON.stringify(chat) });
        assert.equal(refused.status, 503);
        assert.equal(refused.headers.get("retry-after"), "5");
        assert.equal(((await refused.json()) as { error: { code: string } }).error.code, "key_check_unavailable");
        await waitFor("the calls made during the outage left in the journal", () => t.gateway.usage.status().unrecorded_events >= during.length, STAGE_MS);
        assert.equal(await stored(during), 0, "none of them reached the database");

        await cuttable.cutter.restore();
        await calls(3);
        await waitFor("every call recorded", async () => (await stored(ids)) === ids.length, STAGE_MS);
        await waitFor("the journal emptied", () => t.gateway.usage.status().unrecorded_events === 0, STAGE_MS);
        assert.equal((await readyz()).status, "ok");

        const counts = await database.rows<{ id: string; n: string }>(sql`
          select id, count(*)::text as n from usage_events
          where source = 'proxy' and id in (${sql.join(ids.map((id) => sql`${id}`), sql`, `)}) group by id`);
        assert.equal(ids.length, 38);
        assert.equal(new Set(ids).size, 38, "every call has an id of its own");
        assert.equal(counts.length, 38);
        assert.ok(counts.every((c) => c.n === "1"), "no call recorded twice");
        const rows = await proxyRows(database, during);
        assert.ok(rows.every((r) => r.status === "ok" && r.team === "search" && tokenColumns(r).join() === OPENAI_TOKENS.join()), "journaled calls kept their usage and attribution");
        await assertRollupsMatchEvents(database);
      } finally {
        // Closing waits for every part (scheduled job runs too): bounded like a stage, so a part stuck since the outage fails by name.
        const closed = await within(t.close().then(() => true), STAGE_MS);
        await cuttable.close();
        if (!closed) assert.fail(`the gateway did not close within ${STAGE_MS} ms`);
      }
    },
  );
});
