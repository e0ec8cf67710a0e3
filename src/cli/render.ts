/** The JSON answer of GET /api/spend, as much of it as scripts read. */
export interface SpendJson {
  period: { start: string; end: string; label: string };
  total: { cost_usd: string; requests: number | string };
  previous: { cost_usd: string; requests: number | string };
  groups: { key: string; cost_usd: string; requests: number | string }[];
  unpriced_requests: number | string;
}

/** Plain aligned columns for listings. */
export function renderTable(rows: Record<string, unknown>[], columns: string[]): string {
  const cell = (v: unknown) => (v === null || v === undefined ? "" : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(columns), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join("\n");
}
