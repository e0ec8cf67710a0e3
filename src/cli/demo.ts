/**
 * Synthetic but realistic usage for `tollgate demo`: several teams and features on a mix of
 * providers and models, busier on weekdays and in working hours, slowly growing, with one spike
 * and a little traffic on a model the price catalog does not know. Items are in the usage
 * webhook's own format, and each calendar day is generated from its own seed, so running the
 * demo again re-sends identical events that are then skipped as duplicates.
 */

interface Workload {
  team: string;
  project: string;
  feature: string;
  /** Calls per weekday at the start of the window. */
  daily: number;
  models: readonly (readonly [provider: string, model: string, weight: number])[];
  input: number;
  output: number;
  cacheShare: number;
}

const WORKLOADS: readonly Workload[] = [
  { team: "search", project: "web-search", feature: "answer", daily: 420, models: [["openai", "gpt-4o", 3], ["openai", "gpt-4o-mini", 5]], input: 3200, output: 380, cacheShare: 0.5 },
  { team: "search", project: "ranking", feature: "rerank", daily: 260, models: [["google", "gemini-2.5-flash", 1]], input: 5200, output: 60, cacheShare: 0.2 },
  { team: "support", project: "helpdesk-bot", feature: "reply-draft", daily: 310, models: [["anthropic", "claude-sonnet-4-5", 2], ["anthropic", "claude-haiku-4-5", 3]], input: 6400, output: 520, cacheShare: 0.7 },
  { team: "support", project: "helpdesk-bot", feature: "triage", daily: 180, models: [["openai", "gpt-4o-mini", 1]], input: 1400, output: 40, cacheShare: 0 },
  { team: "growth", project: "lifecycle", feature: "email-copy", daily: 90, models: [["openai", "gpt-4.1", 1], ["anthropic", "claude-sonnet-4-5", 1]], input: 1800, output: 900, cacheShare: 0 },
  { team: "platform", project: "code-review", feature: "pr-summary", daily: 140, models: [["anthropic", "claude-sonnet-4-5", 3], ["google", "gemini-2.5-pro", 1]], input: 18000, output: 1200, cacheShare: 0.6 },
  { team: "data", project: "enrichment", feature: "classify", daily: 120, models: [["google", "gemini-2.5-flash", 4], ["acme", "acme-internal-7b", 1]], input: 900, output: 30, cacheShare: 0 },
];

const USERS = Array.from({ length: 40 }, (_, i) => `u-${String(i + 1).padStart(3, "0")}`);

/** A small seeded generator (mulberry32): the same day always yields the same events. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function seedOf(text: string): number {
  let h = 2166136261;
  for (const c of text) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return h >>> 0;
}

/** Roughly log-normal sizes around a typical value: most calls small, a few large. */
function size(random: () => number, typical: number): number {
  const u = Math.max(random(), 1e-9);
  const v = random();
  const normal = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  return Math.max(1, Math.round(typical * Math.exp(0.6 * normal)));
}

function pick<T>(random: () => number, items: readonly (readonly [...unknown[], number])[], map: (item: (typeof items)[number]) => T): T {
  const total = items.reduce((s, i) => s + (i[i.length - 1] as number), 0);
  let r = random() * total;
  for (const item of items) {
    r -= item[item.length - 1] as number;
    if (r <= 0) return map(item);
  }
  return map(items[items.length - 1]!);
}

/** Working hours weigh more: a call's hour of the day (UTC) drawn from a day-shaped curve. */
function hourOfDay(random: () => number): number {
  const peak = 13 + 3 * (random() + random() + random() - 1.5);
  return Math.min(23.99, Math.max(0, peak + (random() < 0.15 ? (random() - 0.5) * 24 : 0)));
}

export function* demoEvents(now: Date, days: number): Generator<Record<string, unknown>> {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  for (let d = days - 1; d >= 0; d--) {
    const dayStart = today - d * 86_400_000;
    const date = new Date(dayStart).toISOString().slice(0, 10);
    const random = rng(seedOf(date));
    const weekday = new Date(dayStart).getUTCDay();
    const weekFactor = weekday === 0 || weekday === 6 ? 0.35 : 1;
    const growth = 1 + 0.006 * (days - d);
    let n = 0;
    for (const w of WORKLOADS) {
      const spike = w.team === "growth" && d === 9 ? 6 : 1;
      const calls = Math.round(w.daily * weekFactor * growth * spike * (0.85 + 0.3 * random()));
      for (let i = 0; i < calls; i++) {
        const ts = dayStart + hourOfDay(random) * 3_600_000;
        const [provider, model] = pick(random, w.models, (m) => [m[0] as string, m[1] as string] as const);
        const input = size(random, w.input);
        const cached = random() < w.cacheShare ? Math.floor(input * (0.5 + 0.4 * random())) : 0;
        const output = size(random, w.output);
        const reasoning = model.startsWith("gemini-2.5") ? Math.floor(output * 0.3 * random()) : 0;
        const latency = Math.round(200 + output * (4 + 6 * random()));
        const status = random() < 0.01 ? "error" : "ok";
        const user = USERS[Math.floor(random() * USERS.length)];
        // Every draw and the id are taken before the cut at "now", so an event is the same on every run.
        const id = `demo-${date}-${n++}`;
        if (ts > now.getTime()) continue;
        yield {
          id,
          timestamp: new Date(ts).toISOString(),
          provider,
          model,
          input_tokens: input,
          cached_input_tokens: cached,
          output_tokens: output + reasoning,
          reasoning_tokens: reasoning,
          latency_ms: latency,
          status,
          team: w.team,
          project: w.project,
          feature: w.feature,
          user,
          tags: { env: "production" },
        };
      }
    }
  }
}
