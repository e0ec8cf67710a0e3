import { type Chart, usdValue } from "../charts/chart.ts";
import { renderSvg } from "../charts/svg.ts";
import { type Html, html, trusted } from "./html.ts";
import { money, table } from "./layout.ts";

export interface SpendChart {
  id: string;
  title: string;
  kind: "bar" | "line" | "stacked";
  /** One label per bar or point (a group, a day). */
  labels: string[];
  /** pico-USD per label, one series per line (or a single series of bars). */
  series: { name: string; values: bigint[] }[];
}

/** The neutral chart value of src/charts, with money as exact decimal text. */
export const chartOf = (c: SpendChart): Chart => ({
  kind: c.kind,
  title: c.title,
  categories: c.labels,
  series: c.series.map((s) => ({ name: s.name, values: s.values.map(usdValue) })),
  unit: "usd",
});

/**
 * A chart as a figure: the shared renderer's SVG (themed by the page's CSS, its own <title> and
 * <desc>, every data text escaped by it), then the same numbers as a table, exact to the cent, for
 * screen readers and anyone who wants the figures rather than the picture.
 */
export function chartFigure(chart: SpendChart): Html {
  if (chart.labels.length === 0) return html``;
  const rows = chart.labels.map((label, i) => ({ label, values: chart.series.map((s) => s.values[i] ?? 0n) }));
  const many = chart.series.length > 1;
  return html`<figure id="${chart.id}" class="chart">${trusted(renderSvg(chartOf(chart), { id: `${chart.id}-svg`, theme: "css", width: 760 }))}
<details><summary>${chart.title}: the numbers as a table</summary>
${table<(typeof rows)[number]>(
  chart.title,
  [
    { head: "", cell: (r) => r.label },
    ...chart.series.map((s, j) => ({ head: s.name, num: true, cell: (r: (typeof rows)[number]) => money(r.values[j]!) })),
    ...(many ? [{ head: "Total", num: true, cell: (r: (typeof rows)[number]) => money(r.values.reduce((a, b) => a + b, 0n)) }] : []),
  ],
  rows,
)}</details></figure>`;
}
