import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { slackIntegration } from "../integrations/slack/index.ts";
import { createGateway } from "../src/app.ts";
import { demoEvents } from "../src/cli/demo.ts";
import { loadConfig } from "../src/config.ts";
import { createLogger } from "../src/logger.ts";
import { sendAsSlack, slashCommand, startFakeSlack } from "../test/fakes/slack-api.ts";
import { freshDatabase, percentile } from "./postgres.ts";

/**
 * Slash commands end to end over the demo data (`tollgate demo`, 60 days): signed as Slack signs
 * them, through Bolt on the gateway, answered in the acknowledgement. Timed from the request to
 * the whole answer; Slack allows 3 s, and Tollgate answers in the ack only within 2 s (later, it
 * follows up through response_url), so every ack with blocks is an answer inside the limit.
 */
export interface SlackResult {
  events: number;
  /** The machine's 1-minute load average when the timing began: other work shares the cores. */
  load: number;
  commands: Record<string, { runs: number; inAck: number; p50: number; p95: number; p99: number; max: number }>;
}

const SIGNING_SECRET = "bench-signing-secret-0123456789";

export async function benchSlack(opts: { runs: number; days: number }): Promise<SlackResult> {
  const slack = await startFakeSlack();
  const dataDir = mkdtempSync(join(tmpdir(), "tollgate-bench-slack-"));
  const config = loadConfig({
    DATABASE_URL: await freshDatabase("tollgate_bench_slack"),
    TOLLGATE_DATA_DIR: dataDir,
    TOLLGATE_ADMIN_TOKEN: "bench-admin-token-0123456789",
    SLACK_BOT_TOKEN: slack.botToken,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_API_URL: slack.apiUrl,
  });
  const gateway = await createGateway(config, createLogger("warn"), undefined, [slackIntegration()]);
  const server = gateway.app.listen(0, "127.0.0.1");
  await once(server, "listening");
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    // The demo data, imported as `tollgate demo` imports it.
    const lines = [...demoEvents(new Date(), opts.days)].map((e) => JSON.stringify(e));
    for (let i = 0; i < lines.length; i += 5000) {
      const res = await fetch(`${base}/api/usage?source=demo`, {
        method: "POST",
        headers: { authorization: `Bearer ${config.TOLLGATE_ADMIN_TOKEN}`, "content-type": "application/x-ndjson" },
        body: lines.slice(i, i + 5000).join("\n"),
      });
      if (!res.ok) throw new Error(`demo import answered ${res.status}: ${await res.text()}`);
    }
    await gateway.recorder.flush();

    const cases: [string, string][] = [
      ["/spend", "this-month by team"],
      ["/spend", "last-month by model team:search"],
      ["/spend", "this-week"],
      ["/budget", "list"],
    ];
    const commands: SlackResult["commands"] = {};
    const load = Math.round(loadavg()[0]! * 10) / 10;
    for (const [name, text] of cases) {
      const times: number[] = [];
      let inAck = 0;
      for (let i = 0; i < opts.runs + 3; i++) {
        const form = slashCommand(slack, name, text, { userId: "U0BENCH" });
        const t0 = performance.now();
        const res = await sendAsSlack(`${base}/slack/events`, form, { signingSecret: SIGNING_SECRET });
        const ms = performance.now() - t0;
        if (res.status !== 200) throw new Error(`${name} ${text} answered ${res.status}`);
        if (i < 3) continue;
        times.push(ms);
        if (res.body !== "" && Array.isArray(res.json().blocks)) inAck++;
      }
      times.sort((a, b) => a - b);
      const round = (n: number) => Math.round(n * 10) / 10;
      commands[`${name} ${text}`] = { runs: opts.runs, inAck, p50: round(percentile(times, 50)), p95: round(percentile(times, 95)), p99: round(percentile(times, 99)), max: round(times.at(-1)!) };
    }
    return { events: lines.length, load, commands };
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await gateway.close();
    await slack.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function slackSection(r: SlackResult, ranAt: string): string {
  const rows = Object.entries(r.commands)
    .map(([label, q]) => `| \`${label}\` | ${q.runs} | ${q.inAck} | ${q.p50} ms | **${q.p95} ms** | ${q.p99} ms | ${q.max} ms |`)
    .join("\n");
  return `## Slack: slash commands over the demo data, answered in the ack (Slack allows 3 s)

${ranAt}

| command | runs | answered in the ack | p50 | p95 | p99 | max |
|---|---:|---:|---:|---:|---:|---:|
${rows}

${r.events.toLocaleString("en-US")} demo events (\`tollgate demo\`, 60 days) on Postgres. Each request is signed as Slack signs
it and goes through Bolt's signature check, the chat grammar, the spend query, the budgets in scope
and Block Kit rendering; timed from sending to the whole answer, one at a time, in one process.
The machine's load average was ${r.load} when the timing began.`;
}
