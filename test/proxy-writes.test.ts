import assert from "node:assert/strict";
import { once } from "node:events";
import { type IncomingMessage, type Server, type ServerResponse, createServer, request } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { proxyRows } from "./helpers/proxy-ledger.ts";
import { waitFor } from "./helpers/wait.ts";

/*
 * Issue 13: the writes a streamed answer costs the gateway. On loopback each write(2) does the
 * reader's TCP work too, and streams are answered a few events at a time, so a stream's head and
 * its chunked terminator must not each take a write of their own when the upstream sent them with
 * an event, while every event still reaches the client as soon as it came (each step below waits
 * for the client to have seen the last before the upstream sends the next).
 */

const chunk = (delta: object, finish: string | null) =>
  `data: ${JSON.stringify({ id: "chatcmpl-w", object: "chat.completion.chunk", created: 1, model: "gpt-4o-mini-2024-07-18", choices: [{ index: 0, delta, finish_reason: finish }], usage: null })}\n\n`;
const FIRST = chunk({ role: "assistant", content: "" }, null);
const USAGE = { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 };
const REST =
  chunk({ content: "Hi there" }, null) +
  chunk({}, "stop") +
  `data: ${JSON.stringify({ id: "chatcmpl-w", object: "chat.completion.chunk", created: 1, model: "gpt-4o-mini-2024-07-18", choices: [], usage: USAGE })}\n\n` +
  "data: [DONE]\n\n";

/** How the upstream sends its head and first event: together (one write), the head alone first, or the whole answer in one write. */
type Opening = "together" | "head first" | "all at once";

/** One streamed answer's steps, each taken when the test says. */
interface Script {
  opening: Opening;
  /** Resolved by the test when the client has seen what came before. */
  sendFirst: Promise<void>;
  sendRest: Promise<void>;
}

let upstream: Server;
let script: Script | undefined;
let t: TestGateway;
let key: string;
/** Writes the gateway made on each client connection: calls into the socket's handle, one system call each. */
const writes = new Map<number, number>();

function answer(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  const s = script!;
  res.writeHead(200, { "content-type": "text/event-stream", "x-request-id": "req_w" });
  if (s.opening === "all at once") return void res.end(FIRST + REST);
  if (s.opening === "together") res.write(FIRST);
  else {
    res.flushHeaders();
    void s.sendFirst.then(() => res.write(FIRST));
  }
  // The last events and the end of the chunked body leave in one write, as `end(rest)` sends them.
  void s.sendRest.then(() => res.end(REST));
}

before(async () => {
  upstream = createServer(answer).listen(0, "127.0.0.1");
  await once(upstream, "listening");
  t = await startTestGateway({ OPENAI_BASE_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, OPENAI_API_KEY: "sk-upstream" });
  t.server.on("connection", (socket: Socket & { _writeGeneric: (...args: unknown[]) => unknown }) => {
    const port = socket.remotePort!;
    const write = socket._writeGeneric;
    socket._writeGeneric = function (...args: unknown[]) {
      writes.set(port, (writes.get(port) ?? 0) + 1);
      return write.apply(this, args);
    };
  });
  const res = await t.admin("/api/keys", { method: "POST", body: JSON.stringify({ kind: "virtual", name: "writes", team: "wire" }) });
  key = ((await res.json()) as { key: string }).key;
});

after(async () => {
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
  await t.close();
});

interface Streamed {
  text: string;
  id: string;
  /** The gateway's writes on this call's connection. */
  writes: number;
}

/**
 * One streamed call on a connection of its own, the upstream taking each step only once the client
 * has seen the previous one: the head (when the upstream sends it alone), then the first event.
 */
async function streamed(opening: Opening): Promise<Streamed> {
  let sendFirst!: () => void;
  let sendRest!: () => void;
  script = { opening, sendFirst: new Promise((r) => (sendFirst = r)), sendRest: new Promise((r) => (sendRest = r)) };
  const body = JSON.stringify({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "hi" }] });
  const { port } = new URL(t.base);
  const req = request({ host: "127.0.0.1", port, method: "POST", path: "/openai/v1/chat/completions", agent: false, headers: { authorization: `Bearer ${key}`, "content-type": "application/json" } });
  req.end(body);
  const [res] = (await once(req, "response")) as [IncomingMessage];
  const clientPort = req.socket!.localPort!;
  assert.equal(res.statusCode, 200);
  // The head reached the client before the upstream sent any event.
  sendFirst();
  let text = "";
  res.setEncoding("utf8");
  res.on("data", (piece: string) => {
    text += piece;
    if (text.includes("\n\n")) sendRest();
  });
  await once(res, "end");
  return { text, id: String(res.headers["x-tollgate-request-id"]), writes: writes.get(clientPort) ?? 0 };
}

describe("a streamed answer's writes to the client", () => {
  test("head and first event that came together leave in one write, the last events and the end in another", async () => {
    const r = await streamed("together");
    assert.ok(r.text.startsWith(FIRST), "the first event as the upstream sent it");
    assert.ok(r.text.endsWith("data: [DONE]\n\n"));
    assert.ok(!r.text.includes('"choices":[]'), "the usage chunk the client did not ask for is left out");
    assert.equal(r.writes, 2, "one write per piece the upstream sent (before: the head, each piece and the terminator on their own)");
    await waitFor("the call in the ledger", async () => (await proxyRows(t.gateway.database, [r.id])).length === 1);
    const [row] = await proxyRows(t.gateway.database, [r.id]);
    assert.equal(row!.status, "ok");
    assert.equal(row!.output_tokens, "3");
  });

  test("a head the upstream sent alone is not held for the first event: three writes", async () => {
    const r = await streamed("head first");
    assert.ok(r.text.startsWith(FIRST));
    assert.ok(r.text.endsWith("data: [DONE]\n\n"));
    assert.equal(r.writes, 3);
  });

  test("an answer that came whole with its head (a short stream, an error) leaves in one write", async () => {
    const r = await streamed("all at once");
    assert.ok(r.text.startsWith(FIRST));
    assert.ok(r.text.endsWith("data: [DONE]\n\n"));
    assert.equal(r.writes, 1, "before: the head on its own, then the rest");
  });
});
