import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { type Socket, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { BIN_ARGS, cliEnv } from "./helpers/cli.ts";
import { waitFor } from "./helpers/wait.ts";

/*
 * Item 7 of issue 14, against a real `tollgate serve`: anonymous and slow clients cannot make the
 * gateway hold memory. Before, /v1/usage and /v1/traces buffered up to 5 MB each before looking at
 * the sender, with no bound on how many at once and no request timeout (100 slow bodies held 464 MB).
 */

const ADMIN = "slow-clients-admin-token-0123";
let dir: string;
let server: ChildProcess;
let url: URL;
let key: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "tollgate-slow-"));
  server = spawn(process.execPath, [...BIN_ARGS, "serve"], {
    env: cliEnv(dir, { PORT: "0", HOST: "127.0.0.1", TOLLGATE_ADMIN_TOKEN: ADMIN, TOLLGATE_HEADERS_TIMEOUT_MS: "2000", TOLLGATE_REQUEST_TIMEOUT_MS: "20000" }),
    stdio: ["ignore", "ignore", "pipe"],
  });
  // server.json names the URL once the server listens (it holds only the pid while it starts).
  const listening = () => existsSync(join(dir, "server.json")) && (JSON.parse(readFileSync(join(dir, "server.json"), "utf8")) as { url?: string }).url;
  await waitFor("the server to listen", () => Boolean(listening()));
  url = new URL(listening() as string);
  const created = await fetch(new URL("/api/keys", url), {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ kind: "ingest", name: "slow-clients" }),
  });
  key = ((await created.json()) as { key: string }).key;
});

after(async () => {
  server.kill("SIGTERM");
  if (server.exitCode === null) await once(server, "exit");
  rmSync(dir, { recursive: true, force: true });
});

/** What the server process holds in memory now, from /proc. */
const rssMb = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, "utf8"))![1]) / 1024;

interface Conn {
  socket: Socket;
  /** Everything the server sent back. */
  received: () => string;
  closed: Promise<void>;
}

/** A raw connection sending `head` (and `body`, if any) and then nothing more. */
function open(head: string, body?: Buffer): Conn {
  const socket = connect(Number(url.port), url.hostname);
  let text = "";
  socket.on("data", (d) => (text += d.toString("latin1")));
  socket.on("error", () => {});
  // Not events.once: a write cut off by the server's close is an 'error' event, and once() rejects on it.
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.write(head);
  if (body) socket.write(body);
  return { socket, received: () => text, closed };
}

const signedHead = (path: string, length: number) =>
  `POST ${path} HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n` +
  `webhook-id: msg_slow\r\nwebhook-timestamp: ${Math.floor(Date.now() / 1000)}\r\nwebhook-signature: v1,c2xvdw==\r\n\r\n`;

const statusOf = (c: Conn): number | undefined => Number(/^HTTP\/1\.1 (\d{3})/.exec(c.received())?.[1]) || undefined;

async function keyedPost(): Promise<number> {
  const res = await fetch(new URL("/v1/usage", url), {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ id: `slow-${Date.now()}`, provider: "openai", model: "gpt-4o", input_tokens: 10, output_tokens: 1 }),
  });
  return res.status;
}

describe("unauthenticated slow bodies", () => {
  test("100 signed bodies that stall are refused beyond the shared budget and hold no memory", async (t) => {
    const before = rssMb();
    // Each claims 5 MB and sends 1 MB at once, then stalls: the old gateway held all of it, and waited for the rest.
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    const conns = Array.from({ length: 100 }, (_, i) => open(signedHead(i % 2 ? "/v1/usage" : "/v1/traces", 5 * 1024 * 1024), chunk));
    // At most 16 MB of them may be read before their signatures are checked (16 connections' worth).
    // Refused: 503 for want of budget, or 408 where a loaded machine let the short headers timeout of this test pass first.
    const refused = () => conns.filter((c) => statusOf(c) === 503 || statusOf(c) === 408);
    await waitFor("the connections beyond the budget to be refused", () => refused().length >= 84);
    const after = rssMb();
    t.diagnostic(`server RSS ${before.toFixed(0)} MB before, ${after.toFixed(0)} MB with 100 slow signed bodies sent`);
    const busy = conns.filter((c) => statusOf(c) === 503);
    assert.ok(busy.length > 0);
    for (const c of busy) {
      assert.match(c.received(), /retry-after: 1/i);
      assert.match(c.received(), /too many unauthenticated bodies/);
    }
    // Refused connections are closed by the server, not left for the client to keep open.
    await Promise.all(refused().map((c) => c.closed));
    // A sender with a key is not among the refused: its key is checked before its body is read.
    assert.equal(await keyedPost(), 200);
    for (const c of conns) c.socket.destroy();
  });

  test("a wrong key or no credential is answered 401 before any of the body is sent", async () => {
    const head = (auth: string) =>
      `POST /v1/usage HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: 5000000\r\n${auth}\r\n`;
    for (const auth of ["authorization: Bearer tlg_not_a_key\r\n", ""]) {
      const conn = open(head(auth));
      await waitFor("the 401", () => statusOf(conn) === 401);
      conn.socket.destroy();
    }
  });

  test("a client that sends its headers slowly is answered 408 and closed", async () => {
    const conn = open(`POST /v1/usage HTTP/1.1\r\nhost: ${url.host}\r\n`);
    const drip = setInterval(() => conn.socket.write("x-slow: 1\r\n"), 200);
    try {
      await conn.closed;
    } finally {
      clearInterval(drip);
    }
    assert.equal(statusOf(conn), 408);
  });
});
