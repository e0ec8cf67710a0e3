import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import type { FakeUpstream } from "./fakes/fake-upstream.ts";
import { OPENAI_KEY, startFakeOpenAI } from "./fakes/openai.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";

let t: TestGateway;
let openaiFake: FakeUpstream;
let virtualKey: string;
const LIMIT = 4096;

before(async () => {
  openaiFake = await startFakeOpenAI();
  t = await startTestGateway({ OPENAI_BASE_URL: openaiFake.url, OPENAI_API_KEY: OPENAI_KEY, TOLLGATE_MAX_REQUEST_BYTES: String(LIMIT) });
  const res = await t.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: "limits", team: "search" }) });
  virtualKey = ((await res.json()) as { key: string }).key;
});
after(async () => {
  await t.close();
  await openaiFake.close();
});

/** Sends `head` (and then nothing) on a raw connection; resolves with all the gateway sent until it closed the connection. */
function rawExchange(head: string): Promise<string> {
  const { port } = new URL(t.base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), "127.0.0.1", () => socket.write(head));
    let text = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("end", () => resolve(text));
    socket.on("error", reject);
    socket.setTimeout(10_000, () => {
      socket.destroy();
      reject(new Error(`no answer and no close within 10 s; got: ${text}`));
    });
  });
}

describe("request bodies over TOLLGATE_MAX_REQUEST_BYTES", () => {
  test("a body whose content-length is over the limit is refused before any of it is sent, and the connection is closed", async () => {
    const before = openaiFake.requests.length;
    // The body is never sent: only a gateway that refuses from the header alone can answer.
    const answer = await rawExchange(
      `POST /openai/v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${virtualKey}\r\ncontent-type: application/json\r\ncontent-length: 50000000\r\n\r\n`,
    );
    const [head, body] = answer.split("\r\n\r\n");
    assert.match(head!, /^HTTP\/1\.1 413 /);
    assert.match(head!, /\r\nx-should-retry: false\r\n/i);
    assert.match(head!, /\r\nconnection: close\r\n/i);
    assert.match(head!, /\r\nx-tollgate-request-id: [0-9a-f-]{36}\r\n/i);
    const error = (JSON.parse(body!) as { error: { code: string; type: string; message: string } }).error;
    assert.equal(error.code, "request_too_large", "in OpenAI's own error shape");
    assert.equal(error.type, "invalid_request_error");
    assert.match(error.message, /4096 bytes/);
    assert.equal(openaiFake.requests.length, before, "nothing reached the upstream");
  });

  test("a chunked body that grows over the limit is refused once it does, and never forwarded", async () => {
    const before = openaiFake.requests.length;
    const res = await fetch(`${t.base}/openai/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${virtualKey}`, "content-type": "application/json" },
      // A stream has no content-length: only its size as it arrives can tell.
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(`{"model":"gpt-4o","messages":[{"role":"user","content":"${"x".repeat(LIMIT)}"}]}`));
          controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, "request_too_large");
    assert.equal(openaiFake.requests.length, before, "nothing reached the upstream");
  });

  test("a body at the limit goes through", async () => {
    const content = "x".repeat(LIMIT - 200);
    const body = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content }] });
    assert.ok(body.length <= LIMIT);
    const res = await fetch(`${t.base}/openai/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${virtualKey}`, "content-type": "application/json", "x-request-id": "trace-7" },
      body,
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.equal((openaiFake.requests.at(-1)!.body as { messages: { content: string }[] }).messages[0]!.content, content);
  });
});
