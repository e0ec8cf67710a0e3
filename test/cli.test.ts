import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { seedDataDir } from "./helpers/template.ts";
import { HANG_MS, waitFor } from "./helpers/wait.ts";

/**
 * The real `tollgate` binary as a user runs it, in child processes. Every group has a data folder
 * of its own and always uses embedded PGlite, whatever database the rest of the suite runs on.
 */

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "bin", "tollgate.js");

/** The parent's environment without anything that would point the CLI elsewhere. */
function cliEnv(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("TOLLGATE_") || k.startsWith("NODE_TEST") || ["DATABASE_URL", "TEST_DATABASE_URL", "PORT", "HOST", "LOG_LEVEL", "NODE_OPTIONS"].includes(k)) continue;
    env[k] = v;
  }
  return { ...env, TOLLGATE_DATA_DIR: dataDir, LOG_LEVEL: "silent", ...extra };
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(dataDir: string, args: string[], extra: Record<string, string> = {}, input = ""): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [BIN, ...args], { cwd: dataDir, env: cliEnv(dataDir, extra), timeout: HANG_MS }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
    child.stdin!.end(input);
  });
}

/** An exact decimal USD string → pico-USD. */
function pico(usd: string): bigint {
  const m = /^(\d+)(?:\.(\d{1,12}))?$/.exec(usd);
  assert.ok(m, `"${usd}" is not an exact decimal amount`);
  return BigInt(m[1]!) * 10n ** 12n + BigInt((m[2] ?? "").padEnd(12, "0"));
}

/** "N accepted, N duplicates, N rejected" of ingest and demo. */
function summary(stdout: string): { accepted: number; duplicates: number; rejected: number } {
  const m = /^(\d+) accepted, (\d+) duplicates, (\d+) rejected$/m.exec(stdout);
  assert.ok(m, `no import summary in:\n${stdout}`);
  return { accepted: Number(m[1]), duplicates: Number(m[2]), rejected: Number(m[3]) };
}

/** A failure the user sees: one line on stderr, no stack trace. */
function assertOneLineError(r: Run, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^tollgate: /);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
}

interface SpendJson {
  period: { start: string; end: string; label: string };
  total: { cost_usd: string; requests: number | string };
  groups: { key: string; cost_usd: string; requests: number | string }[];
  unpriced_requests: number | string;
}

const dirs: string[] = [];
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tollgate-cli-"));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("tollgate CLI", { concurrency: true }, () => {
  describe("on the embedded database", { concurrency: 1 }, () => {
    let dir: string;
    let firstDemo: { accepted: number; duplicates: number; rejected: number };
    let spend: SpendJson;
    before(() => {
      dir = dataDir();
    });

    test("demo fills the ledger", async () => {
      const r = await run(dir, ["demo", "--days", "3"]);
      assert.equal(r.code, 0, r.stderr);
      firstDemo = summary(r.stdout);
      assert.ok(firstDemo.accepted > 100, `only ${firstDemo.accepted} demo events`);
      assert.deepEqual({ duplicates: firstDemo.duplicates, rejected: firstDemo.rejected }, { duplicates: 0, rejected: 0 });
    });

    test("spend this-month by team --json: groups that add up exactly to the total", async () => {
      const r = await run(dir, ["spend", "this-month", "by", "team", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      spend = JSON.parse(r.stdout) as SpendJson;
      assert.equal(spend.period.label, "this-month");
      const teams = spend.groups.map((g) => g.key);
      // Every demo team works every day; on the 1st of a month only today's share is in this month.
      for (const team of ["search", "support", "platform"]) assert.ok(teams.includes(team), `${team} in ${teams.join(", ")}`);
      const requests = Number(spend.total.requests);
      assert.ok(requests > 0 && requests <= firstDemo.accepted, `${requests} requests of ${firstDemo.accepted} demo events`);
      assert.equal(spend.groups.reduce((s, g) => s + Number(g.requests), 0), requests);
      const total = pico(spend.total.cost_usd);
      assert.ok(total > 0n);
      assert.equal(spend.groups.reduce((s, g) => s + pico(g.cost_usd), 0n), total);
    });

    test("report --format json agrees with spend to the pico-dollar", async () => {
      const r = await run(dir, ["report", "--period", "this-month", "--format", "json"]);
      assert.equal(r.code, 0, r.stderr);
      const { rows } = JSON.parse(r.stdout) as { rows: { team: string; requests: number; cost_usd: string }[] };
      assert.ok(rows.length >= 3);
      assert.equal(rows.reduce((s, row) => s + pico(row.cost_usd), 0n), pico(spend.total.cost_usd));
      assert.equal(rows.reduce((s, row) => s + row.requests, 0), Number(spend.total.requests));
      for (const group of spend.groups) {
        const ofTeam = rows.filter((row) => row.team === group.key);
        assert.equal(ofTeam.reduce((s, row) => s + pico(row.cost_usd), 0n), pico(group.cost_usd), `team ${group.key}`);
      }
    });

    test("demo again is idempotent: everything already in is a duplicate", async () => {
      const r = await run(dir, ["demo", "--days", "3"]);
      assert.equal(r.code, 0, r.stderr);
      const again = summary(r.stdout);
      assert.equal(again.duplicates, firstDemo.accepted);
      assert.equal(again.rejected, 0);
      // Only calls whose time came between the two runs can be new.
      assert.ok(again.accepted <= 20, `${again.accepted} accepted on a re-run`);
    });
  });

  describe("through a running server", { concurrency: 1 }, () => {
    let dir: string;
    let server: ChildProcess;
    let serverOut = "";
    let exited: Promise<[number | null, NodeJS.Signals | null]>;
    const file = () => join(dir, "usage.ndjson");
    const now = new Date().toISOString();
    const run8 = Math.random().toString(36).slice(2, 10);
    /** gpt-4o, 10,000 prompt tokens of which 8,000 cached, 1,000 output: $0.025. */
    const event = (id: string, team: string, extra: Record<string, unknown> = {}) =>
      JSON.stringify({ id: `${run8}-${id}`, timestamp: now, provider: "openai", model: "gpt-4o", input_tokens: 10_000, cached_input_tokens: 8_000, output_tokens: 1_000, team, project: "p", ...extra });

    before(async () => {
      dir = dataDir();
      // A server starting on a folder that holds a ledger, as in production; the first run's initdb is the other group's.
      await seedDataDir(dir);
      writeFileSync(
        file(),
        [
          event("a", "alpha"), // line 1
          "", // line 2: blank lines are skipped but still counted
          event("b", "alpha"), // line 3
          "{not json", // line 4
          event("c", "beta"), // line 5
          event("d", "beta", { input_tokens: -5 }), // line 6
          "",
        ].join("\n"),
      );
      server = spawn(process.execPath, [BIN, "serve"], { cwd: dir, env: cliEnv(dir, { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info" }), stdio: ["ignore", "pipe", "pipe"] });
      let serverErr = "";
      server.stdout!.on("data", (chunk: Buffer) => (serverOut += chunk.toString()));
      server.stderr!.on("data", (chunk: Buffer) => (serverErr += chunk.toString()));
      exited = once(server, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
      await waitFor("the server to be ready", async () => {
        assert.equal(server.exitCode, null, `the server exited early: ${serverErr}`);
        if (!existsSync(join(dir, "server.json"))) return false;
        const { url } = JSON.parse(readFileSync(join(dir, "server.json"), "utf8")) as { url: string };
        const res = await fetch(`${url}/readyz`).catch(() => null);
        return res?.status === 200;
      });
    });
    after(() => {
      if (server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
    });

    test("server.json names the running server", () => {
      const info = JSON.parse(readFileSync(join(dir, "server.json"), "utf8")) as { url: string; pid: number };
      assert.equal(info.pid, server.pid);
      assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(info.url, "http://127.0.0.1:0");
    });

    test("ingest FILE reports rejected lines by their line in the file and exits 1", async () => {
      const r = await run(dir, ["ingest", file()]);
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(summary(r.stdout), { accepted: 3, duplicates: 0, rejected: 2 });
      assert.match(r.stdout, /^ {2}line 4: .*not JSON/m);
      assert.match(r.stdout, new RegExp(`^ {2}line 6 \\(id ${run8}-d\\): input_tokens: `, "m"));
    });

    test("ingest FILE again skips what is in (resumable)", async () => {
      const r = await run(dir, ["ingest", file()]);
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(summary(r.stdout), { accepted: 0, duplicates: 3, rejected: 2 });
    });

    test("spend today --json goes through the running server", async () => {
      const r = await run(dir, ["spend", "today", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as SpendJson;
      assert.equal(report.total.cost_usd, "0.075");
      assert.equal(Number(report.total.requests), 3);
      // The server's own request log shows the CLI's query: it did not open the data folder itself.
      const logged = /"method":"GET","path":"(\/api)?\/spend","status":200/;
      await waitFor(`the server to log ${logged}`, () => logged.test(serverOut));
    });

    test("spend today by team: the chat's answer in plain text, with exact costs and bars", async () => {
      const r = await run(dir, ["spend", "today", "by", "team"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^AI spend today\n\$0\.08 over 3 requests; new against the same time last period \(\$0\.00\)\.$/m);
      assert.match(r.stdout, /^By team$/m);
      const alpha = r.stdout.split("\n").find((l) => l.startsWith("alpha "));
      const beta = r.stdout.split("\n").find((l) => l.startsWith("beta "));
      assert.ok(alpha && beta, r.stdout);
      assert.match(alpha, /\$0\.05\s+█+$/);
      assert.match(beta, /\$0\.03\s+█+$/);
      // Bars are shares of the largest row: all of the 24 characters, and half.
      assert.equal(alpha.match(/█/g)!.length, 24);
      assert.equal(beta.match(/█/g)!.length, 12);
    });

    test("chat answers any chat command as the admin; a refused one is one line, exit 2", async () => {
      const help = await run(dir, ["chat", "help", "budget"]);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /^How to use budget$/m);
      const viewer = await run(dir, ["chat", "budget", "set", "team:alpha", "$5", "monthly", "--by", "slack:U0NOBODY"]);
      assertOneLineError(viewer, 2, /budget set needs the admin role; you are a viewer/);
      const set = await run(dir, ["chat", "budget", "set", "team:alpha", "$5", "monthly"]);
      assert.equal(set.code, 0, set.stderr);
      assert.match(set.stdout, /^Budget team-alpha-monthly$/m);
      assertOneLineError(await run(dir, ["chat", "subscribe", "alerts"]), 2, /Only a chat conversation can subscribe/);
    });

    test("report --format csv: the finance report", async () => {
      const r = await run(dir, ["report", "--period", "today", "--format", "csv"]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.split(/\r?\n/).filter(Boolean);
      assert.equal(lines[0], "team,project,model,requests,unpriced_requests,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,reasoning_tokens,cost_usd");
      assert.deepEqual(lines.slice(1), ["alpha,p,gpt-4o,2,0,20000,16000,0,2000,0,0.05", "beta,p,gpt-4o,1,0,10000,8000,0,1000,0,0.025"]);
    });

    test("keys create shows the key once; list shows its prefix only; revoke retires it", async () => {
      const created = await run(dir, ["keys", "create", "--kind", "ingest", "--name", "billing-svc", "--team", "billing"]);
      assert.equal(created.code, 0, created.stderr);
      const key = /^key: (tlg_\S+)$/m.exec(created.stdout)?.[1];
      assert.ok(key, created.stdout);
      assert.equal(created.stdout.split(key).length, 2, "the key is printed exactly once");
      const id = /^([0-9a-f-]{36})\s+ingest\s+billing-svc\s+billing/m.exec(created.stdout)?.[1];
      assert.ok(id, created.stdout);

      const listed = await run(dir, ["keys", "list"]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.ok(!listed.stdout.includes(key), "keys list never shows the key");
      const row = listed.stdout.split("\n").find((l) => l.startsWith(id));
      assert.ok(row, listed.stdout);
      assert.ok(row.includes(key.slice(0, 12)), `prefix of the key in: ${row}`);
      assert.match(row, /billing-svc/);

      const revoked = await run(dir, ["keys", "revoke", id]);
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.match(revoked.stdout, /^revoked billing-svc$/m);

      const { url } = JSON.parse(readFileSync(join(dir, "server.json"), "utf8")) as { url: string };
      const res = await fetch(`${url}/v1/usage`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: event("k", "x") });
      assert.equal(res.status, 401);

      const [again, unknown] = await Promise.all([run(dir, ["keys", "revoke", id]), run(dir, ["keys", "revoke", "no-such-key"])]);
      assert.equal(again.code, 0, "revoking twice is a no-op");
      assertOneLineError(unknown, 2, /no key with id no-such-key/);
    });

    test("providers set reads the key from standard input and never prints it; list shows where keys come from", async () => {
      const secret = "sk-cli-provider-key-abcdefghijklmn";
      const set = await run(dir, ["providers", "set", "anthropic"], {}, `${secret}\n`);
      assert.equal(set.code, 0, set.stderr);
      assert.ok(!set.stdout.includes(secret) && !set.stderr.includes(secret));
      const listed = await run(dir, ["providers", "list"]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^anthropic\s+stored\s+…klmn\s+[0-9a-f]{12}\s/m);
      assert.match(listed.stdout, /^openai\s+none\s/m);
      assert.ok(!listed.stdout.includes(secret));

      const rotated = await run(dir, ["providers", "rotate-master"]);
      assert.equal(rotated.code, 0, rotated.stderr);
      assert.match(rotated.stdout, /^re-sealed 0 provider keys, 0 signing secrets and 0 channel secrets under master key [0-9a-f]{12}$/m);
      assertOneLineError(await run(dir, ["providers", "set", "nope"], {}, `${secret}\n`), 2, /name: one of the proxy's providers: openai, anthropic, gemini/);
      assertOneLineError(await run(dir, ["providers", "set", "openai"]), 2, /no key was given on standard input/);
    });

    test("a mistyped period: one line with the nearest valid form, exit 2", async () => {
      const r = await run(dir, ["spend", "las-mnth"]);
      assertOneLineError(r, 2, /did you mean `last-month`\?/);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.equal(r.stdout, "");
    });

    test("SIGTERM stops the server cleanly and removes server.json", async () => {
      server.kill("SIGTERM");
      const [code, signal] = await exited;
      assert.deepEqual({ code, signal }, { code: 0, signal: null });
      assert.equal(existsSync(join(dir, "server.json")), false);
    });
  });

  describe("usage errors", { concurrency: 1 }, () => {
    test("unknown command, unknown option and a bad environment value exit 2 with one clear line", async () => {
      const dir = dataDir();
      const [command, option, port] = await Promise.all([
        run(dir, ["frobnicate"]),
        run(dir, ["spend", "--bogus"]),
        run(dir, ["spend", "today"], { PORT: "abc" }),
      ]);
      assertOneLineError(command, 2, /unknown command "frobnicate"/);
      assert.equal(command.stderr.trim().split("\n").length, 1);
      assertOneLineError(option, 2, /--bogus/);
      assertOneLineError(port, 2, /PORT: expected a whole number from 0 to 65535/);
      // Nothing was opened or written for a command that could not run.
      assert.deepEqual(readdirSync(dir), []);
    });

    test("TOLLGATE_URL without an admin token says which token is missing, and writes none", async () => {
      const dir = dataDir();
      const r = await run(dir, ["budget", "list"], { TOLLGATE_URL: "http://127.0.0.1:9" });
      assertOneLineError(r, 2, /TOLLGATE_URL is http:\/\/127\.0\.0\.1:9: set TOLLGATE_ADMIN_TOKEN to that gateway's admin token/);
      assert.deepEqual(readdirSync(dir), []);
    });

    test("help prints the usage", async () => {
      const r = await run(dataDir(), ["help"]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /tollgate spend \[period\]/);
    });
  });
});
