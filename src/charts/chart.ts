import { z } from "zod";
import { decimalUsdToPico, formatUsd, picoToDecimalString } from "../pricing/money.ts";

/*
 * The one chart value commands and alerts produce (issue 15): what is drawn, never how. Each
 * platform draws it its own way (a Slack data_visualization block, a Teams Chart.* element, a PNG
 * from src/charts/svg.ts for Telegram, the dashboard's inline SVG) and every one of them also shows
 * chartLines(), its text equivalent. Values stay exact decimal text, as the ledger sums them:
 * they become floats only where a renderer computes pixel positions.
 */

/**
 * bar: one bar per category (a breakdown); line: a value per category in order (a trend); stacked:
 * a column per category in order, its series stacked as parts of the category's whole (a trend of
 * a breakdown); pie/donut: shares of a whole.
 */
export const CHART_KINDS = ["bar", "line", "stacked", "pie", "donut"] as const;
export type ChartKind = (typeof CHART_KINDS)[number];

/** What the values count: USD (decimal text, exact to the pico-dollar) or a plain count (requests). */
export const CHART_UNITS = ["usd", "count"] as const;
export type ChartUnit = (typeof CHART_UNITS)[number];

/** A decimal numeral: "12.5", "0", "-3.000001". No exponent, no float artefacts. */
const DecimalText = z.string().regex(/^-?\d{1,30}(\.\d{1,12})?$/, { error: "a decimal number such as 12.5" });

export const ChartSeries = z.object({
  /** What the series is: "This week", "Spend". */
  name: z.string().min(1),
  /** One value per category, in the categories' order. */
  values: z.array(DecimalText),
});
export type ChartSeries = z.infer<typeof ChartSeries>;

export const Chart = z
  .object({
    kind: z.enum(CHART_KINDS),
    /** Headline of the chart; data (a team's name) may be in it, so every renderer escapes it. */
    title: z.string().min(1),
    /** Labels along the axis (days) or of the bars and slices (teams); from usage data, escaped by each renderer. */
    categories: z.array(z.string()).min(1),
    series: z.array(ChartSeries).min(1),
    unit: z.enum(CHART_UNITS),
  })
  .superRefine((chart, ctx) => {
    chart.series.forEach((s, i) => {
      if (s.values.length !== chart.categories.length)
        ctx.addIssue({ code: "custom", path: ["series", i, "values"], message: `${s.values.length} values for ${chart.categories.length} categories` });
    });
    if ((chart.kind === "pie" || chart.kind === "donut") && chart.series.length !== 1)
      ctx.addIssue({ code: "custom", path: ["series"], message: `a ${chart.kind} chart has one series` });
  });
export type Chart = z.infer<typeof Chart>;

/** Exact decimal text of a pico-USD amount, as a chart value. */
export const usdValue = (pico: bigint): string => picoToDecimalString(pico);

/** A chart value as a number, for placing it on a drawing only (never for sums or for display). */
export const chartNumber = (value: string): number => Number(value);

/** A value as people read it: "$1,234.57" for USD, "1,234" for a count. */
export function formatChartValue(value: string, unit: ChartUnit): string {
  if (unit === "usd") {
    const pico = decimalUsdToPico(value);
    return pico instanceof Error ? value : formatUsd(pico);
  }
  const [whole = "0", fraction] = value.split(".");
  const negative = whole.startsWith("-");
  const digits = (negative ? whole.slice(1) : whole).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${digits}${fraction ? `.${fraction}` : ""}`;
}

/**
 * The chart as lines of text, for readers and clients that do not see the drawing (screen readers,
 * notification text, a Teams client without charts): one line per category, each series' value.
 * Plain text: each renderer escapes it for its own markup.
 */
export function chartLines(chart: Chart): string[] {
  const many = chart.series.length > 1;
  return chart.categories.map((category, i) => {
    const values = chart.series.map((s) => (many ? `${s.name} ${formatChartValue(s.values[i]!, chart.unit)}` : formatChartValue(s.values[i]!, chart.unit)));
    return `${category}: ${values.join(", ")}`;
  });
}
