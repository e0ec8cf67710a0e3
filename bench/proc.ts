import { execSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

/**
 * What the gateway, the bench's own processes and the rest of the machine used over a stretch of
 * time, read from Linux's /proc. CPU figures are CPU time over wall time: 100 is one core kept
 * busy, and this machine has cpus × 100.
 */
export interface Usage {
  /**
   * Peak and mean resident set size of the server measured (Tollgate, Portkey or the mock), sampled
   * every SAMPLE_MS: the sum over its processes (Tollgate with workers: the primary and each worker).
   */
  rssPeakMb: number;
  rssMeanMb: number;
  /** Each of the server's processes' own peak, the root process first. */
  rssPeakEachMb: number[];
  serverCpu: number;
  /** Wall time watched, in seconds. */
  seconds: number;
  /** The server's CPU time over the stretch, in seconds (user + system). */
  serverCpuSeconds: number;
  /**
   * Time the server's main threads (each process's event loop) were ready to run but waited for a
   * CPU, in seconds: on a machine whose cores the load generator, the mock and Postgres share, what
   * a busier gateway meets more of, and what stretches the calls it is handling meanwhile.
   */
  serverWaitSeconds: number;
  /** The rest of the bench's processes: the load generator, and the mock when it is not the server measured. */
  benchCpu: number;
  /** Postgres serving the gateway's database: the ledger's writes. */
  postgresCpu: number;
  /** Everything else on the machine: work that has nothing to do with the bench. */
  foreignCpu: number;
}

export interface Watched {
  /** The server whose cost is measured: its process and the processes it started (workers). */
  server: number;
  bench: number[];
  /** The gateway's database: only its backends count as the bench's Postgres. */
  database: string;
}

const SAMPLE_MS = 250;
const TICKS_PER_SECOND = Number(execSync("getconf CLK_TCK").toString().trim());

/** NaN once the process is gone: a gateway that dies mid-phase fails the phase, not the sampler. */
export function rssMb(pid: number): number {
  try {
    const line = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return line ? Number(line[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** `pid` and its descendants (a primary's workers), root first; read from /proc/<pid>/task/<tid>/children. */
export function processTree(pid: number): number[] {
  let children: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`))
      children.push(...readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    children = [];
  }
  return [pid, ...children.flatMap(processTree)];
}

/** The resident set size of `pid` and its descendants together. */
export function treeRssMb(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + rssMb(p), 0);
}

/** utime + stime in clock ticks; the command name may hold spaces, so fields are counted after its ")". 0 once the process is gone. */
function processTicks(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return 0;
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** Nanoseconds the process's main thread has waited on a run queue (its schedstat's second field); 0 once it is gone. */
function mainThreadWaitNs(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[1]);
  } catch {
    return 0;
  }
}

function title(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

/**
 * The Postgres server's own processes and the backends serving `database`. Backends of other
 * databases (say, a test suite run against the same server) are left out, so their work counts as
 * foreign. A backend's title is "postgres: <cluster>: <user> <database> <host>(<port>) <state>".
 */
function postgresPids(database: string): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "postgres") return false;
      } catch {
        return false;
      }
      const text = title(pid);
      return !/\(\d+\)/.test(text) || text.includes(` ${database} `);
    })
    .map(Number);
}

/** CPU ticks of those processes; one that ends between two readings loses its share, which only undercounts Postgres. */
function postgresTicks(database: string): Map<number, number> {
  return new Map(postgresPids(database).map((pid) => [pid, processTicks(pid)]));
}

function postgresTicksSince(database: string, before: Map<number, number>): number {
  let ticks = 0;
  for (const [pid, now] of postgresTicks(database)) ticks += now - (before.get(pid) ?? 0);
  return ticks;
}

/** Busy clock ticks summed over all cores (everything but idle and iowait). */
function machineBusyTicks(): number {
  const cpu = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  return cpu.reduce((a, b) => a + b, 0) - (cpu[3] ?? 0) - (cpu[4] ?? 0);
}

const percent = (ticks: number, seconds: number) => Math.round((ticks / TICKS_PER_SECOND / seconds) * 100);

/** Watches the server and the bench's processes while `work` runs. */
export async function watch<T>(pids: Watched, work: () => Promise<T>): Promise<{ result: T; usage: Usage }> {
  // Read once: a worker replaced mid-phase would be missed, which a phase with errors shows anyway.
  const tree = processTree(pids.server);
  const peaks = tree.map(() => 0);
  const sample = () => {
    const each = tree.map(rssMb);
    each.forEach((mb, i) => (peaks[i] = Math.max(peaks[i]!, mb)));
    return each.reduce((a, b) => a + b, 0);
  };
  const samples: number[] = [sample()];
  const timer = setInterval(() => samples.push(sample()), SAMPLE_MS);
  const ticksOf = (list: number[]) => list.reduce((sum, pid) => sum + processTicks(pid), 0);
  const benchTicks = () => ticksOf(pids.bench);
  const waitOf = (list: number[]) => list.reduce((sum, pid) => sum + mainThreadWaitNs(pid), 0);
  const server0 = ticksOf(tree);
  const wait0 = waitOf(tree);
  const bench0 = benchTicks();
  const postgres0 = postgresTicks(pids.database);
  const machine0 = machineBusyTicks();
  const t0 = performance.now();
  try {
    const result = await work();
    const seconds = (performance.now() - t0) / 1000;
    const server = ticksOf(tree) - server0;
    const wait = waitOf(tree) - wait0;
    const bench = benchTicks() - bench0;
    const postgres = postgresTicksSince(pids.database, postgres0);
    const machine = machineBusyTicks() - machine0;
    samples.push(sample());
    const rss = samples.filter((v) => !Number.isNaN(v));
    const round = (v: number) => Math.round(v * 10) / 10;
    return {
      result,
      usage: {
        rssPeakMb: round(Math.max(...rss)),
        rssMeanMb: round(rss.reduce((a, b) => a + b, 0) / rss.length),
        rssPeakEachMb: peaks.map(round),
        seconds,
        serverCpu: percent(server, seconds),
        serverCpuSeconds: server / TICKS_PER_SECOND,
        serverWaitSeconds: wait / 1e9,
        benchCpu: percent(bench, seconds),
        postgresCpu: percent(postgres, seconds),
        foreignCpu: Math.max(0, percent(machine - server - bench - postgres, seconds)),
      },
    };
  } finally {
    clearInterval(timer);
  }
}

/**
 * Waits, up to `maxMs`, for a second in which the machine is no busier than `limit` (in CPU
 * percent, 100 = one core): a phase started under someone else's load would measure both. True
 * when it got one; false when it gave up or `signal` was aborted.
 */
export async function quiet(limit: number, maxMs: number, signal: AbortSignal): Promise<boolean> {
  const deadline = performance.now() + maxMs;
  do {
    const before = machineBusyTicks();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (percent(machineBusyTicks() - before, 1) <= limit) return true;
  } while (performance.now() < deadline && !signal.aborted);
  return false;
}
