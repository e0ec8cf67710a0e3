import { readFileSync } from "node:fs";

/**
 * A V8 CPU profile (`node --cpu-prof`) summed up: where the time went by part (node's own
 * modules, each package, each folder of Tollgate's, GC) and by function. Self time is time in a
 * frame itself; inclusive time is time with that part anywhere on the stack (each sample counted
 * once per part).
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Sampled time in ms, and how much of it the process was idle. */
  totalMs: number;
  idleMs: number;
  /** By part, busy time only: self and inclusive ms. */
  parts: { part: string; selfMs: number; inclusiveMs: number }[];
  /** The functions with the most self time. */
  functions: { name: string; part: string; selfMs: number }[];
}

const NODE_PARTS: [RegExp, string][] = [
  [/^node:(_http_|internal\/http|http$)/, "node: HTTP"],
  [/^node:(net$|internal\/stream_base_commons|internal\/net)/, "node: sockets"],
  [/^node:(internal\/streams|stream$|internal\/webstreams)/, "node: streams"],
  [/^node:(internal\/process\/task_queues|internal\/timers|timers$)/, "node: ticks and timers"],
  [/^node:(events$|internal\/events)/, "node: events"],
  [/^node:(zlib$|internal\/crypto|crypto$)/, "node: crypto and zlib"],
];

/** The part a frame belongs to. */
export function partOf(frame: ProfileNode["callFrame"]): string {
  const { functionName, url } = frame;
  if (functionName === "(garbage collector)") return "GC";
  if (functionName === "(program)") return "(program: V8 and native, outside JS)";
  if (functionName === "(idle)") return "(idle)";
  if (functionName === "(root)") return "(root)";
  if (url === "") return `native: ${functionName || "(anonymous)"}`;
  if (url.startsWith("node:")) return NODE_PARTS.find(([re]) => re.test(url))?.[1] ?? `node: ${url.slice(5).replace(/^internal\//, "")}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/dist\/(?:src\/)?((?:[^/]+\/)?)([^/]+)\.js$/.exec(url);
  if (own) return `tollgate: ${own[1] ? own[1].slice(0, -1) : own[2]}`;
  return url;
}

export function summariseProfile(file: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const functions = new Map<string, { part: string; selfMs: number }>();
  let totalMs = 0;
  let idleMs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(profile.samples[i]!)!;
    totalMs += ms;
    const part = partOf(node.callFrame);
    if (part === "(idle)") {
      idleMs += ms;
      continue;
    }
    self.set(part, (self.get(part) ?? 0) + ms);
    const where = node.callFrame.url ? `${node.callFrame.url.replace(/^.*\/(dist|node_modules)\//, "$1/")}:${node.callFrame.lineNumber + 1}` : "native";
    const name = `${node.callFrame.functionName || "(anonymous)"} ${where}`;
    const entry = functions.get(name) ?? { part, selfMs: 0 };
    entry.selfMs += ms;
    functions.set(name, entry);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) seen.add(partOf(byId.get(id)!.callFrame));
    for (const p of seen) inclusive.set(p, (inclusive.get(p) ?? 0) + ms);
  }
  const round = (v: number) => Math.round(v * 10) / 10;
  return {
    totalMs: round(totalMs),
    idleMs: round(idleMs),
    parts: [...self.keys()]
      .map((part) => ({ part, selfMs: round(self.get(part)!), inclusiveMs: round(inclusive.get(part) ?? 0) }))
      .sort((a, b) => b.selfMs - a.selfMs),
    functions: [...functions.entries()]
      .map(([name, f]) => ({ name, part: f.part, selfMs: round(f.selfMs) }))
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, 25),
  };
}
