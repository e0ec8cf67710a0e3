import { createHmac, timingSafeEqual } from "node:crypto";
import { once } from "node:events";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { keepConnections } from "../helpers/wait.ts";

/*
 * A webhook consumer on loopback that checks Standard Webhooks signatures the way the spec tells a
 * receiver to (its own HMAC, written from the spec rather than reusing the gateway's code), and
 * can be scripted: down (its port closed: connection refused), 500, 429 with Retry-After, 410.
 */

/** How one verified request is answered; the default is 204. Unverifiable requests get 401. */
export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface Received {
  id: string;
  timestamp: number;
  /** Whether the signature matched the channel's secret and the timestamp was within 5 minutes. */
  verified: boolean;
  body: Record<string, unknown>;
  /** The body and headers exactly as they arrived, for third-party verifiers. */
  raw: string;
  headers: Record<string, string>;
  /** What the receiver answered. */
  status: number;
  /** Arrival, in ms since the epoch. */
  at: number;
}

const TOLERANCE_SECONDS = 300;

/** The spec's check: HMAC-SHA256 of `id.timestamp.body`, keyed with the base64 bytes after `whsec_`. */
export function verifySignature(secret: string, id: string, timestamp: string, body: string, signatureHeader: string, nowSeconds: number): boolean {
  if (!/^\d+$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > TOLERANCE_SECONDS) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest();
  return signatureHeader.split(" ").some((part) => {
    const [version, value] = part.split(",");
    if (version !== "v1" || !value) return false;
    const given = Buffer.from(value, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

export class WebhookReceiver {
  /** Every request, in arrival order. */
  readonly received: Received[] = [];
  /** Answers for the next requests, taken in order; 204 once they run out. */
  readonly script: Answer[] = [];
  /** Delay before answering, so deliveries overlap. */
  delayMs = 0;
  secret = "";
  private server: Server | undefined;

  private constructor(readonly port: number) {}

  /** A receiver whose port is reserved but closed: deliveries meet connection refused until `up()`. */
  static async reserve(): Promise<WebhookReceiver> {
    const probe = createServer();
    probe.listen(0, "127.0.0.1");
    await once(probe, "listening");
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    return new WebhookReceiver(port);
  }

  static async start(): Promise<WebhookReceiver> {
    const receiver = await WebhookReceiver.reserve();
    await receiver.up();
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }

  /** Requests that were answered 2xx: what the consumer took in. */
  get accepted(): Received[] {
    return this.received.filter((r) => r.status >= 200 && r.status < 300);
  }

  async up(): Promise<void> {
    if (this.server) return;
    const server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString("utf8");
      const header = (name: string) => String(req.headers[name] ?? "");
      const verified = verifySignature(this.secret, header("webhook-id"), header("webhook-timestamp"), text, header("webhook-signature"), Math.floor(Date.now() / 1000));
      const at = Date.now();
      // A consumer refuses what it cannot verify, before looking at its script.
      const answer = verified ? (this.script.shift() ?? { status: 204 }) : { status: 401, body: "signature does not verify" };
      if (this.delayMs > 0) await sleep(this.delayMs);
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      this.received.push({ id: header("webhook-id"), timestamp: Number(header("webhook-timestamp")), verified, body: JSON.parse(text) as Record<string, unknown>, raw: text, headers, status: answer.status, at });
      res.writeHead(answer.status, answer.headers).end(answer.body);
    });
    keepConnections(server);
    server.listen(this.port, "127.0.0.1");
    await once(server, "listening");
    this.server = server;
  }

  /** Closes the port: further deliveries meet connection refused. */
  async down(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}
