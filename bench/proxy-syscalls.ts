import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startStack } from "./proxy.ts";

/*
 * System calls per proxied call (issue 13): a count that noise on a shared machine does not move,
 * unlike latency or CPU time. The gateway is traced with `strace -f -yy` over a fixed-rate phase of
 * non-streamed and one of streamed calls, and every call it made is counted; writes are sorted by
 * where they went (the client, the upstream, Postgres, the journal, other files) from the peer
 * strace names for each descriptor. Everything the gateway did in the phase counts, background work
 * (the recorder's Postgres writes, the journal's fdatasync) included, divided by the calls answered.
 *
 * `npm run bench proxy-syscalls` with BENCH_AB as for proxy-ab (each a checkout with dist/ built; `.`
 * is this one), BENCH_SYSCALL_RATE (default 200/s; strace slows every call) and
 * BENCH_SYSCALL_SECONDS (default 5); BENCH_SYSCALL_TRACES names a folder to keep the traces in. Needs strace and ptrace rights (root).
 */

/** One traced phase of one build. */
export interface SyscallCount {
  label: string;
  stream: boolean;
  calls: number;
  /** Per call, by system call name. */
  perCall: Record<string, number>;
  /** Writes per call (write, writev, sendto, sendmsg, pwrite*) by call and where they went. */
  writesTo: Record<string, number>;
  total: number;
}

const WRITES = new Set(["write", "writev", "sendto", "sendmsg", "pwrite64", "pwritev", "pwritev2"]);
const START = /^\d+\s+(\w+)\((\d+)?(<(?:[^>\[]|\[[^\]]*\])*>)?/;

/** Where a descriptor leads, as `strace -yy` prints it: `<TCP:[a:p->b:q]>` or `</path>`. */
export function destination(fd: string | undefined, ports: { gateway: number; upstream: number; postgres: number }, journalDir: string): string {
  if (!fd) return "unknown";
  const tcp = /TCP(?:v6)?:\[.*?:(\d+)->.*?:(\d+)\]/.exec(fd);
  if (tcp) {
    const [local, remote] = [Number(tcp[1]), Number(tcp[2])];
    if (local === ports.gateway) return "client";
    if (remote === ports.upstream) return "upstream";
    if (remote === ports.postgres) return "postgres";
    return `tcp ${remote}`;
  }
  if (fd.startsWith(`<${journalDir}`)) return "journal";
  if (fd.startsWith("<pipe") || fd.startsWith("<anon_inode")) return "internal (event loop)";
  return "other file";
}

/** Counts a trace's system calls (each at the line that starts it) and sorts its writes by destination. */
export function countTrace(text: string, classify: (fd: string | undefined) => string): { byName: Map<string, number>; writesTo: Map<string, number> } {
  const byName = new Map<string, number>();
  const writesTo = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = START.exec(line);
    if (!m) continue;
    const name = m[1]!;
    byName.set(name, (byName.get(name) ?? 0) + 1);
    if (WRITES.has(name)) {
      const where = `${name} to ${classify(m[3])}`;
      writesTo.set(where, (writesTo.get(where) ?? 0) + 1);
    }
  }
  return { byName, writesTo };
}

async function traced(pid: number, file: string, run: () => Promise<number>): Promise<number> {
  const strace: ChildProcess = spawn("strace", ["-f", "-yy", "-qq", "-o", file, "-p", String(pid)], { stdio: ["ignore", "ignore", "inherit"] });
  // strace attaches before it writes its first line; a short wait covers the attach of every thread.
  await new Promise((r) => setTimeout(r, 1_000));
  const calls = await run();
  const exited = once(strace, "exit");
  strace.kill("SIGINT");
  await exited;
  return calls;
}

export async function benchSyscalls(builds: { label: string; root: string }[], rate: number, seconds: number): Promise<SyscallCount[]> {
  const out: SyscallCount[] = [];
  for (const [i, build] of builds.entries()) {
    const stack = await startStack([], false, { root: build.root, database: `tollgate_bench_sys_${process.pid}_${i}` });
    const dir = process.env.BENCH_SYSCALL_TRACES ?? mkdtempSync(join(tmpdir(), "tollgate-strace-"));
    try {
      const ports = {
        gateway: Number(new URL(stack.targets.tollgate!.origin).port),
        upstream: Number(new URL(stack.targets.direct!.origin).port),
        postgres: 5432,
      };
      const classify = (fd: string | undefined) => destination(fd, ports, stack.dataDir);
      for (const stream of [false, true]) {
        // Warm: JIT, pools, the budget's lease; then the traced phase.
        await stack.run("tollgate", stream, rate, 2);
        const file = join(dir, `${build.label}-${stream ? "stream" : "plain"}.trace`);
        const calls = await traced(stack.gateway.pid!, file, async () => (await stack.run("tollgate", stream, rate, seconds)).result.completed);
        const { byName, writesTo } = countTrace(readFileSync(file, "utf8"), classify);
        const per = (m: Map<string, number>) => Object.fromEntries([...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round((v / calls) * 100) / 100]));
        const total = [...byName.values()].reduce((a, b) => a + b, 0) / calls;
        out.push({ label: build.label, stream, calls, perCall: per(byName), writesTo: per(writesTo), total: Math.round(total * 100) / 100 });
        console.log(`${build.label} ${stream ? "streamed" : "non-streamed"}: ${out.at(-1)!.total} syscalls/call over ${calls} calls; writes ${JSON.stringify(out.at(-1)!.writesTo)}`);
      }
    } finally {
      if (!process.env.BENCH_SYSCALL_TRACES) rmSync(dir, { recursive: true, force: true });
      await stack.close();
    }
  }
  return out;
}

/** A table per kind: each build's total and its most frequent calls, and its writes by destination. */
export function syscallSection(rows: SyscallCount[], rate: number, seconds: number): string {
  const names = [...new Set(rows.flatMap((r) => Object.keys(r.perCall).slice(0, 8)))];
  const places = [...new Set(rows.flatMap((r) => Object.keys(r.writesTo)))];
  const lines = [
    "## Proxy system calls per call",
    "",
    `\`strace -f -yy\` on the gateway over ${seconds} s at ${rate} req/s per kind (recording on, one hard budget); every call the gateway made, background work included, over the calls answered.`,
    "",
    `| build | kind | calls | total | ${names.join(" | ")} | ${places.join(" | ")} |`,
    `|---|---|---:|---:|${names.map(() => "---:").join("|")}|${places.map(() => "---:").join("|")}|`,
  ];
  for (const r of rows)
    lines.push(`| ${r.label} | ${r.stream ? "streamed" : "non-streamed"} | ${r.calls} | ${r.total} | ${names.map((n) => r.perCall[n] ?? 0).join(" | ")} | ${places.map((p) => r.writesTo[p] ?? 0).join(" | ")} |`);
  return lines.join("\n");
}
