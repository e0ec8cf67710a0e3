import { type Chart, chartLines, chartNumber, formatChartValue } from "./chart.ts";

/*
 * A Chart drawn as SVG: the Telegram photo (rasterised by png.ts) and the dashboard's inline
 * charts. Accessible (role="img", <title> and <desc> holding the chart's text equivalent, a
 * <title> on every bar, point and slice); every text from the data escaped; themed by the page
 * when drawn with theme "css" (CSS custom properties with fallbacks, text in currentColor), or in
 * fixed light/dark colours where nothing can theme it (a PNG).
 */

export type ChartTheme = "css" | "light" | "dark";

export interface SvgOptions {
  width?: number;
  /** Drawn to fit its content when not given. */
  height?: number;
  theme?: ChartTheme;
  /** Prefix of the ids of <title> and <desc>; distinct per chart when a page holds several. */
  id?: string;
}

interface Palette {
  text: string;
  muted: string;
  grid: string;
  background: string | undefined;
  series: readonly string[];
}

// Tableau 10: distinguishable in both themes and for the common colour-vision deficiencies.
const SERIES = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"] as const;
const SERIES_DARK = ["#7aa6d6", "#ffa94d", "#7fcf73", "#ff7b7d", "#8fd8d2", "#ffe066", "#d29fc7", "#ffb8c0", "#c49a7f", "#d6d0cc"] as const;

const PALETTES: Record<ChartTheme, Palette> = {
  light: { text: "#1f2328", muted: "#59636e", grid: "#d1d9e0", background: "#ffffff", series: SERIES },
  dark: { text: "#e6edf3", muted: "#9198a1", grid: "#3d444d", background: "#0d1117", series: SERIES_DARK },
  // The page sets --tollgate-chart-* for its theme; without them text follows the surrounding colour.
  css: {
    text: "var(--tollgate-chart-text, currentColor)",
    muted: "var(--tollgate-chart-muted, currentColor)",
    grid: "var(--tollgate-chart-grid, #8c959f)",
    background: undefined,
    series: SERIES.map((c, i) => `var(--tollgate-chart-${i + 1}, ${c})`),
  },
};

/** Characters XML 1.0 does not allow (a NUL from a tag would make the whole drawing unreadable) become U+FFFD. */
const INVALID_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text safe as XML character data and as an attribute value. */
export function escapeXml(text: string): string {
  return text
    .replace(INVALID_XML, "\uFFFD")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

const FONT = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', Arial, sans-serif";
const TITLE_SIZE = 16;
const LABEL_SIZE = 12;
const PAD = 16;

/** An estimate of drawn width (average glyph ≈ 0.6 em): enough to keep labels apart. */
const textWidth = (text: string, size: number) => [...text].length * size * 0.6;

/** `text` cut with "…" to about `width` pixels. */
function fit(text: string, width: number, size: number): string {
  const chars = [...text];
  const max = Math.max(1, Math.floor(width / (size * 0.6)));
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join("")}…`;
}

const num = (n: number) => (Math.round(n * 10) / 10).toString();
const paint = (colour: string) => `style="fill:${colour}"`;
const stroke = (colour: string, width: number) => `style="fill:none;stroke:${colour};stroke-width:${width}"`;

function text(x: number, y: number, content: string, colour: string, opts: { size?: number; anchor?: "start" | "middle" | "end"; weight?: string } = {}): string {
  const size = opts.size ?? LABEL_SIZE;
  return `<text x="${num(x)}" y="${num(y)}" font-size="${size}"${opts.anchor && opts.anchor !== "start" ? ` text-anchor="${opts.anchor}"` : ""}${opts.weight ? ` font-weight="${opts.weight}"` : ""} ${paint(colour)}>${escapeXml(content)}</text>`;
}

/** The smallest of 1, 2, 2.5 and 5 × 10^k at or above `max`: an axis end people can read. */
export function niceCeiling(max: number): number {
  if (!(max > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= max) return step * magnitude;
  return 10 * magnitude;
}

/** A value on an axis, kept short: "$1.5K", "$0.25", "1.2M". */
function axisLabel(value: number, unit: Chart["unit"]): string {
  const prefix = unit === "usd" ? "$" : "";
  const abs = Math.abs(value);
  const [scaled, suffix] = abs >= 1e6 ? [value / 1e6, "M"] : abs >= 1e3 ? [value / 1e3, "K"] : [value, ""];
  const digits = Number.isInteger(scaled) ? scaled.toString() : scaled.toFixed(Math.abs(scaled) < 1 ? 2 : 1).replace(/\.?0+$/, "");
  return `${prefix}${digits}${suffix}`;
}

function legend(chart: Chart, palette: Palette, x: number, y: number, width: number): { svg: string; height: number } {
  if (chart.series.length < 2) return { svg: "", height: 0 };
  const parts: string[] = [];
  let cx = x;
  let cy = y;
  for (const [i, s] of chart.series.entries()) {
    const label = fit(s.name, 180, LABEL_SIZE);
    const w = 18 + textWidth(label, LABEL_SIZE) + 16;
    if (cx + w > x + width && cx > x) {
      cx = x;
      cy += 20;
    }
    parts.push(`<rect x="${num(cx)}" y="${num(cy - 10)}" width="12" height="12" rx="2" ${paint(palette.series[i % palette.series.length]!)}/>`, text(cx + 18, cy, label, palette.text));
    cx += w;
  }
  return { svg: parts.join(""), height: cy - y + 20 };
}

/** Horizontal bars, one row per category (a bar per series within it), the value at the end of each. */
function barBody(chart: Chart, palette: Palette, width: number, top: number): { svg: string; height: number } {
  const rowGap = 10;
  const barHeight = chart.series.length > 1 ? 14 : 22;
  const rowHeight = barHeight * chart.series.length + rowGap;
  const labelWidth = Math.min(width * 0.34, 200);
  const valueWidth = 90;
  const plotX = PAD + labelWidth + 8;
  const plotWidth = Math.max(40, width - plotX - valueWidth - PAD);
  const max = Math.max(0, ...chart.series.flatMap((s) => s.values.map(chartNumber)));
  const parts: string[] = [];
  chart.categories.forEach((category, row) => {
    const y0 = top + row * rowHeight;
    parts.push(text(PAD + labelWidth, y0 + (barHeight * chart.series.length) / 2 + 4, fit(category, labelWidth, LABEL_SIZE), palette.text, { anchor: "end" }));
    chart.series.forEach((s, si) => {
      const value = s.values[row]!;
      const shown = formatChartValue(value, chart.unit);
      const length = max > 0 ? (Math.max(0, chartNumber(value)) / max) * plotWidth : 0;
      const y = y0 + si * barHeight;
      const name = chart.series.length > 1 ? `${category}, ${s.name}: ${shown}` : `${category}: ${shown}`;
      parts.push(
        `<rect x="${num(plotX)}" y="${num(y)}" width="${num(Math.max(length, 1))}" height="${num(barHeight - 2)}" rx="2" ${paint(palette.series[si % palette.series.length]!)}><title>${escapeXml(name)}</title></rect>`,
        text(plotX + Math.max(length, 1) + 6, y + barHeight / 2 + 3, shown, palette.muted, { size: 11 }),
      );
    });
  });
  return { svg: parts.join(""), height: chart.categories.length * rowHeight };
}

/** Where a category chart puts things: categories along x in order, values up from zero. */
interface CategoryAxes {
  /** The grid, value labels and category labels. */
  svg: string;
  xAt(i: number): number;
  yAt(v: number): number;
  /** Distance between neighbouring categories. */
  spacing: number;
  height: number;
}

/** A value axis from zero to just above `max` in four even steps, and the categories below it, no two labels overlapping. */
function categoryAxes(chart: Chart, palette: Palette, width: number, top: number, max: number): CategoryAxes {
  const height = 220;
  const step = niceCeiling(Math.max(0, max) / 4);
  const ticks = [0, 1, 2, 3, 4].map((k) => k * step);
  const ceiling = step * 4;
  const axisWidth = Math.max(...ticks.map((t) => textWidth(axisLabel(t, chart.unit), 11))) + 8;
  const n = chart.categories.length;
  // Category labels are centred under their points: the plot is inset by half the widest one.
  const widest = Math.min(120, Math.max(...chart.categories.map((c) => textWidth(c, 11))));
  const plotX = PAD + axisWidth + widest / 2;
  const plotWidth = Math.max(40, width - plotX - PAD - widest / 2);
  const plotBottom = top + height - 24;
  const plotHeight = plotBottom - top - 6;
  const spacing = n > 1 ? plotWidth / (n - 1) : plotWidth;
  const xAt = (i: number) => plotX + (n === 1 ? plotWidth / 2 : i * spacing);
  const yAt = (v: number) => plotBottom - (Math.max(0, v) / ceiling) * plotHeight;
  const parts: string[] = [];
  for (const t of ticks) {
    const y = yAt(t);
    parts.push(`<line x1="${num(plotX - widest / 2)}" y1="${num(y)}" x2="${num(plotX + plotWidth)}" y2="${num(y)}" ${stroke(palette.grid, 1)}/>`);
    parts.push(text(plotX - widest / 2 - 6, y + 4, axisLabel(t, chart.unit), palette.muted, { size: 11, anchor: "end" }));
  }
  // Every `every`-th label, so that no two overlap.
  const every = Math.max(1, Math.ceil((widest + 10) / spacing));
  chart.categories.forEach((c, i) => {
    if (i % every === 0) parts.push(text(xAt(i), plotBottom + 16, fit(c, widest, 11), palette.muted, { size: 11, anchor: "middle" }));
  });
  return { svg: parts.join(""), xAt, yAt, spacing, height };
}

/** What a mark on a category chart says when pointed at: "2026-03-02, alpha: $12.50". */
const markName = (chart: Chart, category: number, series: number) =>
  `${chart.categories[category]}${chart.series.length > 1 ? `, ${chart.series[series]!.name}` : ""}: ${formatChartValue(chart.series[series]!.values[category]!, chart.unit)}`;

/** A line per series across the categories in order, on a value axis from zero in four even steps. */
function lineBody(chart: Chart, palette: Palette, width: number, top: number): { svg: string; height: number } {
  const axes = categoryAxes(chart, palette, width, top, Math.max(0, ...chart.series.flatMap((s) => s.values.map(chartNumber))));
  const parts = [axes.svg];
  chart.series.forEach((s, si) => {
    const colour = palette.series[si % palette.series.length]!;
    const points = s.values.map((v, i) => `${num(axes.xAt(i))},${num(axes.yAt(chartNumber(v)))}`).join(" ");
    parts.push(`<polyline points="${points}" ${stroke(colour, 2.5)} stroke-linejoin="round"/>`);
    s.values.forEach((v, i) => {
      parts.push(`<circle cx="${num(axes.xAt(i))}" cy="${num(axes.yAt(chartNumber(v)))}" r="3" ${paint(colour)}><title>${escapeXml(markName(chart, i, si))}</title></circle>`);
    });
  });
  return { svg: parts.join(""), height: axes.height };
}

/**
 * A column per category, its series stacked from zero in their order (parts of the category's
 * whole; a negative value counts as none), on a value axis up to the tallest column.
 */
function stackedBody(chart: Chart, palette: Palette, width: number, top: number): { svg: string; height: number } {
  const columns = chart.categories.map((_, i) => chart.series.map((s) => Math.max(0, chartNumber(s.values[i]!))));
  const axes = categoryAxes(chart, palette, width, top, Math.max(0, ...columns.map((p) => p.reduce((a, b) => a + b, 0))));
  const columnWidth = Math.max(2, Math.min(40, axes.spacing * 0.7));
  const parts = [axes.svg];
  columns.forEach((values, i) => {
    let below = 0;
    values.forEach((v, si) => {
      if (v <= 0) return;
      const [y0, y1] = [axes.yAt(below), axes.yAt(below + v)];
      below += v;
      parts.push(
        `<rect x="${num(axes.xAt(i) - columnWidth / 2)}" y="${num(y1)}" width="${num(columnWidth)}" height="${num(Math.max(y0 - y1, 0.5))}" ${paint(palette.series[si % palette.series.length]!)}><title>${escapeXml(markName(chart, i, si))}</title></rect>`,
      );
    });
  });
  return { svg: parts.join(""), height: axes.height };
}

/** Slices of the one series' total (negative values count as none), with a legend of value and share. */
function pieBody(chart: Chart, palette: Palette, width: number, top: number): { svg: string; height: number } {
  const values = chart.series[0]!.values;
  const numbers = values.map((v) => Math.max(0, chartNumber(v)));
  const total = numbers.reduce((a, b) => a + b, 0);
  const radius = 80;
  const cx = PAD + radius;
  const cy = top + radius + 4;
  const parts: string[] = [];
  let angle = -Math.PI / 2;
  const point = (a: number, r: number) => `${num(cx + r * Math.cos(a))},${num(cy + r * Math.sin(a))}`;
  numbers.forEach((v, i) => {
    if (total <= 0 || v <= 0) return;
    const sweep = (v / total) * 2 * Math.PI;
    const colour = palette.series[i % palette.series.length]!;
    const name = `${chart.categories[i]}: ${formatChartValue(values[i]!, chart.unit)} (${Math.round((v / total) * 100)} %)`;
    // A whole circle cannot be one arc: it is drawn as a circle.
    const shape =
      sweep >= 2 * Math.PI - 1e-9
        ? `<circle cx="${num(cx)}" cy="${num(cy)}" r="${radius}" ${paint(colour)}>`
        : `<path d="M${num(cx)},${num(cy)} L${point(angle, radius)} A${radius},${radius} 0 ${sweep > Math.PI ? 1 : 0} 1 ${point(angle + sweep, radius)} Z" ${paint(colour)}>`;
    parts.push(`${shape}<title>${escapeXml(name)}</title>${shape.startsWith("<circle") ? "</circle>" : "</path>"}`);
    angle += sweep;
  });
  if (chart.kind === "donut") parts.push(`<circle cx="${num(cx)}" cy="${num(cy)}" r="${radius * 0.55}" ${paint(palette.background ?? "var(--tollgate-chart-background, Canvas)")}/>`);
  const legendX = cx + radius + 24;
  const legendWidth = width - legendX - PAD;
  chart.categories.forEach((c, i) => {
    const y = top + 14 + i * 20;
    const share = total > 0 ? ` (${Math.round((numbers[i]! / total) * 100)} %)` : "";
    const label = `${formatChartValue(values[i]!, chart.unit)}${share}`;
    parts.push(
      `<rect x="${num(legendX)}" y="${num(y - 10)}" width="12" height="12" rx="2" ${paint(palette.series[i % palette.series.length]!)}/>`,
      text(legendX + 18, y, fit(c, legendWidth - 18 - textWidth(label, LABEL_SIZE) - 8, LABEL_SIZE), palette.text),
      text(legendX + legendWidth, y, label, palette.muted, { anchor: "end" }),
    );
  });
  return { svg: parts.join(""), height: Math.max(2 * radius + 8, chart.categories.length * 20 + 8) };
}

const BODIES: Record<Chart["kind"], (chart: Chart, palette: Palette, width: number, top: number) => { svg: string; height: number }> = {
  bar: barBody,
  line: lineBody,
  stacked: stackedBody,
  pie: pieBody,
  donut: pieBody,
};

/** The chart as a standalone SVG document (also valid inline in HTML). */
export function renderSvg(chart: Chart, options: SvgOptions = {}): string {
  const width = options.width ?? 640;
  const theme = options.theme ?? "css";
  const palette = PALETTES[theme];
  const id = options.id ?? "tollgate-chart";
  const titleY = PAD + TITLE_SIZE;
  const legendPart = legend(chart, palette, PAD, titleY + 22, width - 2 * PAD);
  const top = titleY + 18 + legendPart.height;
  const body = BODIES[chart.kind](chart, palette, width, top);
  const height = options.height ?? Math.ceil(top + body.height + PAD);
  const description = chartLines(chart).join("; ");
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="${escapeXml(id)}-title ${escapeXml(id)}-desc" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${escapeXml(FONT)}">`,
    `<title id="${escapeXml(id)}-title">${escapeXml(chart.title)}</title>`,
    `<desc id="${escapeXml(id)}-desc">${escapeXml(description)}</desc>`,
    palette.background ? `<rect width="100%" height="100%" ${paint(palette.background)}/>` : "",
    text(PAD, titleY, fit(chart.title, width - 2 * PAD, TITLE_SIZE), palette.text, { size: TITLE_SIZE, weight: "600" }),
    legendPart.svg,
    body.svg,
    `</svg>`,
  ].join("");
}
