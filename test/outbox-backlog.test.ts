import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { sql } from "drizzle-orm";
import { type Alert, storedAlert } from "../src/alerts/alert.ts";
import { type Claimed, OutboxNotifier } from "../src/alerts/outbox.ts";
import { earlierStates } from "../src/alerts/threads.ts";
import type { Database } from "../src/db/connection.ts";
import { channels, notifications } from "../src/db/schema.ts";
import { thresholdAlert } from "./helpers/alerts.ts";
import { openTestDatabase } from "./helpers/db.ts";

/*
 * The outbox's claim with a backlog of thousands of messages per channel, as an outage of a
 * receiver leaves it: still one message per channel at a time, in order, a failed one losing its
 * place, an update waiting for the message it updates. The claim runs on the real notifier
 * against the database; rows are written as the notifier writes them.
 */

const BACKLOG = 3000;
const LEASE_MS = 60_000;
let database: Database;
let outbox: OutboxNotifier;
const ids = new Map<string, number[]>();

const SEARCH = { id: "b-search", name: "search-monthly", scope: { team: "search" } };
const ADS = { id: "b-ads", name: "ads-monthly", scope: { team: "ads" } };

const row = (channelId: string, alert: Alert, extra: Partial<typeof notifications.$inferInsert> = {}) => ({
  channelId,
  dedupeKey: `${channelId}:${alert.id}`,
  payload: { alerts: [storedAlert(alert)], follows: earlierStates(alert) },
  ...extra,
});

before(async () => {
  database = await openTestDatabase();
  outbox = new OutboxNotifier(database, { scheduleMs: [60_000] });
  const { db } = database;
  for (const id of ["ch-a", "ch-b", "ch-off"])
    await db.insert(channels).values({ id, platform: "webhook", name: id, address: { url: "https://hooks.example.com" }, kinds: ["threshold"] });
  await db.update(channels).set({ disabledAt: sql`now()` }).where(sql`id = 'ch-off'`);
  // ch-a: first a message of ads' breach that failed and waits an hour for its retry, then the backlog,
  // with at its middle the ads budget's recovery (an update of that breach: it must follow it).
  const breach = thresholdAlert(ADS, 100);
  const recovered = thresholdAlert(ADS, 0, { kind: "recovered", title: "ads-monthly is back under budget" });
  const backlogA = Array.from({ length: BACKLOG }, (_, i) => (i === BACKLOG / 2 ? row("ch-a", recovered) : row("ch-a", thresholdAlert(SEARCH, 1 + (i % 99)))));
  const inserts = [
    [row("ch-a", breach, { attempts: 1, lastError: "HTTP 500", nextAttemptAt: new Date(Date.now() + 3_600_000) })],
    backlogA,
    Array.from({ length: BACKLOG }, (_, i) => row("ch-b", thresholdAlert(SEARCH, 1 + (i % 99)))),
    Array.from({ length: 50 }, (_, i) => row("ch-off", thresholdAlert(SEARCH, 1 + i))),
  ];
  for (const values of inserts)
    for (let i = 0; i < values.length; i += 500) await db.insert(notifications).values(values.slice(i, i + 500));
  for (const channel of ["ch-a", "ch-b"]) {
    const rows = await database.rows<{ id: number }>(sql`select id from notifications where channel_id = ${channel} order by id`);
    ids.set(channel, rows.map((r) => Number(r.id)));
  }
});
after(() => database?.close());

const claim = () => outbox.claim(["webhook"], 10, LEASE_MS);
const byChannel = (claimed: Claimed[]) => Object.fromEntries(claimed.map((c) => [c.channelId, c.id]));

test(`with ${BACKLOG} messages waiting in each of two channels, each claim takes each channel's next one only, in order`, async () => {
  const a = ids.get("ch-a")!;
  const b = ids.get("ch-b")!;
  assert.equal(a.length, BACKLOG + 1);

  // ch-a's failed message lost its place; the disabled channel gives nothing.
  let claimed = await claim();
  assert.deepEqual(byChannel(claimed), { "ch-a": a[1], "ch-b": b[0] });
  assert.deepEqual(await claim(), [], "each channel's message in flight on its first try holds back the rest");

  // Delivered, the next one follows; failed, it loses its place to the next.
  const [first, second] = claimed.sort((x, y) => x.channelId.localeCompare(y.channelId));
  await outbox.settle(first!, { kind: "delivered" });
  await outbox.settle(second!, { kind: "retry", message: "HTTP 503", retryAfterMs: 3_600_000 });
  claimed = await claim();
  assert.deepEqual(byChannel(claimed), { "ch-a": a[2], "ch-b": b[1] });
  for (const c of claimed) await outbox.settle(c, { kind: "delivered" });

  // Up to the recovery in ch-a: it waits for the breach it updates, so the message after it goes.
  const update = a[1 + BACKLOG / 2]!;
  await database.db.execute(sql`update notifications set status = 'delivered' where channel_id = 'ch-a' and id > ${a[0]} and id < ${update}`);
  claimed = await claim();
  assert.deepEqual(byChannel(claimed), { "ch-a": a[2 + BACKLOG / 2], "ch-b": b[2] });

  // The breach given up, its recovery holds nothing back of its own any more and goes next.
  await database.db.execute(sql`update notifications set status = 'dead' where id = ${a[0]}`);
  for (const c of claimed) await outbox.settle(c, { kind: "delivered" });
  claimed = await claim();
  assert.deepEqual(byChannel(claimed), { "ch-a": update, "ch-b": b[3] });
  const [recovery] = claimed.filter((c) => c.channelId === "ch-a");
  assert.equal(recovery!.payload.alerts[0]!.kind, "recovered");
});

test("the limit counts channels, lowest id first", async () => {
  // Every lease given up: both channels' next messages are due, and a limit of one takes ch-a's.
  await database.db.execute(sql`update notifications set next_attempt_at = now() where status = 'pending' and last_error is null`);
  const [only, ...rest] = await outbox.claim(["webhook"], 1, LEASE_MS);
  assert.deepEqual(rest, []);
  assert.equal(only!.channelId, "ch-a");
  assert.deepEqual(await outbox.claim(["slack"], 10, LEASE_MS), [], "only the platforms asked for");
});
