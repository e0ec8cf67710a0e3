import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { pino } from "pino";
import { type Door, TROUBLE, chatDoor } from "../commands/door.ts";
import { createRegistry } from "../commands/registry.ts";
import { BudgetStore } from "../src/budgets/store.ts";
import { ChannelStore } from "../src/alerts/channels.ts";
import { MuteStore } from "../src/alerts/mutes.ts";
import { OutboxNotifier } from "../src/alerts/outbox.ts";
import { Members } from "../src/approvals/members.ts";
import { Approvals } from "../src/approvals/requests.ts";
import type { Database } from "../src/db/connection.ts";
import { secretBox } from "../src/keys/secret-box.ts";
import { createServices } from "../src/services.ts";
import { openTestDatabase } from "./helpers/db.ts";

/*
 * The door every platform goes through, on its own over a real database: the conversation it
 * resolves, the role it applies, and the one way it answers a failure. Its platform here is `cli`,
 * one members can be registered on, with an address of its own making.
 */

let database: Database;
let door: Door;
const logged: Record<string, unknown>[] = [];

before(async () => {
  database = await openTestDatabase();
  const budgets = new BudgetStore(database);
  // The door here is the CLI's, the one platform every gateway has.
  const members = new Members(database, []);
  const notifier = new OutboxNotifier(database, { scheduleMs: [10, 100] });
  const services = createServices({
    database,
    budgets,
    members,
    approvals: new Approvals(database, budgets, members, notifier, { ttlMs: 3_600_000, fourEyes: true }),
    channels: new ChannelStore(database, secretBox(Buffer.alloc(32, 7))),
    mutes: new MuteStore(database),
  });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logged.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  door = chatDoor({ platform: "cli", registry: createRegistry(), services, logger: pino(sink), timezone: "Europe/Berlin" });
  await members.set({ platform: "cli", user_id: "ADA", role: "admin" }, "admin");
});

after(async () => {
  await database.close();
});

const place = { address: { room: "r1", server: "s1" }, key: { room: "r1" }, name: "#r1", private: false };

describe("the chat door", () => {
  test("a conversation is bound by its key, takes its channel's time zone, and its stored address follows a move", async () => {
    const fresh = await door.conversation(place);
    assert.equal(fresh.channelId, undefined);
    assert.equal(fresh.timezone, "Europe/Berlin");
    const ada = door.context({ userId: "ADA", name: "Ada" }, fresh);
    const subscribed = await door.typed("subscribe team:search alerts", ada);
    assert.equal(subscribed.error, false, subscribed.summary);
    const moved = await door.conversation({ ...place, address: { room: "r1", server: "s2" } });
    assert.ok(moved.channelId);
    const channel = await door.services.channels.get(moved.channelId);
    assert.deepEqual(channel?.address, { room: "r1", server: "s2" });
    assert.equal(channel?.name, "#r1");
  });

  test("the role comes from the command: a viewer may look but not change, and is told which role it takes", async () => {
    const conversation = await door.conversation(place);
    const nobody = door.context({ userId: "NOBODY" }, conversation);
    assert.equal((await door.typed("budget list", nobody)).error, false);
    const refused = await door.typed("budget set team:search $500 monthly", nobody);
    assert.equal(refused.title, "Not allowed");
    assert.match(refused.summary ?? "", /budget set needs the admin role; you are a viewer/);
    assert.deepEqual(await door.services.budgets.list(), []);
    assert.match((await door.raiseRefusal(nobody))?.summary ?? "", /budget raise needs the requester role/);
  });

  test("a press names a command; a target that is neither a budget nor a period says so", async () => {
    const ada = door.context({ userId: "ADA" }, await door.conversation(place));
    const gone = await door.pressed({ action: "breakdown", target: "no-such-thing" }, ada);
    assert.equal(gone.error, true);
    assert.match(gone.summary ?? "", /no-such-thing is no longer a budget or a period/);
    const week = await door.pressed({ action: "breakdown", target: "this-week" }, ada);
    assert.match(week.title, /^AI spend this-week/);
  });

  test("an amount is read with what follows it, or refused with what was expected", () => {
    assert.deepEqual(door.readAmount(" $1.5k launch week "), { ok: true, amount: 1_500_000_000_000_000n, rest: ["launch", "week"] });
    const bad = door.readAmount("lots");
    assert.ok(!bad.ok);
    assert.match(bad.problem, /"lots" is not an amount: expected an amount of USD/);
  });

  test("a failure is the same apology everywhere; the log gets its kind, never its message", async () => {
    const failed = await door.safely("command", async () => {
      throw Object.assign(new TypeError("select * from budgets where name = 'secret-team'"), { code: "XX000" });
    });
    assert.equal(failed, TROUBLE);
    const line = logged.at(-1)!;
    assert.equal(line.msg, "cli command failed");
    assert.equal(line.component, "cli");
    assert.equal(line.error, "TypeError");
    assert.equal(line.code, "XX000");
    assert.doesNotMatch(JSON.stringify(line), /secret-team/);
  });

  test("an answer ready within the platform's deadline is given at once; a later one is left to follow up", async () => {
    const ada = door.context({ userId: "ADA" }, await door.conversation(place));
    const quick = await door.promptly(door.typed("help", ada), 5_000);
    assert.equal(quick?.title, "Tollgate: AI spend and budgets");
    let finish: (value: string) => void = () => {};
    const slow = new Promise<string>((resolve) => (finish = resolve));
    assert.equal(await door.promptly(slow, 20), undefined);
    finish("later");
    assert.equal(await slow, "later");
  });
});
