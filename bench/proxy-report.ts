import { type ClosedMeasured, type Measured, PLAIN_TARGETS, type ProfileResult, type ProxyResult, QUIET_CPU, QUIET_WAIT_MS, type RateRow, type TargetName } from "./proxy.ts";
import type { Summary } from "./proxy-shared.ts";

/** The proxy bench's section of bench/RESULTS.md. */

const TARGETS = { addedP50: 0.5, addedP99: 2, addedTtfbP99: 1, vsPortkey: 8, vsMock: 0.25, rssLoadMb: 150, rssIdleMb: 100 };
/** The rate the latency bars are judged at, and the streamed one for time to first byte. */
const BAR_RATE = 1000;
const TTFB_RATE = 500;

const int = (n: number) => n.toLocaleString("en-US");
/** Percentiles of a phase with no answer at all are NaN (null once they crossed IPC as JSON). */
const none = (v: number | null) => v === null || Number.isNaN(v);
const ms = (v: number) => (none(v) ? "–" : v.toFixed(2));
const added = (v: number) => (none(v) ? "–" : `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(2)}`);
const times = (v: number) => (Number.isFinite(v) ? `${v.toFixed(v >= 10 ? 0 : 2)}×` : "–");
const met = (ok: boolean) => (ok ? "yes" : "**no**");
const three = (s: Summary) => `${ms(s.p50)} / ${ms(s.p90)} / ${ms(s.p99)}`;
const addedThree = (p: Summary, d: Summary) => `**${added(p.p50 - d.p50)}** / ${added(p.p90 - d.p90)} / **${added(p.p99 - d.p99)}**`;
/** Server CPU time per answered call, in µs. */
const cpuPerCall = (m: { usage: Measured["usage"]; result: { completed: number } } | undefined) =>
  m && m.result.completed > 0 ? Math.round((m.usage.serverCpuSeconds / m.result.completed) * 1e6) : NaN;
/** Time the server's event loop waited for a CPU per answered call, in µs. */
const waitPerCall = (m: Measured | undefined) => (m && m.result.completed > 0 ? Math.round((m.usage.serverWaitSeconds / m.result.completed) * 1e6) : NaN);
const postgresPerCall = (m: Measured | undefined) => (m && m.result.completed > 0 ? Math.round(((m.usage.postgresCpu / 100) * m.usage.seconds * 1e6) / m.result.completed) : NaN);
const us = (v: number) => (Number.isNaN(v) ? "–" : `${int(v)}`);
/** Other work's CPU, marked when the phase started on a busy machine. */
const other = (m: { usage: Measured["usage"]; startedQuiet: boolean } | undefined) => (m ? `${m.usage.foreignCpu} %${m.startedQuiet ? "" : " †"}` : "–");
const each = (row: RateRow, names: readonly TargetName[], f: (m: Measured) => string) => names.map((n) => (row.runs[n] ? f(row.runs[n]!) : "–")).join(" / ");

function plainRow(row: RateRow): string {
  const d = row.runs.direct!.result.latency;
  const t = row.runs.tollgate!.result.latency;
  const p = row.runs.portkey?.result.latency;
  const tAdded = { p50: t.p50 - d.p50, p99: t.p99 - d.p99 };
  const pAdded = p ? { p50: p.p50 - d.p50, p99: p.p99 - d.p99 } : undefined;
  return [
    int(row.rate),
    three(d),
    three(t),
    addedThree(t, d),
    p ? three(p) : "–",
    p ? addedThree(p, d) : "–",
    pAdded ? `${times(tAdded.p50 / pAdded.p50)} / ${times(tAdded.p99 / pAdded.p99)}` : "–",
    each(row, ["direct", "tollgate", "portkey"], (m) => int(m.result.errors)),
    each(row, ["direct", "tollgate", "portkey"], (m) => ms(m.result.lag.p99)),
    each(row, ["direct", "tollgate", "portkey"], (m) => us(cpuPerCall(m))),
    us(postgresPerCall(row.runs.tollgate)),
    each(row, ["tollgate", "portkey"], (m) => `${m.usage.rssPeakMb}`),
    each(row, ["direct", "tollgate", "portkey"], (m) => other(m)),
  ].join(" | ");
}

function streamRow(row: RateRow): string {
  const d = row.runs.direct!.result;
  const t = row.runs.tollgate!.result;
  const dt = d.ttfb!;
  const tt = t.ttfb!;
  return [
    int(row.rate),
    three(d.latency),
    three(t.latency),
    addedThree(t.latency, d.latency),
    `${ms(dt.p50)} / ${ms(dt.p99)}`,
    `${ms(tt.p50)} / ${ms(tt.p99)}`,
    `**${added(tt.p50 - dt.p50)}** / **${added(tt.p99 - dt.p99)}**`,
    each(row, ["direct", "tollgate"], (m) => int(m.result.errors)),
    each(row, ["direct", "tollgate"], (m) => ms(m.result.lag.p99)),
    each(row, ["direct", "tollgate"], (m) => us(cpuPerCall(m))),
    `${row.runs.tollgate!.usage.rssPeakMb}`,
    each(row, ["direct", "tollgate"], (m) => other(m)),
  ].join(" | ");
}

/** Tollgate against the floor at one rate and kind: what the gateway's own work adds over bare Node. */
function floorRow(row: RateRow): string {
  const d = row.runs.direct!.result.latency;
  const f = row.runs.floor!.result.latency;
  const t = row.runs.tollgate!.result.latency;
  const cpu = { floor: cpuPerCall(row.runs.floor), tollgate: cpuPerCall(row.runs.tollgate) };
  return [
    row.stream ? "streamed" : "non-streamed",
    int(row.rate),
    three(f),
    `${added(f.p50 - d.p50)} / ${added(f.p99 - d.p99)}`,
    `${added(t.p50 - d.p50)} / ${added(t.p99 - d.p99)}`,
    `**${added(t.p50 - f.p50)}** / ${added(t.p99 - f.p99)}`,
    `${us(cpu.floor)} / ${us(cpu.tollgate)}`,
    times(cpu.tollgate / cpu.floor),
    `${us(waitPerCall(row.runs.floor))} / ${us(waitPerCall(row.runs.tollgate))}`,
    each(row, ["floor", "tollgate"], (m) => int(m.result.errors)),
    each(row, ["floor", "tollgate"], (m) => other(m)),
  ].join(" | ");
}

const CLOSED_LABEL: Record<TargetName, string> = { direct: "mock upstream, direct", floor: "the floor: bare Node pass-through", tollgate: "Tollgate", portkey: "Portkey's gateway" };

function closedRow(name: TargetName, m: ClosedMeasured, r: ProxyResult): string {
  const peer = r.closed.portkey!.result.perSecond;
  const mock = r.closed.direct!.result.perSecond;
  const floor = r.closed.floor!.result.perSecond;
  return [
    CLOSED_LABEL[name],
    int(m.result.perSecond),
    int(m.result.completed),
    int(m.result.errors),
    `${ms(m.result.latency.p50)} / ${ms(m.result.latency.p99)}`,
    `${m.usage.serverCpu} %`,
    us(cpuPerCall(m)),
    `${m.usage.postgresCpu} %`,
    name === "direct" ? "–" : `${m.usage.rssPeakMb}`,
    times(m.result.perSecond / peer),
    times(m.result.perSecond / mock),
    name === "direct" ? "–" : times(m.result.perSecond / floor),
    other(m),
  ].join(" | ");
}

export function proxySection(r: ProxyResult): string {
  const o = r.options;
  const plain = r.rows.filter((row) => !row.stream);
  const streamed = r.rows.filter((row) => row.stream);
  const recordedTotal = Object.values(r.recorded).reduce((a, b) => a + b, 0);
  const byStatus = Object.entries(r.recorded).map(([status, n]) => `${status} ${int(n)}`).join(", ");
  const load = (l: number[]) => l.map((v) => v.toFixed(1)).join(" / ");

  const bars: string[] = [];
  const atBar = plain.find((row) => row.rate === BAR_RATE);
  if (atBar) {
    const d = atBar.runs.direct!.result.latency;
    const t = atBar.runs.tollgate!.result.latency;
    bars.push(`| added p50, non-streamed, ${int(BAR_RATE)} req/s | ≤ ${TARGETS.addedP50} ms | ${added(t.p50 - d.p50)} ms | ${met(t.p50 - d.p50 <= TARGETS.addedP50)} |`);
    bars.push(`| added p99, non-streamed, ${int(BAR_RATE)} req/s | ≤ ${TARGETS.addedP99} ms | ${added(t.p99 - d.p99)} ms | ${met(t.p99 - d.p99 <= TARGETS.addedP99)} |`);
  }
  const ttfbRow = streamed.find((row) => row.rate === TTFB_RATE);
  if (ttfbRow) {
    const gap = ttfbRow.runs.tollgate!.result.ttfb!.p99 - ttfbRow.runs.direct!.result.ttfb!.p99;
    bars.push(`| added time to first byte p99, streamed, ${int(TTFB_RATE)} req/s | ≤ ${TARGETS.addedTtfbP99} ms | ${added(gap)} ms | ${met(gap <= TARGETS.addedTtfbP99)} |`);
  }
  const closedT = r.closed.tollgate!.result.perSecond;
  const vsPeer = closedT / r.closed.portkey!.result.perSecond;
  const vsMock = closedT / r.closed.direct!.result.perSecond;
  bars.push(`| closed-loop throughput ÷ Portkey's | ≥ ${TARGETS.vsPortkey}× | ${times(vsPeer)} (${int(closedT)} vs ${int(r.closed.portkey!.result.perSecond)} req/s) | ${met(vsPeer >= TARGETS.vsPortkey)} |`);
  bars.push(`| closed-loop throughput ÷ the mock's | ≥ ${TARGETS.vsMock}× | ${times(vsMock)} (${int(closedT)} vs ${int(r.closed.direct!.result.perSecond)} req/s) | ${met(vsMock >= TARGETS.vsMock)} |`);
  bars.push(`| RSS under the open-loop load (peak) | ≤ ${TARGETS.rssLoadMb} MB | ${r.rssPeakMb.tollgate} MB | ${met(r.rssPeakMb.tollgate <= TARGETS.rssLoadMb)} |`);
  bars.push(`| RSS idle (after start-up; after the run) | ≤ ${TARGETS.rssIdleMb} MB | ${r.idleRssMb.tollgate} MB; ${r.idleRssMb.tollgateAfter} MB | ${met(r.idleRssMb.tollgate <= TARGETS.rssIdleMb)} |`);

  const floorClosed = r.closed.floor!;
  const floorSentence = `The floor, a bare Node pass-through (no keys, budgets or recording), answered ${int(floorClosed.result.perSecond)} req/s in the closed loop at ${us(cpuPerCall(floorClosed))} µs of CPU per call; Tollgate answered ${times(closedT / floorClosed.result.perSecond)} of its throughput at ${times(cpuPerCall(r.closed.tollgate) / cpuPerCall(floorClosed))} its CPU per call${atBar?.runs.floor ? `, and at ${int(BAR_RATE)} req/s added ${added(atBar.runs.tollgate!.result.latency.p50 - atBar.runs.floor.result.latency.p50)} ms p50 over it` : ""}.`;

  return `## Proxy overhead: direct vs Tollgate vs Portkey's gateway, one interleaved run (targets: added p50 ≤ ${TARGETS.addedP50} ms and p99 ≤ ${TARGETS.addedP99} ms at ${int(BAR_RATE)} req/s, closed loop ≥ ${TARGETS.vsPortkey}× Portkey and ≥ ${TARGETS.vsMock}× the mock, RSS ≤ ${TARGETS.rssLoadMb} MB under load)

Run at ${r.startedAt.toISOString()} with \`npm run bench:proxy\` (bench/proxy.ts), ${r.seconds} s in all; Tollgate at ${r.source}
(compiled \`dist/\`, PostgreSQL, recording on, one hard budget matching every call), Portkey's gateway
${r.portkeyVersion} (\`--headless\`). Load average (1 / 5 / 15 min): ${load(r.loadBefore)} as the run began, ${load(r.loadAfter)} as it ended.

How: one load generator (undici) sends OpenAI chat completions to the mock upstream on loopback:
straight to it (direct), through Tollgate, through Portkey (routed to the same mock by
\`x-portkey-provider: openai\` and \`x-portkey-custom-host\`), and through the floor: the smallest correct
Node proxy (bench/proxy-floor.ts: node:http in, Tollgate's undici pool settings out, the answer streamed
back, nothing recorded or checked), what any Node gateway costs on this machine before doing anything. Open loop: ${o.seconds} s per phase at a fixed rate
on 64 connections, each with its own fixed schedule (offset so no two fire together); a rate's phases
run back to back, direct first, after a warm-up of ${o.warmupSeconds} s per target. Latency is send to last body
byte, TTFB send to first body chunk, in ms; "added" is the target's percentile minus direct's at the
same rate; "Tollgate ÷ Portkey" divides Tollgate's added latency by Portkey's. Closed loop: ${o.closedConnections}
connections each sending again as soon as answered, ${o.closedSeconds} s per target. CPU per call is the
server's CPU time (the mock's for direct, the floor's, Tollgate's, Portkey's) over its answered calls, in µs; Postgres
per call is the ledger's writes; "event loop waiting for a CPU" is the time the server's main thread was ready to run
but not running (Linux's schedstat), over its answered calls: every call in flight meanwhile waits with it. Each phase waited up to ${QUIET_WAIT_MS / 1000} s for a second with the machine under
${QUIET_CPU} % (100 % = one core; † marks one that started without it); "other work" is CPU used beside the
bench by unrelated processes (the 2-core machine is shared). Portkey 1.15.2 answers
streamed calls with 500 as installed, so streams compare Tollgate with direct only.

| bar | target | measured | met |
|---|---|---:|---|
${bars.join("\n")}

${floorSentence}

### Open loop, non-streamed (ms: p50 / p90 / p99)

| req/s | direct | Tollgate | Tollgate added | Portkey | Portkey added | Tollgate ÷ Portkey, added p50 / p99 | errors d / T / P | send lag p99 d / T / P | CPU per call, µs: mock / Tollgate / Portkey | Postgres per call, µs | RSS peak MB T / P | other work CPU d / T / P |
|---:|---|---|---|---|---|---|---|---|---|---:|---|---|
${plain.map((row) => `| ${plainRow(row)} |`).join("\n")}

### Open loop, streamed (ms: latency to the last byte p50 / p90 / p99; time to first byte p50 / p99)

| req/s | direct | Tollgate | Tollgate added | TTFB direct | TTFB Tollgate | TTFB added | errors d / T | send lag p99 d / T | CPU per call, µs: mock / Tollgate | RSS peak MB | other work CPU d / T |
|---:|---|---|---|---|---|---|---|---|---|---:|---|
${streamed.map((row) => `| ${streamRow(row)} |`).join("\n")}

### Tollgate over the floor (ms: floor p50 / p90 / p99; added over direct p50 / p99)

| kind | req/s | floor | floor added | Tollgate added | Tollgate over the floor, p50 / p99 | CPU per call, µs: floor / Tollgate | Tollgate ÷ floor, CPU | event loop waiting for a CPU, µs per call: floor / Tollgate | errors F / T | other work CPU F / T |
|---|---:|---|---|---|---|---|---:|---|---|---|
${r.rows.map((row) => `| ${floorRow(row)} |`).join("\n")}

### Closed loop, non-streamed, ${o.closedConnections} connections

| target | req/s | answered | errors | p50 / p99 ms | server CPU | CPU per call, µs | Postgres CPU | RSS peak MB | ÷ Portkey | ÷ mock | ÷ floor | other work CPU |
|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|
${PLAIN_TARGETS.map((n) => `| ${closedRow(n, r.closed[n]!, r)} |`).join("\n")}

### Memory

| | Tollgate | Portkey |
|---|---:|---:|
| RSS idle, after start-up and one call of each kind | ${r.idleRssMb.tollgate} MB | ${r.idleRssMb.portkey} MB |
| RSS peak over the open-loop phases | ${r.rssPeakMb.tollgate} MB | ${r.rssPeakMb.portkey} MB |
| RSS peak in the closed loop | ${r.rssPeakMb.tollgateClosed} MB | ${r.rssPeakMb.portkeyClosed} MB |
| RSS 5 s after the last load | ${r.idleRssMb.tollgateAfter} MB | |

### Recording

${int(r.proxyRequests)} requests were sent through Tollgate in the run (2 sanity checks, warm-up, phases and the
closed loop); after it shut down \`usage_events\` held **${int(recordedTotal)}** rows (${byStatus || "none"})${recordedTotal === r.proxyRequests ? ", one per request" : `, ${int(r.proxyRequests - recordedTotal)} short of one per request`}.
${r.journalBytes > 0 ? `The journal still held ${int(r.journalBytes)} bytes of events the gateway could not write to Postgres.` : "Nothing was left in the journal."} Tollgate ran with \`LOG_LEVEL=warn\` (no per-request
access log line). The mock answers from bytes built at start-up; a stream's first chunk is written with
the headers and the rest one event-loop turn later. Streaming clients do not ask for usage, so Tollgate
adds \`stream_options.include_usage\` and drops the usage chunk on its way back.`;
}

/** The CPU profile's section of bench/RESULTS.md. */
export function profileSection(r: ProfileResult): string {
  const busy = r.profile.totalMs - r.profile.idleMs;
  const share = (v: number) => `${((v / busy) * 100).toFixed(1)} %`;
  const l = r.phase.result.latency;
  const perCall = Math.round((r.phase.usage.serverCpuSeconds / r.phase.result.completed) * 1e6);
  const what =
    r.target === "floor"
      ? `the floor (bench/proxy-floor.ts, the bare Node pass-through, Tollgate's pool settings at ${r.source}; \`node --cpu-prof\`,
sampling every 0.5 ms), no keys, budgets or recording, non-streamed calls`
      : `Tollgate at ${r.source} (compiled \`dist/\`,
\`node --cpu-prof\`, sampling every 0.5 ms), PostgreSQL, recording on, one hard budget matching every call, non-streamed
calls`;
  const name = r.target === "floor" ? "The floor" : "Tollgate";
  return `## Proxy CPU profile${r.target === "floor" ? " of the floor" : ""}: ${name} at ${int(r.rate)} req/s (where the CPU goes)

Run at ${r.startedAt.toISOString()} with \`${r.target === "floor" ? "BENCH_PROFILE_TARGET=floor " : ""}npm run bench:proxy-profile\`, ${what} for ${r.seconds} s after a 4 s warm-up at 500 req/s. Load average as it began: ${r.loadBefore.map((v) => v.toFixed(1)).join(" / ")};
other work took ${r.phase.usage.foreignCpu} % of the machine (100 % = one core) during the phase.
In that phase: p50 / p90 / p99 ${ms(l.p50)} / ${ms(l.p90)} / ${ms(l.p99)} ms, ${int(r.phase.result.errors)} errors, ${name}'s CPU ${r.phase.usage.serverCpu} %
(${int(perCall)} µs per call with the profiler on). The profile covers the whole process life (start-up and
warm-up included): ${int(Math.round(busy))} ms busy of ${int(Math.round(r.profile.totalMs))} ms sampled. Shares below are of busy time.

| part | self | inclusive |
|---|---:|---:|
${r.profile.parts
  .slice(0, 22)
  .map((p) => `| ${p.part} | ${share(p.selfMs)} | ${share(p.inclusiveMs)} |`)
  .join("\n")}

| function (self time) | part | self |
|---|---|---:|
${r.profile.functions.map((f) => `| \`${f.name}\` | ${f.part} | ${share(f.selfMs)} |`).join("\n")}`;
}
