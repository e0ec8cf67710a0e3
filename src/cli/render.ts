import { changeText, decimalUsdToPico, formatUsd } from "../pricing/money.ts";

/** The JSON answer of GET /api/spend, as much of it as the terminal shows. */
export interface SpendJson {
  period: { start: string; end: string; label: string };
  total: { cost_usd: string; requests: number | string };
  previous: { cost_usd: string; requests: number | string };
  groups: { key: string; cost_usd: string; requests: number | string }[];
  unpriced_requests: number | string;
}

const BAR_WIDTH = 24n;

function pico(usd: string): bigint {
  const value = decimalUsdToPico(usd);
  return typeof value === "bigint" ? value : 0n;
}

const count = (n: number | string) => Number(n).toLocaleString("en-US");

function bar(part: bigint, whole: bigint): string {
  if (whole <= 0n || part <= 0n) return "";
  const eighths = Number((part * BAR_WIDTH * 8n) / whole);
  return "█".repeat(Math.floor(eighths / 8)) + (["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"][eighths % 8] ?? "");
}

/** A readable table with bars, for `tollgate spend`. */
export function renderSpend(report: SpendJson, by: string | undefined): string {
  const total = pico(report.total.cost_usd);
  const previous = pico(report.previous.cost_usd);
  const days = (iso: string) => iso.slice(0, 10);
  const lines = [
    `AI spend, ${report.period.label} (${days(report.period.start)} to ${days(report.period.end)})`,
    `Total ${formatUsd(total)} over ${count(report.total.requests)} requests; ${changeText(total, previous)} against the previous period (${formatUsd(previous)})`,
  ];
  if (by && report.groups.length > 0) {
    const keyWidth = Math.max(by.length, ...report.groups.map((g) => g.key.length));
    const costs = report.groups.map((g) => formatUsd(pico(g.cost_usd)));
    const costWidth = Math.max(4, ...costs.map((c) => c.length));
    lines.push("", `${by.padEnd(keyWidth)}  ${"cost".padStart(costWidth)}  ${"requests".padStart(10)}`);
    report.groups.forEach((g, i) => {
      lines.push(`${g.key.padEnd(keyWidth)}  ${costs[i]!.padStart(costWidth)}  ${count(g.requests).padStart(10)}  ${bar(pico(g.cost_usd), total)}`);
    });
  }
  const unpriced = Number(report.unpriced_requests);
  if (unpriced > 0) lines.push("", `${count(unpriced)} requests used models without a known price and are not in these totals.`);
  return lines.join("\n");
}

/** Plain aligned columns for listings. */
export function renderTable(rows: Record<string, unknown>[], columns: string[]): string {
  const cell = (v: unknown) => (v === null || v === undefined ? "" : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(columns), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join("\n");
}
