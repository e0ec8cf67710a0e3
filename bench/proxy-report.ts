import { ATTEMPTS, type Comparison, FOREIGN_CPU, type Measured, P99_LIMIT_MS, type ProxyResult, QUIET_CPU, QUIET_WAIT_MS } from "./proxy.ts";
import type { Summary } from "./proxy-shared.ts";

/** The proxy bench's section of bench/RESULTS.md. */

const QUIET_WAIT_S = QUIET_WAIT_MS / 1000;
const TARGETS = { addedP50: 0.5, addedP99: 2, addedTtfb: 1, rssMb: 200 };

const int = (n: number) => n.toLocaleString("en-US");
const ms = (v: number) => `${v.toFixed(2)} ms`;
const added = (v: number) => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(2)} ms`;
const ratio = (proxy: number, direct: number) => `${(proxy / direct).toFixed(1)}×`;
const met = (ok: boolean) => (ok ? "yes" : "**no**");
/** Other work's CPU, marked when the phase started on a busy machine or ran beside too much of it. */
const other = (m: Measured) => `${m.usage.foreignCpu} %${m.startedQuiet ? "" : " †"}${m.usage.foreignCpu > FOREIGN_CPU ? " ‡" : ""}`;
const both = (c: Comparison, f: (m: Measured) => string) => `${f(c.direct)} / ${f(c.proxy)}`;

function latencyRow(c: Comparison): string {
  const d = c.direct.result.latency;
  const p = c.proxy.result.latency;
  return [
    int(c.rate),
    int(c.proxy.result.scheduled),
    both(c, (m) => int(m.result.errors)),
    ms(d.p50),
    ms(d.p99),
    ms(p.p50),
    ms(p.p99),
    `**${added(p.p50 - d.p50)}**`,
    `**${added(p.p99 - d.p99)}**`,
    `${ratio(p.p50, d.p50)} / ${ratio(p.p99, d.p99)}`,
    both(c, (m) => ms(m.result.lag.p99)),
    `${c.proxy.usage.gatewayCpu} %`,
    both(c, (m) => `${m.usage.postgresCpu} %`),
    both(c, (m) => `${m.usage.benchCpu} %`),
    both(c, other),
    `${c.proxy.usage.rssPeakMb} MB`,
  ].join(" | ");
}

const LATENCY_HEAD = `| req/s | requests, each | errors direct / proxy | direct p50 | direct p99 | proxy p50 | proxy p99 | added p50 | added p99 | ratio p50 / p99 | send lag p99 | gateway CPU | Postgres CPU | generator + mock CPU | other work CPU | gateway RSS peak |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|`;

function ttfbRow(c: Comparison): string {
  const d = c.direct.result.ttfb as Summary;
  const p = c.proxy.result.ttfb as Summary;
  return [int(c.rate), ms(d.p50), ms(d.p99), ms(p.p50), ms(p.p99), `**${added(p.p50 - d.p50)}**`, `**${added(p.p99 - d.p99)}**`, `${ratio(p.p50, d.p50)} / ${ratio(p.p99, d.p99)}`].join(" | ");
}

function searchRows(r: ProxyResult): string {
  const row = (rate: number, label: string, m: Measured, verdict: string) => {
    const l = m.result.latency;
    return `| ${int(rate)} | ${label} | ${int(m.result.scheduled)} | ${int(m.result.errors)} | ${ms(l.p50)} | ${ms(l.p90)} | ${ms(l.p99)} | ${ms(l.max)} | ${ms(m.result.lag.p99)} | ${m.usage.gatewayCpu} % | ${m.usage.postgresCpu} % | ${m.usage.benchCpu} % | ${other(m)} | ${m.usage.rssPeakMb} MB | ${verdict} |`;
  };
  return r.search
    .flatMap((s) => [
      row(s.rate, "proxy", s.proxy, s.failed ? `**no**: ${s.failed}` : "yes"),
      ...(s.direct ? [row(s.rate, "direct", s.direct, "(for comparison)")] : []),
    ])
    .join("\n");
}

export function proxySection(r: ProxyResult): string {
  const o = r.options;
  const plain = r.comparisons.filter((c) => !c.stream);
  const streamed = r.comparisons.filter((c) => c.stream);
  const recordedTotal = Object.values(r.recorded).reduce((a, b) => a + b, 0);
  const byStatus = Object.entries(r.recorded).map(([status, n]) => `${status} ${int(n)}`).join(", ");
  const verdicts = r.comparisons.flatMap((c) => {
    const d = c.direct.result;
    const p = c.proxy.result;
    const kind = c.stream ? "streamed" : "non-streamed";
    const rows = [
      `| added p50, ${kind}, ${int(c.rate)} req/s | ≤ ${TARGETS.addedP50} ms | ${added(p.latency.p50 - d.latency.p50)} | ${met(p.latency.p50 - d.latency.p50 <= TARGETS.addedP50)} |`,
      `| added p99, ${kind}, ${int(c.rate)} req/s | ≤ ${TARGETS.addedP99} ms | ${added(p.latency.p99 - d.latency.p99)} | ${met(p.latency.p99 - d.latency.p99 <= TARGETS.addedP99)} |`,
    ];
    if (c.stream && d.ttfb && p.ttfb) {
      rows.push(`| added TTFB p50, ${int(c.rate)} req/s | ≤ ${TARGETS.addedTtfb} ms | ${added(p.ttfb.p50 - d.ttfb.p50)} | ${met(p.ttfb.p50 - d.ttfb.p50 <= TARGETS.addedTtfb)} |`);
      rows.push(`| added TTFB p99, ${int(c.rate)} req/s | ≤ ${TARGETS.addedTtfb} ms | ${added(p.ttfb.p99 - d.ttfb.p99)} | ${met(p.ttfb.p99 - d.ttfb.p99 <= TARGETS.addedTtfb)} |`);
    }
    return rows;
  });
  verdicts.push(`| gateway RSS, whole run | ≤ ${TARGETS.rssMb} MB | ${r.gatewayRssPeakMb} MB peak (${r.gatewayIdleRssMb} MB before any load) | ${met(r.gatewayRssPeakMb <= TARGETS.rssMb)} |`);

  return `## Proxy overhead: direct to a mock upstream vs through \`tollgate serve\`, recording on (targets: added p50 ≤ ${TARGETS.addedP50} ms, p99 ≤ ${TARGETS.addedP99} ms, stream TTFB ≤ ${TARGETS.addedTtfb} ms added, RSS ≤ ${TARGETS.rssMb} MB)

Run at ${r.startedAt.toISOString()} with \`npm run bench:proxy\` (bench/proxy.ts), gateway at ${r.source}. Each phase sends OpenAI chat
completions for ${o.seconds} s at a fixed rate, open loop, from one load generator (undici, keep-alive pool);
the direct and the proxy phase of each row ran back to back, same generator, same mock upstream on
loopback, after ${o.warmupSeconds} s of warm-up per kind. Latency is send to last body byte; TTFB is send
to first body chunk; "added" is the proxy percentile minus the direct one. Send lag is how late the
generator sent against its schedule (its own share of the machine). CPU columns are CPU time over
wall time, 100 % = one core, 200 % = this whole machine; "other work" is what ran beside the bench
(builds and test runs share this machine). Each phase waited (up to ${QUIET_WAIT_S} s) for a second
with the machine under ${QUIET_CPU} % before starting († marks one that started without it); a pair
during which other work took over ${FOREIGN_CPU} % was run again, up to ${ATTEMPTS} times in all (‡ marks
a phase kept with more than that).

| bar | target | measured | met |
|---|---|---:|---|
${verdicts.join("\n")}

### Non-streamed

${LATENCY_HEAD}
${plain.map((c) => `| ${latencyRow(c)} |`).join("\n")}

### Streamed (latency to the last byte)

${LATENCY_HEAD}
${streamed.map((c) => `| ${latencyRow(c)} |`).join("\n")}

### Streamed: time to first byte

| req/s | direct p50 | direct p99 | proxy p50 | proxy p99 | added p50 | added p99 | ratio p50 / p99 |
|---:|---:|---:|---:|---:|---:|---:|---:|
${streamed.map((c) => `| ${ttfbRow(c)} |`).join("\n")}

### Highest rate through the proxy with p99 ≤ ${P99_LIMIT_MS} ms (non-streamed)

**${r.maxSustainedRate === undefined ? "none of the rates tried" : `${int(r.maxSustainedRate)} req/s`}**: steps of ${o.stepSeconds} s (shorter than the phases above), rates ${o.searchRates.map(int).join(", ")} until
one failed (p99 over ${P99_LIMIT_MS} ms, any error, or the generator sending late); the failed rate was
then sent directly too, to tell the gateway's limit from the generator's and the mock's.

| req/s | to | requests | errors | p50 | p90 | p99 | max | send lag p99 | gateway CPU | Postgres CPU | generator + mock CPU | other work CPU | gateway RSS peak | sustained |
|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
${searchRows(r)}

### Recording

${int(r.proxyRequests)} requests were sent through the gateway in the run (2 sanity checks, warm-up, phases
and search); after it shut down \`usage_events\` held **${int(recordedTotal)}** rows (${byStatus || "none"})${recordedTotal === r.proxyRequests ? ", one per request" : `, ${int(r.proxyRequests - recordedTotal)} short of one per request`}.
${r.journalBytes > 0 ? `The journal still held ${int(r.journalBytes)} bytes of events the gateway could not write to Postgres.` : "Nothing was left in the journal."}

The load generator, the gateway, the mock upstream and Postgres all share this machine's 2 cores:
every figure here, direct ones included, carries the others' contention. The gateway ran with
\`LOG_LEVEL=warn\` (no per-request access log line) and the open budget gate (no hard budget
is defined, so none is checked; bench:budgets measures the check itself). The mock answers from bytes built at start-up; a stream's first chunk is
written with the headers and the rest one event-loop turn later. Streaming clients do not ask for
usage, so the gateway adds \`stream_options.include_usage\` and drops the usage chunk on its way back.`;
}
