import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { countingLines, progressLine } from "../src/cli/commands.ts";
import { openDatabase } from "../src/db/connection.ts";
import { claimServerFile, readServerFile, removeServerFile, writeServerFile } from "../src/cli/server-file.ts";
import { BIN_ARGS, type Run, cliEnv, runCli } from "./helpers/cli.ts";
import { seedDataDir } from "./helpers/template.ts";
import { HANG_MS, waitFor } from "./helpers/wait.ts";

/**
 * The real `tollgate` binary as a user runs it, in child processes. Every group has a data folder
 * of its own and always uses embedded PGlite, whatever database the rest of the suite runs on.
 */

const run = runCli;

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
    let serverErr = "";
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
      server = spawn(process.execPath, [...BIN_ARGS, "serve"], { cwd: dir, env: cliEnv(dir, { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info" }), stdio: ["ignore", "pipe", "pipe"] });
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
      assert.doesNotMatch(r.stdout, /Actions:/, "chat's buttons are not printed in a terminal");
      const alpha = r.stdout.split("\n").find((l) => l.startsWith("alpha "));
      const beta = r.stdout.split("\n").find((l) => l.startsWith("beta "));
      assert.ok(alpha && beta, r.stdout);
      assert.match(alpha, /\$0\.05 \(67 %\)\s+█+$/, "each with its share of the total");
      assert.match(beta, /\$0\.03 \(33 %\)\s+█+$/);
      // Bars are shares of the largest row: all of the 24 characters, and half.
      assert.equal(alpha.match(/█/g)!.length, 24);
      assert.equal(beta.match(/█/g)!.length, 12);
    });

    test("chat answers any chat command as the admin; a refused one is one line, exit 2", async () => {
      const help = await run(dir, ["chat", "help", "budget"]);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /^How to use budget$/m);
      const viewer = await run(dir, ["chat", "budget", "set", "team:alpha", "$5", "monthly", "--by", "cli:nobody"]);
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

    test("the server says where it listens in one line on stderr; stdout stays JSON lines", () => {
      const { url } = JSON.parse(readFileSync(join(dir, "server.json"), "utf8")) as { url: string };
      const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      assert.match(serverErr, new RegExp(`^tollgate: listening at ${escaped(url)} · data folder ${escaped(dir)} \\(embedded PGlite\\) · admin token in ${escaped(join(dir, "admin.token"))}$`, "m"));
      for (const line of serverOut.split("\n").filter(Boolean)) assert.doesNotThrow(() => JSON.parse(line), `not a JSON log line: ${line}`);
    });

    test("a second serve on the data folder is refused in one line, exit 1; the first keeps its server.json", async () => {
      const before = readFileSync(join(dir, "server.json"), "utf8");
      const { url, pid } = JSON.parse(before) as { url: string; pid: number };
      const r = await run(dir, ["serve"], { PORT: "0", HOST: "127.0.0.1" });
      assertOneLineError(r, 1, new RegExp(`^tollgate: already running at ${url.replace(/\./g, "\\.")} \\(pid ${pid}\\)`));
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.equal(readFileSync(join(dir, "server.json"), "utf8"), before);
    });

    test("serve on a port in use says so in one line, exit 1, and leaves its own folder unclaimed", async () => {
      const other = dataDir();
      const { url } = JSON.parse(readFileSync(join(dir, "server.json"), "utf8")) as { url: string };
      const port = new URL(url).port;
      const r = await run(other, ["serve"], { PORT: port, HOST: "127.0.0.1" });
      assertOneLineError(r, 1, new RegExp(`^tollgate: port ${port} is in use on 127\\.0\\.0\\.1`));
      assert.equal(existsSync(join(other, "server.json")), false);
    });

    test("serve on a database a newer build migrated says so in one line, exit 2, and exits (no pool left open)", async () => {
      const newer = dataDir();
      await seedDataDir(newer);
      const database = await openDatabase({ dataDir: newer });
      await database.rows(sql`insert into tollgate_migrations (tag, hash) values ('9999_from_a_newer_build', 'x')`);
      await database.close();
      const r = await run(newer, ["serve"], { PORT: "0", HOST: "127.0.0.1" });
      assertOneLineError(r, 2, /^tollgate: this database was migrated by a newer Tollgate \(9999_from_a_newer_build is not in this build\): run that version or a newer one\n$/);
      assert.equal(existsSync(join(newer, "server.json")), false);
    });

    test("spend --json reads the chat grammar: `by teams` as without --json", async () => {
      const r = await run(dir, ["spend", "today", "by", "teams", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as SpendJson;
      assert.deepEqual(report.groups.map((g) => [g.key, g.cost_usd]), [["alpha", "0.05"], ["beta", "0.025"]]);
      assertOneLineError(await run(dir, ["spend", "today", "by", "tema", "--json"]), 2, /"tema" is not a dimension; did you mean `team`\?/);
    });

    test("budget list and show give spend, percent and state", async () => {
      const list = await run(dir, ["budget", "list"]);
      assert.equal(list.code, 0, list.stderr);
      const [header, ...rows] = list.stdout.trim().split("\n");
      assert.match(header!, /^name\s+scope\s+period\s+mode\s+spend_usd\s+amount_usd\s+used\s+state\s+forecast_usd$/);
      const alpha = rows.find((l) => l.startsWith("team-alpha-monthly "));
      assert.ok(alpha, list.stdout);
      // $0.05 of $5: 1 %; the month's forecast may or may not exist yet, so the row is read up to the state.
      assert.match(alpha, /^team-alpha-monthly\s+team:alpha\s+month\s+soft\s+0\.05\s+5\s+1 %\s+(ok|warning)\b/);

      const show = await run(dir, ["budget", "show", "team-alpha-monthly"]);
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, /^state\s+(ok|warning)$/m);
      assert.match(show.stdout, /^spend_usd\s+0\.05$/m);
      assert.match(show.stdout, /^used\s+1 %$/m);
      assert.match(show.stdout, /^remaining_usd\s+4\.95$/m);
      assert.match(show.stdout, /^top\s+project:p \$0\.05$/m, "its largest contributor within the scope");
      assertOneLineError(await run(dir, ["budget", "show", "no-such-budget"]), 2, /404: no budget no-such-budget/);
    });

    test("a command run in a subfolder finds the data folder above it, as git finds .git", async () => {
      const project = dataDir();
      symlinkSync(dir, join(project, ".tollgate"));
      const deep = join(project, "services", "search");
      mkdirSync(deep, { recursive: true });
      const r = await run(dir, ["spend", "today", "--json"], { TOLLGATE_DATA_DIR: "" }, "", deep);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as SpendJson).total.cost_usd, "0.075");
      assert.doesNotMatch(r.stderr, /created a new data folder/);
      assert.deepEqual(readdirSync(deep), [], "nothing made where the command ran");
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

    test("help lists every command; COMMAND --help and help COMMAND give its forms and examples", async () => {
      const dir = dataDir();
      const [overview, spendHelp, helpBudget, budgetHelp, telegram] = await Promise.all([
        run(dir, ["help"]),
        run(dir, ["spend", "--help"]),
        run(dir, ["help", "budget"]),
        run(dir, ["budget", "-h"]),
        run(dir, ["telegram", "--help"]),
      ]);
      assert.equal(overview.code, 0, overview.stderr);
      for (const name of ["serve", "spend", "ingest", "budget", "apply", "channels", "telegram", "teams-package"]) assert.match(overview.stdout, new RegExp(`^  tollgate ${name} +\\S`, "m"));
      assert.equal(spendHelp.code, 0, spendHelp.stderr);
      assert.match(spendHelp.stdout, /^tollgate spend: /);
      assert.match(spendHelp.stdout, /^Usage:\n {2}tollgate spend \[PERIOD\] \[by DIM\]/m);
      assert.match(spendHelp.stdout, /^Examples:\n(?: {2}tollgate spend.*\n)+/m);
      assert.notEqual(spendHelp.stdout, overview.stdout);
      assert.equal(helpBudget.code, 0, helpBudget.stderr);
      assert.equal(helpBudget.stdout, budgetHelp.stdout);
      assert.match(helpBudget.stdout, /^ {2}tollgate budget set NAME --amount USD/m);
      // A platform's command has its help too, read without loading the platform.
      assert.match(telegram.stdout, /^ {2}tollgate telegram link --scope/m);
      assert.deepEqual(readdirSync(dir), [], "help opens no data folder");
    });

    test("a mistyped command name gets the nearest command", async () => {
      const dir = dataDir();
      const [typo, helpTypo, far] = await Promise.all([run(dir, ["budgte", "list"]), run(dir, ["help", "ingets"]), run(dir, ["xyzzy"])]);
      assertOneLineError(typo, 2, /unknown command "budgte"; did you mean `tollgate budget`\?/);
      assertOneLineError(helpTypo, 2, /unknown command "ingets"; did you mean `tollgate ingest`\?/);
      assertOneLineError(far, 2, /unknown command "xyzzy" \(tollgate help lists them all\)/);
    });

    test("help loads neither the database, nor express, nor a chat SDK; a command that needs them does", async () => {
      const dir = dataDir();
      const log = join(dir, "loaded.txt");
      // A module hook that writes down every package resolved (hooks run on their own thread, hence a file).
      writeFileSync(join(dir, "hooks.mjs"), `import { appendFileSync } from "node:fs";
        let file;
        export function initialize(data) { file = data.file; }
        export async function resolve(specifier, context, next) {
          const resolved = await next(specifier, context);
          if (resolved.url.includes("/node_modules/")) appendFileSync(file, resolved.url + "\\n");
          return resolved;
        }`);
      writeFileSync(join(dir, "register.mjs"), `import { register } from "node:module";
        register(${JSON.stringify(pathToFileURL(join(dir, "hooks.mjs")).href)}, { data: { file: ${JSON.stringify(log)} } });`);
      const heavy = /\/node_modules\/(express|@electric-sql\/pglite|postgres|drizzle-orm|telegraf|botbuilder|@slack\/bolt|pino)\//;
      const loadedBy = async (args: string[], data: string) => {
        rmSync(log, { force: true });
        const r = await new Promise<Run>((resolve) =>
          execFile(process.execPath, ["--import", pathToFileURL(join(dir, "register.mjs")).href, ...BIN_ARGS, ...args], { cwd: dir, env: cliEnv(data), timeout: HANG_MS }, (err, stdout, stderr) =>
            resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
          ),
        );
        assert.equal(r.code, 0, r.stderr);
        return existsSync(log) ? readFileSync(log, "utf8").split("\n").filter((url) => heavy.test(url)) : [];
      };
      for (const args of [["help"], ["serve", "--help"], ["telegram", "--help"]]) assert.deepEqual(await loadedBy(args, join(dir, "unused")), [], `tollgate ${args.join(" ")}`);
      const migrating = await loadedBy(["migrate"], join(dir, "data"));
      assert.ok(migrating.some((url) => url.includes("/@electric-sql/pglite/")), "the hook sees what migrate loads");
    });

    test("without TOLLGATE_DATA_DIR and no .tollgate here or above, a command says it made a new one", async () => {
      const project = dataDir();
      const r = await run(project, ["migrate"], { TOLLGATE_DATA_DIR: "" });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^applied 0000_ledger/);
      assert.equal(r.stderr, `tollgate: created a new data folder, ${join(project, ".tollgate")} (no .tollgate here or in a folder above; TOLLGATE_DATA_DIR names another)\n`);
      const again = await run(project, ["migrate"], { TOLLGATE_DATA_DIR: "" });
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, "the database is up to date\n");
      assert.equal(again.stderr, "");
    });
  });
});

describe("serve's claim on its data folder", () => {
  /** The pid of a process that has exited. */
  async function deadPid(): Promise<number> {
    const child = spawn(process.execPath, ["-e", "0"]);
    await once(child, "exit");
    return child.pid!;
  }

  test("a server.json whose process is gone is taken over; a live holder is answered, its file untouched", async () => {
    const dir = dataDir();
    writeFileSync(join(dir, "server.json"), JSON.stringify({ url: "http://127.0.0.1:9", pid: await deadPid() }));
    assert.deepEqual(claimServerFile(dir, process.pid), { ok: true });
    assert.deepEqual(JSON.parse(readFileSync(join(dir, "server.json"), "utf8")), { pid: process.pid });
    writeServerFile(dir, { url: "http://127.0.0.1:8787", pid: process.pid });

    const other = await deadPid();
    assert.deepEqual(claimServerFile(dir, other), { ok: false, holder: { url: "http://127.0.0.1:8787", pid: process.pid } });
    removeServerFile(dir, other);
    assert.deepEqual(readServerFile(dir), { url: "http://127.0.0.1:8787", pid: process.pid }, "a refused server removes nothing");
    assert.deepEqual(readdirSync(dir), ["server.json"], "no file left aside");
  });

  test("of two claims on a free folder, one wins", () => {
    const dir = dataDir();
    assert.deepEqual(claimServerFile(dir, process.pid), { ok: true });
    assert.equal(claimServerFile(dir, process.ppid).ok, false);
  });
});

describe("ingest progress", () => {
  test("counts the bytes of the lines read, CRLF and multi-byte characters included", async () => {
    const dir = dataDir();
    const file = join(dir, "usage.ndjson");
    const lines = ['{"id":"1","team":"ßearch"}', "", '{"id":"2","team":"ads"}'];
    writeFileSync(file, `${lines.join("\r\n")}\r\n`);
    const input = countingLines(file);
    const seen: [string, number][] = [];
    for await (const line of input.lines) seen.push([line, input.bytesRead()]);
    assert.deepEqual(
      seen.map(([line]) => line),
      lines,
    );
    assert.equal(seen[0]![1], Buffer.byteLength(lines[0]!) + 1);
    assert.equal(input.bytesRead(), statSync(file).size, "all of the file once read");
  });

  test("the line shows the share of bytes sent, not of an assumed line count", () => {
    assert.equal(progressLine(0.5, 12_000), `[${"#".repeat(15)}${" ".repeat(15)}] 50 % · 12,000 events`);
    assert.equal(progressLine(1.2, 3), `[${"#".repeat(30)}] 100 % · 3 events`);
  });
});
