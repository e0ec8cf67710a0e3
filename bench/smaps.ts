import { readFileSync } from "node:fs";

/**
 * Where a process's resident memory is, from Linux's /proc/<pid>/smaps, in MB: mapped files (the
 * node binary's code and data, shared libraries), glibc's malloc arenas (the main one is `[heap]`;
 * each other is a 64 MiB-aligned reservation of 64 MiB, its used part read-write and the rest
 * inaccessible), the main thread's stack, and every other anonymous mapping (V8's heap pages,
 * large allocations malloc mmaps on their own, ArrayBuffers' backing stores, other threads' stacks).
 */
export interface ResidentParts {
  rss: number;
  files: number;
  mallocMain: number;
  mallocArenas: number;
  /** How many non-main arenas hold memory. */
  arenas: number;
  stacks: number;
  otherAnonymous: number;
}

interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  path: string;
  rssKb: number;
}

const ARENA_BYTES = 64n * 2n ** 20n;

function mappings(pid: number): Mapping[] {
  const out: Mapping[] = [];
  let current: Mapping | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      current = { start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`), perms: head[3]!, path: head[4]!.trim(), rssKb: 0 };
      out.push(current);
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB$/.exec(line);
    if (rss && current) current.rssKb = Number(rss[1]);
  }
  return out;
}

const mb = (kb: number) => Math.round((kb / 1024) * 10) / 10;

/** NaN parts once the process is gone. */
export function residentParts(pid: number): ResidentParts {
  let maps: Mapping[];
  try {
    maps = mappings(pid);
  } catch {
    return { rss: NaN, files: NaN, mallocMain: NaN, mallocArenas: NaN, arenas: NaN, stacks: NaN, otherAnonymous: NaN };
  }
  const kb = { files: 0, mallocMain: 0, mallocArenas: 0, stacks: 0, otherAnonymous: 0 };
  let arenas = 0;
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i]!;
    if (m.path.startsWith("/")) kb.files += m.rssKb;
    else if (m.path === "[heap]") kb.mallocMain += m.rssKb;
    else if (m.path.startsWith("[stack")) kb.stacks += m.rssKb;
    else if (m.path === "") {
      const next = maps[i + 1];
      const reserved = next && next.start === m.end && next.perms === "---p" && next.path === "" ? next.end - m.start : m.end - m.start;
      const arena = m.perms === "rw-p" && m.start % ARENA_BYTES === 0n && reserved === ARENA_BYTES;
      if (arena) {
        kb.mallocArenas += m.rssKb;
        if (m.rssKb > 0) arenas++;
      } else kb.otherAnonymous += m.rssKb;
    } else kb.otherAnonymous += m.rssKb;
  }
  const rss = maps.reduce((sum, m) => sum + m.rssKb, 0);
  return { rss: mb(rss), files: mb(kb.files), mallocMain: mb(kb.mallocMain), mallocArenas: mb(kb.mallocArenas), arenas, stacks: mb(kb.stacks), otherAnonymous: mb(kb.otherAnonymous) };
}
