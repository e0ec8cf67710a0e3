import { type Html, html } from "./html.ts";
import { money, table } from "./layout.ts";

export interface SpendChart {
  id: string;
  title: string;
  /** One label per bar (a day, a group). */
  labels: string[];
  /** Stacked series, pico-USD per label. */
  series: { name: string; values: bigint[] }[];
}

/**
 * A chart as a figure: its picture, then the same numbers as a table for screen readers and
 * anyone without the picture (the table is the chart's text equivalent, exact to the cent).
 */
export function chartFigure(chart: SpendChart): Html {
  const totals = chart.labels.map((_, i) => chart.series.reduce((sum, s) => sum + (s.values[i] ?? 0n), 0n));
  const rows = chart.labels.map((label, i) => ({ label, values: chart.series.map((s) => s.values[i] ?? 0n), total: totals[i]! }));
  return html`<figure id="${chart.id}" aria-labelledby="${chart.id}-title"><figcaption id="${chart.id}-title">${chart.title}</figcaption>
<details><summary>The chart's numbers as a table</summary>
${table<(typeof rows)[number]>(
  chart.title,
  [
    { head: "", cell: (r) => r.label },
    ...chart.series.map((s, j) => ({ head: s.name, num: true, cell: (r: (typeof rows)[number]) => money(r.values[j]!) })),
    { head: "Total", num: true, cell: (r) => money(r.total) },
  ],
  rows,
  "no spend.",
)}</details></figure>`;
}
