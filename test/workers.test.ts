import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import OpenAI from "openai";
import { MMAP_THRESHOLD_BYTES, mallocEnvironment } from "../src/cluster/malloc.ts";
import type { FakeUpstream } from "./fakes/fake-upstream.ts";
import { startFakeOpenAI } from "./fakes/openai.ts";
import { ADMIN_TOKEN, PG, type Server, assertOnce, countsOf, createKey, dataDir, load, postgresDatabase, startServer, stop } from "./helpers/served-gateway.ts";
import { HANG_MS, waitFor } from "./helpers/wait.ts";

/*
 * `tollgate serve` with TOLLGATE_WORKERS=2, as operators run it: a primary and two worker
 * processes sharing the port and one PostgreSQL database. Which worker served a call, ran a job or
 * listened is read from the JSON logs, which carry the worker's slot and pid.
 */

const NEEDS_PG = PG ? false : "needs TEST_DATABASE_URL: workers share a PostgreSQL database (PGlite lives in one process)";
const PICO = 1_000_000_000_000n;

let upstream: FakeUpstream;
before(async () => {
  upstream = await startFakeOpenAI();
});
after(() => upstream.close());

/** The pid of each worker slot's latest process, from the primary's "worker listening" lines. */
function workerPids(server: Server): Map<number, number> {
  const pids = new Map<number, number>();
  for (const line of server.logs()) if (line.msg === "worker listening") pids.set(line.worker as number, line.workerPid as number);
  return pids;
}

/** The worker slot that logged each proxied call, by call id. */
function servedBy(server: Server): Map<string, number> {
  return new Map(server.logs().flatMap((line) => (line.msg === "request" && typeof line.reqId === "string" && typeof line.worker === "number" ? [[line.reqId, line.worker]] : [])));
}

/** A call on a connection of its own, so the primary hands each to the next worker in turn. */
function callOnNewConnection(server: Server, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
    const req = request(`${server.url}/openai/v1/chat/completions`, { method: "POST", agent: false, headers: { authorization: `Bearer ${key}`, "content-type": "application/json" } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode!));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function admin(server: Server, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
}

describe("tollgate serve with two workers", { concurrency: 1 }, () => {
  test("two workers on one port and one PostgreSQL database", { skip: NEEDS_PG, timeout: HANG_MS }, async (t) => {
    const pg = await postgresDatabase();
    const server = await startServer(upstream, dataDir(), {
      DATABASE_URL: pg.url,
      TOLLGATE_WORKERS: "2",
      TOLLGATE_JOBS: "on",
      // Budgets evaluated every second: a job the test can watch run.
      TOLLGATE_EVALUATE_CRON: "* * * * * *",
      TOLLGATE_BUDGET_REFRESH_MS: "50",
      LOG_LEVEL: "debug",
    });
    try {
      const openai = (key: string) => new OpenAI({ baseURL: `${server.url}/openai/v1`, apiKey: key, maxRetries: 0 });

      await t.test("calls through the OpenAI SDK are served by both workers and each recorded once", async () => {
        const key = await createKey(server, "virtual");
        const ids: string[] = [];
        // Eight calls at a time: eight connections, which the primary hands out in turn.
        for (let round = 0; round < 10; round++) {
          const answers = await Promise.all(
            Array.from({ length: 8 }, async () => {
              const { response } = await openai(key).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }).withResponse();
              return response.headers.get("x-tollgate-request-id")!;
            }),
          );
          ids.push(...answers);
        }
        await waitFor("every call in the ledger", async () => (await countsOf(pg.database, ids)).size === ids.length);
        assertOnce(await countsOf(pg.database, ids), ids);
        await waitFor("the request log lines", () => ids.every((id) => servedBy(server).has(id)));
        const by = servedBy(server);
        const slots = new Set(ids.map((id) => by.get(id)));
        assert.deepEqual([...slots].sort(), [1, 2], "both workers served calls");
        // A scrape reaches one worker: its figures say which.
        assert.match(await (await fetch(`${server.url}/metrics`)).text(), /^tollgate_journal_events_written_total\{worker="[12]"\} \d+/m);
      });

      await t.test("a hard budget holds across the workers: spend never passes the amount", async () => {
        const team = "workers-burst";
        const created = await admin(server, "POST", "/api/budgets", { name: team, scope: { team }, amount_usd: "1", period: "month", mode: "hard" });
        assert.equal(created.status, 201, await created.clone().text());
        // A sender key of no team: the event's own team counts.
        const { key: ingest } = (await (await admin(server, "POST", "/api/keys", { kind: "ingest", name: `${team}-sender` })).json()) as { key: string };
        // $0.95 spent already: gpt-4o input tokens at $2.50 a million.
        const seeded = await fetch(`${server.url}/v1/usage`, {
          method: "POST",
          headers: { authorization: `Bearer ${ingest}`, "content-type": "application/json" },
          body: JSON.stringify({ id: `seed-${team}`, timestamp: new Date().toISOString(), provider: "openai", model: "gpt-4o", input_tokens: 380_000, team }),
        });
        assert.equal(seeded.status, 200);
        const res = await admin(server, "POST", "/api/keys", { kind: "virtual", name: team, team });
        const { key } = (await res.json()) as { key: string };
        // Each call's worst case ($0.0047 at most for 300 output tokens) fits: the budget, not the estimate, refuses.
        const ask = { model: "gpt-4o", max_tokens: 300, messages: [{ role: "user" as const, content: "x".repeat(1300) }] };
        // Which holders had a share while the calls ran: a holder whose budget goes quiet hands its
        // lease back and drops its row, so the rows left at the end say nothing.
        const holdersSeen = new Set<string>();
        let bursting = true;
        const sampling = (async () => {
          while (bursting) {
            const rows = await pg.database.rows<{ holder: string }>(sql`
              select l.holder from budget_leases l join budgets b on b.id = l.budget_id where b.name = ${team}`);
            for (const r of rows) holdersSeen.add(r.holder);
            await new Promise((r) => setTimeout(r, 10));
          }
        })();
        const outcomes = await Promise.all(
          Array.from({ length: 100 }, () =>
            openai(key)
              .chat.completions.create(ask)
              .then(
                () => 200,
                (err: unknown) => (err instanceof OpenAI.APIError ? (err.status ?? 0) : 0),
              ),
          ),
        );
        bursting = false;
        await sampling;
        const admitted = outcomes.filter((s) => s === 200).length;
        assert.ok(admitted > 0, "some calls were admitted");
        assert.ok(outcomes.every((s) => s === 200 || s === 429), `only answers and budget refusals: ${outcomes.join(",")}`);
        assert.ok(outcomes.includes(429), "the budget refused the calls beyond it");
        const spend = async () => {
          const [row] = await pg.database.rows<{ cost: string; proxied: string }>(sql`
            select coalesce(sum(cost), 0)::text as cost, count(*) filter (where source = 'proxy')::text as proxied from usage_events where team = ${team}`);
          return { cost: BigInt(row!.cost), proxied: Number(row!.proxied) };
        };
        await waitFor("every admitted call in the ledger", async () => (await spend()).proxied === admitted);
        const { cost } = await spend();
        assert.ok(cost <= PICO, `spend ${cost} pico-USD stays within the $1 budget`);
        // Both workers held a share of it: each is a holder of its own.
        assert.equal(holdersSeen.size, 2, `holders seen during the calls: ${[...holdersSeen].join(", ")}`);
      });

      await t.test("a key revoked through one worker is refused by every worker at once", async () => {
        const key = await createKey(server, "virtual");
        // Both workers know the key (their caches hold it for five seconds).
        for (let i = 0; i < 6; i++) assert.equal(await callOnNewConnection(server, key), 200);
        const { keys } = (await (await admin(server, "GET", "/api/keys")).json()) as { keys: { id: string; prefix: string }[] };
        const id = keys.find((k) => key.startsWith(k.prefix))!.id;
        assert.equal((await admin(server, "DELETE", `/api/keys/${id}`)).status, 200);
        const statuses = [];
        for (let i = 0; i < 6; i++) statuses.push(await callOnNewConnection(server, key));
        assert.deepEqual(statuses, [401, 401, 401, 401, 401, 401]);
      });

      await t.test("SIGKILL of a worker under load: it is replaced, takes over its jobs, and no answered call is lost", async () => {
        const before = workerPids(server);
        const key = await createKey(server, "virtual");
        const traffic = load(server, key, 8);
        await waitFor("calls answered by both workers", () => {
          const by = servedBy(server);
          return traffic.answered.length >= 150 && new Set(traffic.answered.map((id) => by.get(id))).size === 2;
        });
        // Slot 1: the worker running the jobs.
        const killed = before.get(1)!;
        process.kill(killed, "SIGKILL");
        await waitFor("a replacement for worker 1", () => workerPids(server).get(1) !== killed);
        const atReplacement = traffic.answered.length;
        await waitFor("more calls answered after it", () => traffic.answered.length >= atReplacement + 100);
        await traffic.stop();
        const answered = [...traffic.answered];
        await waitFor("every answered call in the ledger", async () => (await countsOf(pg.database, answered)).size === answered.length);
        assertOnce(await countsOf(pg.database, answered), answered);
        const logs = server.logs();
        const diedLine = logs.find((l) => l.msg?.toString().startsWith("worker died") && l.workerPid === killed);
        assert.equal(diedLine?.signal, "SIGKILL");
        assert.equal(diedLine?.worker, 1);
        // Its events that were only in its journal (the batch window is a second long) were replayed from there.
        assert.ok(
          logs.some((l) => l.msg === "sealed a journal segment left open by a process that is gone" && String(l.owner).startsWith(`${killed}.`)),
          "the dead worker's journal segment was taken over",
        );
        const jobsOn = logs.filter((l) => l.msg === "worker listening" && l.jobs === "on").map((l) => l.worker);
        assert.deepEqual(jobsOn, [1, 1], "jobs run in slot 1 only, and come back with its replacement");
      });

      await t.test("scheduled jobs run in one worker only", async () => {
        const pids = workerPids(server);
        await waitFor("the replacement runs the evaluation job", () =>
          server.logs().some((l) => l.msg === "job ran" && l.job === "evaluate-budgets" && l.pid === pids.get(1)),
        );
        const ran = server.logs().filter((l) => l.msg === "job ran");
        assert.ok(ran.length >= 3, `jobs ran: ${ran.length}`);
        assert.ok(ran.every((l) => l.worker === 1), "every job run was in worker 1 (or its replacement)");
      });

      await t.test("each worker starts with glibc's mmap threshold fixed, a replacement too", { skip: process.platform === "linux" ? false : "reads /proc" }, () => {
        for (const [slot, pid] of workerPids(server)) {
          const environment = readFileSync(`/proc/${pid}/environ`, "latin1").split("\0");
          assert.ok(environment.includes(`MALLOC_MMAP_THRESHOLD_=${MMAP_THRESHOLD_BYTES}`), `worker ${slot} (pid ${pid}) has the threshold`);
        }
      });
    } finally {
      await stop(server);
      await pg.database.close();
    }
    const [code] = await server.exited;
    assert.equal(code, 0, `the primary stopped cleanly: ${server.stderr()}`);
    const stopped = server.logs().filter((l) => l.msg === "stopped");
    assert.equal(stopped.length, 3, "each worker and the primary stopped");
  });
});

test("a worker's malloc threshold yields to the operator's own malloc tuning", () => {
  assert.deepEqual(mallocEnvironment({}), { MALLOC_MMAP_THRESHOLD_: "131072" });
  assert.deepEqual(mallocEnvironment({ MALLOC_MMAP_THRESHOLD_: "65536" }), {}, "their threshold is inherited as it is");
  assert.deepEqual(mallocEnvironment({ GLIBC_TUNABLES: "glibc.malloc.mmap_threshold=262144" }), {}, "their threshold as a tunable");
  assert.deepEqual(mallocEnvironment({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536" }), {}, "among other tunables");
  assert.deepEqual(mallocEnvironment({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0" }), { MALLOC_MMAP_THRESHOLD_: "131072" }, "other malloc tunables (arenas, caches) leave the threshold free to move");
  assert.deepEqual(mallocEnvironment({ MALLOC_ARENA_MAX: "2" }), { MALLOC_MMAP_THRESHOLD_: "131072" }, "so does another malloc variable");
  assert.deepEqual(mallocEnvironment({ GLIBC_TUNABLES: "glibc.rtld.optional_static_tls=512" }), { MALLOC_MMAP_THRESHOLD_: "131072" }, "tunables of another part");
});
