import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { ALERT_VERSION, readStoredAlert } from "../src/alerts/alert.ts";
import { afterFailure, dedupeKey, parseRetryAfter, retryDelayMs } from "../src/alerts/outbox.ts";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import { loadConfig } from "../src/config.ts";
import type { NotificationInfo } from "../src/alerts/outbox.ts";
import type { Database } from "../src/db/connection.ts";
import { notifications } from "../src/db/schema.ts";
import { newWebhookSecret } from "../src/signing/standard-webhooks.ts";
import { WebhookReceiver } from "./fakes/webhook-receiver.ts";
import { enqueue, thresholdAlert } from "./helpers/alerts.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { secondConnection } from "./helpers/second-connection.ts";
import { waitFor } from "./helpers/wait.ts";

/** The schedule's shape, in milliseconds: the tests drive retries without waiting out real ones. */
const FAST_RETRIES = { TOLLGATE_OUTBOX_RETRY_SCHEDULE: "20ms,40ms,80ms,80ms,80ms,80ms,80ms" };

// One database for the file, as gateways with different settings would share it; each test
// starts from no channels (their outbox rows and mutes go with them).
let database: Database;
let second: Database;
before(async () => {
  database = await openTestDatabase();
  second = await secondConnection(database);
});
afterEach(() => database.db.execute(sql`delete from channels`));
after(async () => {
  await second.close();
  await database.close();
});
// The receivers listen on loopback, which webhooks may only reach when allowed.
const start = (env: Record<string, string> = {}, db = database) =>
  startTestGateway({ TOLLGATE_MASTER_KEY: Buffer.alloc(32, 7).toString("base64"), TOLLGATE_OUTBOUND_ALLOW: "127.0.0.1", ...env }, { database: db });
const BUDGET = { id: "b-search", name: "search-monthly", scope: { team: "search" } };

async function createChannel(gw: TestGateway, url: string, extra: Record<string, unknown> = {}): Promise<{ id: string; secret: string }> {
  const res = await gw.admin("/api/channels", { method: "POST", body: JSON.stringify({ platform: "webhook", name: "ops", url, ...extra }) });
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()) as { id: string; secret: string };
}

async function outbox(gw: TestGateway, query = ""): Promise<NotificationInfo[]> {
  const res = await gw.admin(`/api/outbox${query}`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { notifications: NotificationInfo[] }).notifications;
}

const alertIds = (r: { body: Record<string, unknown> }) => (r.body.alerts as { id: string }[]).map((a) => a.id);

describe("retry timing", () => {
  const policy = { scheduleMs: loadConfig({}).TOLLGATE_OUTBOX_RETRY_SCHEDULE };
  const MIN = 60_000;
  const HOUR = 60 * MIN;

  test("the default schedule is Svix's: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after the first try, each within ±10 %", () => {
    assert.deepEqual(policy.scheduleMs, [5000, 5 * MIN, 30 * MIN, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR]);
    assert.equal(retryDelayMs(1, policy, () => 0.5), 5000);
    assert.equal(retryDelayMs(1, policy, () => 0), 4500);
    assert.equal(retryDelayMs(1, policy, () => 1), 5500);
    assert.equal(retryDelayMs(4, policy, () => 0.5), 2 * HOUR);
    assert.equal(retryDelayMs(8, policy, () => 0.5), undefined, "eight tries, then dead");
  });

  test("the defaults keep retrying for about a day (over 24 h, under 31 h), not one to three hours", () => {
    const total = (random: () => number) => Array.from({ length: 7 }, (_, i) => retryDelayMs(i + 1, policy, random)!).reduce((a, b) => a + b);
    assert.ok(total(() => 0) > 24 * HOUR, `shortest span ${total(() => 0) / HOUR} h`);
    assert.ok(total(() => 1) < 31 * HOUR, `longest span ${total(() => 1) / HOUR} h`);
  });

  test("a schedule that is not one is refused at start-up with what was expected", () => {
    for (const bad of ["5s,soon", "5s,,5m", "2d", "-5s"])
      assert.throws(() => loadConfig({ TOLLGATE_OUTBOX_RETRY_SCHEDULE: bad }), /TOLLGATE_OUTBOX_RETRY_SCHEDULE.*up to 100 comma-separated waits such as 5s,5m,30m,2h/s);
  });

  test("Retry-After is read as seconds, as an HTTP date, or as a JSON retry_after", () => {
    const now = new Date("2025-06-20T10:00:00Z");
    assert.equal(parseRetryAfter("120", now), 120_000);
    assert.equal(parseRetryAfter(1.5, now), 1500);
    assert.equal(parseRetryAfter("Fri, 20 Jun 2025 10:00:30 GMT", now), 30_000);
    assert.equal(parseRetryAfter("Fri, 20 Jun 2025 09:00:00 GMT", now), 0, "a date in the past means now");
    assert.equal(parseRetryAfter("9999999", now), 86_400_000, "a wait of months is capped at a day");
    assert.equal(parseRetryAfter("soon", now), undefined);
    assert.equal(parseRetryAfter("-5", now), undefined);
    assert.equal(parseRetryAfter(undefined, now), undefined);
  });

  test("the receiver's wait wins over the schedule; the last attempt is the end", () => {
    assert.deepEqual(afterFailure(3, 45_000, policy), { dead: false, delayMs: 45_000 });
    assert.deepEqual(afterFailure(3, undefined, policy, () => 0.5), { dead: false, delayMs: 30 * MIN });
    assert.deepEqual(afterFailure(8, 45_000, policy), { dead: true });
  });

  test("dedupe keys are stable for a channel and a set of alerts, whatever their order", () => {
    assert.equal(dedupeKey("c1", [{ id: "a" }]), "c1:a");
    assert.equal(dedupeKey("c1", [{ id: "a" }, { id: "b" }]), dedupeKey("c1", [{ id: "b" }, { id: "a" }]));
    assert.notEqual(dedupeKey("c1", [{ id: "a" }, { id: "b" }]), dedupeKey("c2", [{ id: "a" }, { id: "b" }]));
  });
});

describe("webhook delivery", () => {
  test("a receiver refusing connections, then failing with 500 and 429, gets every alert once; the first failing holds none back", async () => {
    const receiver = await WebhookReceiver.reserve();
    // A channel's lowest due row is its next try: a retry due sooner than the worker gets round the
    // five rows would be taken again before the later rows' first tries (on a loaded machine, 20 ms
    // waits kept the first row going until it died and the test waited 300 s for the others).
    const gw = await start({ TOLLGATE_OUTBOX_RETRY_SCHEDULE: Array(99).fill("1s").join(","), TOLLGATE_URL: "https://tollgate.example.com" });
    try {
      const channel = await createChannel(gw, receiver.url);
      receiver.secret = channel.secret;
      const alerts = [50, 80, 100, 120, 150].map((t) => thresholdAlert(BUDGET, t));
      for (const a of alerts) await enqueue(gw.gateway, [a]);

      await waitFor("three refused tries of the first message, and a try of each", async () => {
        const rows = await outbox(gw);
        // A row counts its attempt when taken and its error when settled: wait for both.
        return (rows.at(-1)?.attempts ?? 0) >= 3 && rows.every((n) => n.attempts >= 1 && n.last_error !== null);
      });
      const waiting = await outbox(gw);
      assert.deepEqual(waiting.map((n) => n.status), ["pending", "pending", "pending", "pending", "pending"]);
      assert.ok(waiting.every((n) => n.last_error === "connection refused"), JSON.stringify(waiting.map((n) => n.last_error)));

      receiver.script.push({ status: 500, body: "boom" }, { status: 500 }, { status: 429, headers: { "retry-after": "1" } });
      await receiver.up();
      await waitFor("every message delivered", async () => (await outbox(gw, "?status=delivered")).length === alerts.length);

      assert.deepEqual(receiver.accepted.map(alertIds).sort(), alerts.map((a) => [a.id]).sort(), "each alert once");
      assert.equal(receiver.accepted.length, alerts.length);
      assert.ok(receiver.received.every((r) => r.verified), "every request carries a valid signature");
      assert.deepEqual(receiver.received.slice(0, 3).map((r) => r.status), [500, 500, 429]);
      const limited = receiver.received[2]!;
      const after = receiver.received.find((r) => r.id === limited.id && r.at > limited.at)!;
      assert.equal(after.status, 204, "retries keep the webhook-id");
      assert.ok(after.at - limited.at >= 950, `Retry-After: 1 was honoured (${after.at - limited.at} ms)`);

      const body = receiver.accepted.find((r) => alertIds(r)[0] === alerts[1]!.id)!.body;
      assert.equal(body.type, "tollgate.alerts");
      assert.equal(body.kind, "threshold");
      assert.equal(body.budget, "search-monthly");
      assert.deepEqual(body.scope, { team: "search" });
      assert.equal(body.spend_usd, "400");
      assert.equal(body.amount_usd, "500");
      assert.equal(body.percent, 80);
      assert.deepEqual(body.period, { unit: "month", start: "2025-06-01T00:00:00.000Z", end: "2025-07-01T00:00:00.000Z" });
      assert.equal(body.forecast_usd, "612.5");
      assert.equal(body.run_out_at, "2025-06-26T14:00:00.000Z");
      assert.deepEqual(body.top, [{ dimension: "team", key: "search", spend_usd: "320" }]);
      assert.deepEqual(body.links, { alerts: "https://tollgate.example.com/api/alerts", budget_status: "https://tollgate.example.com/api/budgets/b-search/status" });
    } finally {
      await receiver.down();
      await gw.close();
    }
  });

  test("alerts raised together reach a channel as one message", async () => {
    const receiver = await WebhookReceiver.start();
    const gw = await start(FAST_RETRIES);
    try {
      receiver.secret = (await createChannel(gw, receiver.url)).secret;
      const other = { id: "b-ads", name: "ads-daily", scope: { team: "ads" } };
      const raised = [thresholdAlert(BUDGET, 50), thresholdAlert(BUDGET, 80), thresholdAlert(other, 100), thresholdAlert(BUDGET, 100, { kind: "blocked", threshold: null })];
      await enqueue(gw.gateway, raised);
      await waitFor("the message", () => receiver.accepted.length === 1);
      const body = receiver.accepted[0]!.body;
      assert.deepEqual(alertIds(receiver.accepted[0]!), [raised[1]!.id, raised[2]!.id, raised[3]!.id], "the 50 % crossing is implied by the 80 % one");
      assert.equal(body.id, raised[1]!.id, "the top level repeats the first alert");
      assert.deepEqual(body.links, {}, "no links without TOLLGATE_URL");

      await enqueue(gw.gateway, raised);
      const rows = await outbox(gw);
      assert.equal(rows.length, 1, "the same alerts enqueued again write nothing");
    } finally {
      await receiver.down();
      await gw.close();
    }
  });

  test("a message failing every try goes dead after the schedule's tries, keeps the status but not the body, and can be resent", async () => {
    const receiver = await WebhookReceiver.start();
    const gw = await start({ TOLLGATE_OUTBOX_RETRY_SCHEDULE: "20ms,40ms" });
    try {
      receiver.secret = (await createChannel(gw, receiver.url)).secret;
      receiver.script.push({ status: 500 }, { status: 502 }, { status: 503, body: "maintenance of db-7.internal:5432" });
      const [doomed, next] = [thresholdAlert(BUDGET, 80), thresholdAlert(BUDGET, 100)];
      await enqueue(gw.gateway, [doomed!]);
      await waitFor("the first message dead", async () => (await outbox(gw, "?status=dead")).length === 1);
      await enqueue(gw.gateway, [next!]);
      await waitFor("the second message delivered", () => receiver.accepted.length === 1);

      const dead = await outbox(gw, "?status=dead");
      assert.equal(dead.length, 1);
      assert.equal(dead[0]!.attempts, 3);
      assert.equal(dead[0]!.last_error, "HTTP 503 Service Unavailable", "the receiver's body is not kept");
      assert.deepEqual(dead[0]!.alerts.map((a) => a.id), [doomed!.id]);
      assert.equal(dead[0]!.next_attempt_at, null);
      assert.deepEqual(receiver.received.map((r) => r.status), [500, 502, 503, 204], "exactly the configured attempts");
      assert.deepEqual(alertIds(receiver.accepted[0]!), [next!.id]);

      const resent = await gw.admin(`/api/outbox/${dead[0]!.id}/resend`, { method: "POST" });
      assert.equal(resent.status, 200);
      assert.equal(((await resent.json()) as NotificationInfo).status, "pending");
      await waitFor("the resent message delivered", () => receiver.accepted.length === 2);
      assert.equal(receiver.accepted[1]!.id, receiver.received[0]!.id, "a resend keeps the webhook-id, so a receiver that saw it can tell");
      assert.deepEqual((await outbox(gw, "?status=dead")).length, 0);

      const again = await gw.admin(`/api/outbox/${dead[0]!.id}/resend`, { method: "POST" });
      assert.equal(again.status, 409);
      assert.match(((await again.json()) as { detail: string }).detail, /is delivered; only dead notifications are resent/);
    } finally {
      await receiver.down();
      await gw.close();
    }
  });

  test("410 Gone disables the channel, keeps its messages visible, and enabling it delivers them", async () => {
    const receiver = await WebhookReceiver.start();
    const gw = await start(FAST_RETRIES);
    try {
      const channel = await createChannel(gw, receiver.url);
      receiver.secret = channel.secret;
      receiver.script.push({ status: 410 });
      const first = thresholdAlert(BUDGET, 80);
      await enqueue(gw.gateway, [first]);
      await waitFor("the channel disabled", async () => ((await (await gw.admin(`/api/channels/${channel.id}`)).json()) as { enabled: boolean }).enabled === false);
      const info = (await (await gw.admin(`/api/channels/${channel.id}`)).json()) as { disabled_reason: string };
      assert.equal(info.disabled_reason, "the receiver answered 410 Gone");
      const [row] = await outbox(gw);
      assert.equal(row!.status, "pending");
      assert.equal(row!.last_error, "the receiver answered 410 Gone");

      await enqueue(gw.gateway, [thresholdAlert(BUDGET, 100)]);
      assert.equal((await outbox(gw)).length, 1, "nothing new is queued for a disabled channel");

      const enabled = await gw.admin(`/api/channels/${channel.id}`, { method: "PATCH", body: JSON.stringify({ enabled: true }) });
      assert.equal(enabled.status, 200);
      await waitFor("the waiting message delivered", () => receiver.accepted.length === 1);
      assert.deepEqual(alertIds(receiver.accepted[0]!), [first.id]);
    } finally {
      await receiver.down();
      await gw.close();
    }
  });
});

describe("what a failure leads to", () => {
  test("a 4xx other than 408 and 429 is dead at once with its status; 408 is tried again", async () => {
    const receiver = await WebhookReceiver.start();
    const gw = await start(FAST_RETRIES);
    try {
      receiver.secret = (await createChannel(gw, receiver.url)).secret;
      receiver.script.push({ status: 404, body: "no such hook at 10.0.0.7" });
      await enqueue(gw.gateway, [thresholdAlert(BUDGET, 80)]);
      await waitFor("the message dead", async () => (await outbox(gw, "?status=dead")).length === 1);
      const [dead] = await outbox(gw, "?status=dead");
      assert.equal(dead!.attempts, 1, "not tried again");
      assert.equal(dead!.last_error, "HTTP 404 Not Found");

      receiver.script.push({ status: 408 }, { status: 400 });
      await enqueue(gw.gateway, [thresholdAlert(BUDGET, 100)]);
      await waitFor("the second message dead", async () => (await outbox(gw, "?status=dead")).length === 2);
      assert.deepEqual(receiver.received.map((r) => r.status), [404, 408, 400]);
      assert.equal((await outbox(gw, "?status=dead"))[0]!.last_error, "HTTP 400 Bad Request");
    } finally {
      await receiver.down();
      await gw.close();
    }
  });

  test("a waiting message holds back no newer one, except an update of it, which follows it", async () => {
    const receiver = await WebhookReceiver.start();
    const gw = await start({ TOLLGATE_OUTBOX_RETRY_SCHEDULE: "400ms,400ms" });
    try {
      receiver.secret = (await createChannel(gw, receiver.url)).secret;
      receiver.script.push({ status: 503 });
      const breach = thresholdAlert(BUDGET, 100);
      await enqueue(gw.gateway, [breach]);
      await waitFor("the breach failed once", () => receiver.received.length === 1);
      const recovered = thresholdAlert(BUDGET, 90, { kind: "recovered", threshold: null });
      const other = thresholdAlert({ id: "b-ads", name: "ads-daily", scope: { team: "ads" } }, 80);
      await enqueue(gw.gateway, [recovered]);
      await enqueue(gw.gateway, [other]);
      await waitFor("all three delivered", () => receiver.accepted.length === 3);
      assert.deepEqual(receiver.accepted.map(alertIds), [[other.id], [breach.id], [recovered.id]], "the unrelated alert went first; the recovery after its breach");
    } finally {
      await receiver.down();
      await gw.close();
    }
  });
});

describe("outgoing requests to private addresses", () => {
  const body = (url: string) => JSON.stringify({ platform: "webhook", name: "ops", url });

  test("a channel whose host is a forbidden address is refused when created or changed, with the reason", async () => {
    const gw = await start({ TOLLGATE_JOBS: "off", TOLLGATE_OUTBOUND_ALLOW: "" });
    try {
      const cases: [string, string][] = [
        ["http://169.254.169.254/latest/meta-data", "169.254.169.254 is a cloud metadata address"],
        ["http://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"],
        ["http://127.0.0.1:8080/hooks", "127.0.0.1 is a loopback address"],
        ["http://[::1]/", "::1 is a loopback address"],
        ["http://[::ffff:127.0.0.1]/", "::ffff:7f00:1 is an IPv4-mapped IPv6 address"],
        ["http://10.1.2.3/", "10.1.2.3 is a private address"],
        ["http://192.168.0.10/", "192.168.0.10 is a private address"],
        ["http://[fe80::1]/", "fe80::1 is a link-local address"],
        ["http://0.0.0.0:9/", "0.0.0.0 is a 'this network' address"],
        ["http://localhost:3000/", "localhost is this host (a loopback address)"],
      ];
      for (const [url, why] of cases) {
        const res = await gw.admin("/api/channels", { method: "POST", body: body(url) });
        assert.equal(res.status, 400, url);
        const problem = (await res.json()) as { errors: { path: string; message: string }[] };
        assert.deepEqual(problem.errors, [{ path: "url", message: `${why}; TOLLGATE_OUTBOUND_ALLOW can allow it` }], url);
      }
      const ok = await createChannel(gw, "https://hooks.example.com/tollgate");
      const patched = await gw.admin(`/api/channels/${ok.id}`, { method: "PATCH", body: JSON.stringify({ url: "http://169.254.169.254/" }) });
      assert.equal(patched.status, 400);
      assert.equal(((await (await gw.admin(`/api/channels/${ok.id}`)).json()) as { address: { url: string } }).address.url, "https://hooks.example.com/tollgate", "unchanged");
    } finally {
      await gw.close();
    }
  });

  test("TOLLGATE_OUTBOUND_ALLOW lets named addresses and ranges through, and nothing else; a bad entry stops start-up", async () => {
    const gw = await start({ TOLLGATE_JOBS: "off", TOLLGATE_OUTBOUND_ALLOW: "127.0.0.1, 10.0.0.0/8,hooks.internal" });
    try {
      assert.equal((await gw.admin("/api/channels", { method: "POST", body: body("http://127.0.0.1:9/h") })).status, 201);
      assert.equal((await gw.admin("/api/channels", { method: "POST", body: body("http://10.200.0.1/h") })).status, 201);
      assert.equal((await gw.admin("/api/channels", { method: "POST", body: body("http://192.168.1.1/h") })).status, 400);
      assert.equal((await gw.admin("/api/channels", { method: "POST", body: body("http://[::ffff:10.0.0.1]/h") })).status, 201, "a mapped address inside an allowed range");
    } finally {
      await gw.close();
    }
    assert.throws(() => loadConfig({ TOLLGATE_OUTBOUND_ALLOW: "10.0.0.0/33" }), /TOLLGATE_OUTBOUND_ALLOW: expected "10\.0\.0\.0\/33" is not an address or CIDR range/);
    assert.throws(() => loadConfig({ TOLLGATE_OUTBOUND_ALLOW: "http://x" }), /neither a host name, an address nor a CIDR range/);
  });

  test("deliveries to loopback, by address or by a name resolving to it, are refused at connect time: dead with the reason, nothing sent", async () => {
    const receiver = await WebhookReceiver.start();
    // Channels saved while allowed (or before this check existed); the gateway delivering allows nothing.
    const saving = await start({ TOLLGATE_JOBS: "off", TOLLGATE_OUTBOUND_ALLOW: "127.0.0.1,localhost" });
    const gw = await start({ ...FAST_RETRIES, TOLLGATE_OUTBOUND_ALLOW: "" });
    try {
      const byAddress = await createChannel(saving, receiver.url);
      const byName = await createChannel(saving, `http://localhost:${receiver.port}/hooks`);
      await enqueue(gw.gateway, [thresholdAlert(BUDGET, 80)]);
      await waitFor("both messages dead", async () => (await outbox(gw, "?status=dead")).length === 2);
      const dead = await outbox(gw, "?status=dead");
      const errorOf = (id: string) => dead.find((n) => n.channel.id === id)!.last_error;
      assert.equal(errorOf(byAddress.id), "refused: 127.0.0.1 is a loopback address; TOLLGATE_OUTBOUND_ALLOW can allow it");
      assert.match(errorOf(byName.id) ?? "", /^refused: localhost → (127\.0\.0\.1|::1) is a loopback address; TOLLGATE_OUTBOUND_ALLOW can allow it$/);
      assert.ok(dead.every((n) => n.attempts === 1));
      assert.equal(receiver.received.length, 0, "no request reached the receiver");
    } finally {
      await receiver.down();
      await saving.close();
      await gw.close();
    }
  });
});

describe("third-party verifiers", () => {
  test("standardwebhooks and svix verify every delivery as sent, headers and body; a changed byte fails both", async () => {
    const receiver = await WebhookReceiver.start();
    const gw = await start(FAST_RETRIES);
    try {
      const channel = await createChannel(gw, receiver.url);
      receiver.secret = channel.secret;
      await enqueue(gw.gateway, [thresholdAlert(BUDGET, 80)]);
      await enqueue(gw.gateway, [thresholdAlert(BUDGET, 100), thresholdAlert({ id: "b-ads", name: "ads-daily", scope: { team: "ads" } }, 120)]);
      await waitFor("both messages", () => receiver.accepted.length === 2);
      const standard = new StandardWebhook(channel.secret);
      const svix = new SvixWebhook(channel.secret);
      for (const r of receiver.accepted) {
        assert.deepEqual(standard.verify(r.raw, r.headers), r.body);
        assert.deepEqual(svix.verify(r.raw, r.headers), r.body);
        const tampered = r.raw.replace('"tollgate.alerts"', '"tollgate.alertz"');
        assert.throws(() => standard.verify(tampered, r.headers), /No matching signature found/);
        assert.throws(() => svix.verify(tampered, r.headers), /No matching signature found/);
      }
    } finally {
      await receiver.down();
      await gw.close();
    }
  });
});

describe("stored alert versions", () => {
  test("an alert is stored with its version and read back as it was", () => {
    const alert = thresholdAlert(BUDGET, 80);
    assert.deepEqual(readStoredAlert({ ...alert, version: ALERT_VERSION }), { ok: true, alert });
  });

  test("an alert stored before versions existed is read as version 1", () => {
    const alert = thresholdAlert(BUDGET, 80);
    assert.deepEqual(readStoredAlert(JSON.parse(JSON.stringify(alert))), { ok: true, alert });
  });

  test("an alert stored before it carried a run-out date reads with none", () => {
    const { run_out_at: _, ...before } = thresholdAlert(BUDGET, 80);
    assert.deepEqual(readStoredAlert({ ...before, version: ALERT_VERSION }), { ok: true, alert: { ...before, run_out_at: null } });
  });

  test("an unknown version or a shape its version does not allow is an error that says which", () => {
    const alert = thresholdAlert(BUDGET, 80);
    assert.deepEqual(readStoredAlert({ ...alert, version: 99 }), {
      ok: false,
      message: "alert version 99 is not one this gateway reads (1 to 2); upgrade the gateway, then resend",
    });
    assert.equal((readStoredAlert({ ...alert, version: "2" }) as { message: string }).message.startsWith('alert version "2" is not one'), true);
    const { title: _, ...untitled } = alert;
    assert.deepEqual(readStoredAlert({ ...untitled, version: 2 }), { ok: false, message: "a version 2 alert that does not fit its shape: title: Invalid input: expected string, received undefined" });
    assert.equal(readStoredAlert("threshold").ok, false);
  });

  test("a row written before versions existed is delivered; one of an unknown version goes dead with the reason and holds nothing up", async () => {
    const receiver = await WebhookReceiver.start();
    const gw = await start(FAST_RETRIES);
    try {
      const channel = await createChannel(gw, receiver.url);
      receiver.secret = channel.secret;
      const [old, future, current] = [thresholdAlert(BUDGET, 50), thresholdAlert(BUDGET, 80), thresholdAlert(BUDGET, 100)];
      // Rows as an older gateway wrote them (no version) and as a newer one might (version 99).
      await dbOf(gw).insert(notifications).values([
        { channelId: channel.id, dedupeKey: `${channel.id}:${old!.id}`, payload: { alerts: [old] } },
        { channelId: channel.id, dedupeKey: `${channel.id}:${future!.id}`, payload: { alerts: [{ ...future, version: 99, new_field: true }] } },
      ]);
      await enqueue(gw.gateway, [current!]);
      const [stored] = await dbOf(gw).select({ payload: notifications.payload }).from(notifications).where(sql`dedupe_key = ${`${channel.id}:${current!.id}`}`);
      assert.equal((stored!.payload as { alerts: { version: number }[] }).alerts[0]!.version, ALERT_VERSION, "new rows carry the current version");

      await waitFor("the old and the current message delivered", () => receiver.accepted.length === 2);
      assert.deepEqual(receiver.accepted.map(alertIds), [[old!.id], [current!.id]], "in order, the unreadable one skipped over");
      assert.equal(receiver.accepted[0]!.body.spend_usd, "250", "the old row's alert is delivered whole");
      assert.equal(receiver.received.length, 2, "the unreadable message was never sent");

      const [dead] = await outbox(gw, "?status=dead");
      assert.equal(dead!.dedupe_key, `${channel.id}:${future!.id}`);
      assert.equal(dead!.last_error, "unreadable: alert 1 of 1: alert version 99 is not one this gateway reads (1 to 2); upgrade the gateway, then resend");
      assert.deepEqual(dead!.alerts, []);
      const delivered = await outbox(gw, "?status=delivered");
      assert.deepEqual(delivered.map((n) => n.alerts.map((a) => a.id)), [[current!.id], [old!.id]], "the old row lists its alert");
    } finally {
      await receiver.down();
      await gw.close();
    }
  });
});

describe("two gateway processes on one database", () => {
  test("claiming from the same outbox, they deliver each message exactly once, each channel in order", async () => {
    const a = await start(FAST_RETRIES);
    const b = await start(FAST_RETRIES, second);
    const receiver = await WebhookReceiver.start();
    receiver.secret = newWebhookSecret();
    receiver.delayMs = 3;
    try {
      const channelIds: string[] = [];
      for (let i = 0; i < 4; i++) channelIds.push((await createChannel(i % 2 ? a : b, receiver.url, { secret: receiver.secret })).id);
      const raised = Array.from({ length: 15 }, (_, i) => thresholdAlert(BUDGET, i + 1));
      for (const [i, alert] of raised.entries()) await enqueue((i % 2 ? a : b).gateway, [alert]);

      const expected = raised.length * channelIds.length;
      await waitFor("every message delivered", () => receiver.accepted.length >= expected);
      await waitFor("both outboxes settled", async () => (await outbox(a, "?status=delivered&limit=500")).length === expected);
      assert.equal(receiver.received.length, expected, "no message was sent twice");
      assert.equal(new Set(receiver.received.map((r) => r.id)).size, expected);
      for (const id of channelIds) {
        const arrived = receiver.accepted.filter((r) => r.id.startsWith(`${id}:`)).map((r) => alertIds(r)[0]);
        assert.deepEqual(arrived, raised.map((r) => r.id), `channel ${id} in order`);
      }
      const [tries] = await database.rows<{ max: number }>(sql`select max(attempts)::int as max from notifications`);
      assert.equal(tries!.max, 1, "no row was claimed twice");
    } finally {
      await receiver.down();
      await a.close();
      await b.close();
    }
  });
});

describe("outbox API", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await start({ TOLLGATE_JOBS: "off" });
  });
  after(() => gw.close());

  const problem = async (res: Response) => ({ status: res.status, type: res.headers.get("content-type"), body: (await res.json()) as { detail: string; errors?: { path: string; message: string }[] } });

  test("bad queries and ids are refused with what was expected", async () => {
    const status = await problem(await gw.admin("/api/outbox?status=failed"));
    assert.equal(status.status, 400);
    assert.match(status.type ?? "", /^application\/problem\+json/);
    assert.deepEqual(status.body.errors, [{ path: "status", message: "one of pending, delivered, dead" }]);
    const limit = await problem(await gw.admin("/api/outbox?limit=0"));
    assert.deepEqual(limit.body.errors, [{ path: "limit", message: "a whole number from 1 to 500" }]);
    const unknown = await problem(await gw.admin("/api/outbox?state=dead"));
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.errors?.[0]?.message.includes("state"), true);

    const notNumber = await problem(await gw.admin("/api/outbox/abc/resend", { method: "POST" }));
    assert.equal(notNumber.status, 400);
    assert.equal(notNumber.body.detail, "\"abc\" is not a notification id; ids are whole numbers");
    const missing = await problem(await gw.admin("/api/outbox/424242/resend", { method: "POST" }));
    assert.equal(missing.status, 404);
    assert.equal(missing.body.detail, "no notification with id 424242");

    const alerts = await problem(await gw.admin("/api/alerts?limit=many"));
    assert.deepEqual(alerts.body.errors, [{ path: "limit", message: "a whole number from 1 to 500" }]);
  });

  test("a pending message is not resent; the worker being off leaves it pending", async () => {
    const channel = await createChannel(gw, "http://127.0.0.1:9/never");
    await enqueue(gw.gateway, [thresholdAlert(BUDGET, 80)]);
    const [row] = await outbox(gw, "?status=pending");
    assert.equal(row!.channel.id, channel.id);
    assert.equal(row!.attempts, 0);
    const res = await problem(await gw.admin(`/api/outbox/${row!.id}/resend`, { method: "POST" }));
    assert.equal(res.status, 409);
    assert.equal(res.body.detail, `notification ${row!.id} is pending; only dead notifications are resent`);
  });

  test("recent firings come with their budget, newest first", async () => {
    const created = await gw.gateway.budgets.create(
      { name: "ops-weekly", scope: {}, amount_usd: 100_000_000_000_000n, period: "week", timezone: "UTC", thresholds: [50, 100], mode: "soft", paused: false },
      "test",
    );
    assert.ok(created.ok);
    const budgetId = created.budget.id;
    await dbOf(gw).execute(sql`insert into alert_firings (id, budget_id, period_start, kind, threshold, spend, amount, fired_at) values
      ('f1', ${budgetId}, '2025-06-16T00:00:00Z', 'threshold', 50, '50000000000000', '100000000000000', '2025-06-18T10:00:00Z'),
      ('f2', ${budgetId}, '2025-06-16T00:00:00Z', 'forecast', 0, '60000000000000', '100000000000000', '2025-06-18T11:00:00Z')`);
    const res = await gw.admin("/api/alerts?budget=ops-weekly&limit=10");
    assert.equal(res.status, 200);
    const { alerts } = (await res.json()) as { alerts: Record<string, unknown>[] };
    assert.deepEqual(
      alerts.map((a) => [a.id, a.kind, a.threshold, a.spend_usd, a.amount_usd, (a.budget as { name: string }).name]),
      [
        ["f2", "forecast", null, "60", "100", "ops-weekly"],
        ["f1", "threshold", 50, "50", "100", "ops-weekly"],
      ],
    );
  });
});

const dbOf = (gw: TestGateway) => gw.gateway.database.db;
