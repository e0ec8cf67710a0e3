import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/*
 * In a process of its own (this one has undici loaded already): the webhook integration connected
 * as a gateway connects it at start-up, then one delivery to a receiver that checks the signature
 * as the spec says (test/fakes/webhook-receiver.ts). Which of undici's
 * modules are loaded is read from node's module cache, where the CommonJS package lands however
 * it was imported.
 */
const CHILD = `
import { createServer } from "node:http";
import { once } from "node:events";
import { createRequire } from "node:module";
const { webhook } = await import("./integrations/webhook/index.ts");
const { loadConfig } = await import("./src/config.ts");
const { newWebhookSecret } = await import("./src/signing/standard-webhooks.ts");
const { verifySignature } = await import("./test/fakes/webhook-receiver.ts");
const cache = createRequire(process.cwd() + "/").cache;
const fetchLoaded = () => Object.keys(cache).some((f) => f.endsWith("/undici/lib/web/fetch/index.js"));
const deliverer = webhook.connect(loadConfig({ TOLLGATE_OUTBOUND_ALLOW: "127.0.0.2" }));
const atStart = fetchLoaded();
// On 127.0.0.2: test files run side by side, and others close ports on 127.0.0.1 to be refused there.
const secret = newWebhookSecret();
const received = [];
const server = createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c)).on("end", () => {
    const h = req.headers;
    received.push({ id: h["webhook-id"], verified: verifySignature(secret, h["webhook-id"], h["webhook-timestamp"], body, h["webhook-signature"], Date.now() / 1000) });
    res.writeHead(204).end();
  });
});
server.listen(0, "127.0.0.2");
await once(server, "listening");
const target = { id: "c1", platform: "webhook", name: "hooks", address: { url: "http://127.0.0.2:" + server.address().port + "/hooks" }, secret, timezone: "UTC" };
const message = { id: 1, dedupeKey: "msg_lazy_1", attempt: 1, payload: { alerts: [] }, createdAt: new Date() };
const outcome = await deliverer.deliver(target, message, { now: new Date(), signal: AbortSignal.timeout(10_000), publicUrl: undefined });
server.close();
console.log(JSON.stringify({ atStart, afterDelivery: fetchLoaded(), outcome, received }));
`;

test("the webhook deliverer loads undici's fetch at its first delivery, not when the gateway connects it, and delivers signed", () => {
  const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", CHILD], { cwd: ROOT, encoding: "utf8" });
  const r = JSON.parse(out.trim().split("\n").at(-1)!) as { atStart: boolean; afterDelivery: boolean; outcome: unknown; received: unknown };
  assert.equal(r.atStart, false, "undici's fetch was loaded before any delivery");
  assert.deepEqual(r.outcome, { kind: "delivered" });
  assert.deepEqual(r.received, [{ id: "msg_lazy_1", verified: true }]);
  assert.equal(r.afterDelivery, true);
});
