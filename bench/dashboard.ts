import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGateway } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { createLogger } from "../src/logger.ts";
import { SERVER_URL, freshDatabase, percentile } from "./postgres.ts";
import { fill, ledgerRanges } from "./spend.ts";

/**
 * Dashboard pages over the spend bench's ledger (EVENTS events this month and as many in the
 * previous month's same span, bench/spend.ts): the real gateway on a loopback port, signed in with
 * the admin token as a browser would, each page fetched RUNS times in turn and timed from request
 * to the last byte of its HTML.
 */
export interface DashboardResult {
  events: number;
  pages: Record<string, { runs: number; p50: number; p95: number; p99: number; bytes: number }>;
}

const TOKEN = "bench-admin-token-0123456789";
const PAGES = ["/", "/explore?period=this-month&by=team", "/explore?period=last-7d&by=feature&team=team-3", "/budgets"];

export async function benchDashboard(opts: { events: number; runs: number; reuse: boolean }): Promise<DashboardResult> {
  const name = `tollgate_bench_spend_${opts.events}`;
  const url = opts.reuse ? SERVER_URL.replace(/\/[^/]*$/, `/${name}`) : await freshDatabase(name);
  if (!opts.reuse) await fill(url, opts.events, ledgerRanges(new Date()));
  const dataDir = mkdtempSync(join(tmpdir(), "tollgate-bench-dashboard-"));
  const gateway = await createGateway(loadConfig({ DATABASE_URL: url, TOLLGATE_DATA_DIR: dataDir, TOLLGATE_ADMIN_TOKEN: TOKEN, TOLLGATE_JOBS: "off" }), createLogger("silent"));
  const server = gateway.app.listen(0, "127.0.0.1");
  await once(server, "listening");
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const cookie = await signIn(base);
    const pages: DashboardResult["pages"] = {};
    for (const path of PAGES) {
      const times: number[] = [];
      let bytes = 0;
      for (let i = 0; i < opts.runs + 3; i++) {
        const t0 = performance.now();
        const res = await fetch(base + path, { headers: { cookie }, redirect: "manual" });
        const text = await res.text();
        if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
        if (i >= 3) times.push(performance.now() - t0);
        bytes = text.length;
      }
      times.sort((a, b) => a - b);
      const round = (n: number) => Math.round(n * 10) / 10;
      pages[path] = { runs: opts.runs, p50: round(percentile(times, 50)), p95: round(percentile(times, 95)), p99: round(percentile(times, 99)), bytes };
    }
    return { events: opts.events, pages };
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await gateway.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The sign-in form, its cookie, then the post: the session cookie a browser would hold. */
async function signIn(base: string): Promise<string> {
  const cookies = (res: Response) => res.headers.getSetCookie().map((c) => c.split(";")[0]!).join("; ");
  const form = await fetch(`${base}/sign-in`);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? "";
  const res = await fetch(`${base}/sign-in`, {
    method: "POST",
    redirect: "manual",
    headers: { cookie: cookies(form), "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ _csrf: csrf, token: TOKEN, name: "bench" }),
  });
  if (res.status !== 303) throw new Error(`sign-in answered ${res.status}`);
  return cookies(res);
}
