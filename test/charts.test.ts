import assert from "node:assert/strict";
import { test } from "node:test";
import { Resvg } from "@resvg/resvg-js";
import { Chart, chartLines, formatChartValue, usdValue } from "../src/charts/chart.ts";
import { chartFont, rasterise, renderPng } from "../src/charts/png.ts";
import { escapeXml, niceCeiling, renderSvg } from "../src/charts/svg.ts";

const breakdown = Chart.parse({
  kind: "bar",
  title: "Spend by team this week",
  categories: ["search", "ranking", "<script>alert(1)</script>", "R&D \"q\"", "nul\u0000byte"],
  series: [{ name: "Spend", values: [usdValue(12_345_678_000_000n), "4.5", "0.000000000001", "0", "1"] }],
  unit: "usd",
});

const trend = Chart.parse({
  kind: "line",
  title: "Daily spend: this week against last",
  categories: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
  series: [
    { name: "This week", values: ["1", "2", "3.5", "0", "0", "0", "0"] },
    { name: "Last week", values: ["2", "2", "2", "2", "1", "0.5", "0"] },
  ],
  unit: "usd",
});

const stackedDays = Chart.parse({
  kind: "stacked",
  title: "Daily spend by team",
  categories: ["2026-12-01", "2026-12-02", "2026-12-03"],
  series: [
    { name: "search", values: ["3", "1", "0"] },
    { name: "<b>ranking</b>", values: ["1", "0", "2"] },
    { name: "other", values: ["0", "1", "0"] },
  ],
  unit: "usd",
});

/** resvg parses strictly: a drawing that is not well-formed XML throws. */
const parses = (svg: string) => new Resvg(svg, { font: { loadSystemFonts: false } }).width > 0;

test("a Chart keeps values exact and refuses values that are not decimals or do not match the categories", () => {
  assert.equal(usdValue(1n), "0.000000000001");
  assert.equal(formatChartValue(usdValue(12_345_678_000_000n), "usd"), "$12.35");
  assert.equal(formatChartValue("1234567", "count"), "1,234,567");
  for (const bad of ["1e3", "0.1.2", "NaN", "", "1,000", "0.0000000000001"])
    assert.equal(Chart.safeParse({ ...breakdown, series: [{ name: "x", values: [bad, "1", "1", "1", "1"] }] }).success, false, bad);
  const short = Chart.safeParse({ ...breakdown, series: [{ name: "x", values: ["1"] }] });
  assert.equal(short.success, false);
  assert.match(JSON.stringify(short.error?.issues), /1 values for 5 categories/);
  assert.equal(Chart.safeParse({ ...trend, kind: "pie" }).success, false, "a pie has one series");
});

test("chartLines is the text equivalent: every category with every series' value", () => {
  assert.deepEqual(chartLines(trend).slice(0, 2), ["Mon: This week $1.00, Last week $2.00", "Tue: This week $2.00, Last week $2.00"]);
  assert.equal(chartLines(breakdown)[0], "search: $12.35");
});

test("the SVG is well-formed, accessible, and escapes every text from the data", () => {
  for (const chart of [breakdown, trend, stackedDays, { ...breakdown, kind: "pie" as const }, { ...breakdown, kind: "donut" as const }]) {
    for (const theme of ["css", "light", "dark"] as const) {
      const svg = renderSvg(chart, { theme, id: "c1" });
      assert.ok(parses(svg), `${chart.kind} ${theme} parses`);
      assert.match(svg, /^<svg [^>]*role="img" aria-labelledby="c1-title c1-desc"/);
      assert.match(svg, /<title id="c1-title">[^<]+<\/title><desc id="c1-desc">[^<]+<\/desc>/);
      assert.doesNotMatch(svg, /<script/);
      assert.doesNotMatch(svg, /\u0000/);
    }
  }
  const svg = renderSvg(breakdown, { theme: "css" });
  assert.match(svg, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  assert.match(svg, /R&amp;D &quot;q&quot;/);
  assert.match(svg, /nul\uFFFDbyte/);
  // Each bar names its category and exact value for screen readers and tooltips.
  assert.match(svg, /<rect [^>]*><title>search: \$12\.35<\/title><\/rect>/);
  // Themable by the page: CSS custom properties with fallbacks, text following currentColor.
  assert.match(svg, /var\(--tollgate-chart-1, #4e79a7\)/);
  assert.match(svg, /var\(--tollgate-chart-text, currentColor\)/);
  assert.doesNotMatch(renderSvg(breakdown, { theme: "light" }), /var\(/, "a PNG's colours are fixed");
  assert.equal(escapeXml(`<a href='x'>&`), "&lt;a href=&#39;x&#39;&gt;&amp;");
});

test("a stacked chart: one column per category, its parts on top of one another, none drawn for nothing", () => {
  const svg = renderSvg(stackedDays, { theme: "light" });
  const rects = [...svg.matchAll(/<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" style="fill:([^"]+)"><title>([^<]*)<\/title><\/rect>/g)].map((m) => ({
    x: Number(m[1]),
    top: Number(m[2]),
    bottom: Number(m[2]) + Number(m[4]),
    height: Number(m[4]),
    title: m[6],
  }));
  // Four non-zero parts over three days; the zero ones are not drawn.
  assert.deepEqual(
    rects.map((r) => r.title),
    ["2026-12-01, search: $3.00", "2026-12-01, &lt;b&gt;ranking&lt;/b&gt;: $1.00", "2026-12-02, search: $1.00", "2026-12-02, other: $1.00", "2026-12-03, &lt;b&gt;ranking&lt;/b&gt;: $2.00"],
  );
  const [a, b, c, d, e] = rects as [typeof rects[0], typeof rects[0], typeof rects[0], typeof rects[0], typeof rects[0]];
  // A day's parts share a column and sit on one another, each as tall as its value.
  assert.equal(a.x, b.x);
  assert.ok(Math.abs(b.bottom - a.top) < 0.2, "the second part starts where the first ends");
  assert.ok(Math.abs(a.height / b.height - 3) < 0.05, "$3 is three times as tall as $1");
  assert.ok(Math.abs(c.height - d.height) < 0.1 && Math.abs(d.bottom - c.top) < 0.2);
  assert.ok(Math.abs(a.bottom - e.bottom) < 0.1, "every column stands on the axis");
  assert.ok(a.x < c.x && c.x < e.x, "days in order");
  assert.match(svg, /<desc id="tollgate-chart-desc">2026-12-01: search \$3\.00, &lt;b&gt;ranking&lt;\/b&gt; \$1\.00, other \$0\.00;/);
});

test("the title escapes too, and a line chart with one point still draws", () => {
  const one = Chart.parse({ kind: "line", title: "<b>&</b>", categories: ["2026-12-05"], series: [{ name: "s", values: ["3"] }], unit: "count" });
  const svg = renderSvg(one);
  assert.ok(parses(svg));
  assert.match(svg, /<title id="tollgate-chart-title">&lt;b&gt;&amp;&lt;\/b&gt;<\/title>/);
  assert.equal(niceCeiling(0), 1);
  assert.equal(niceCeiling(3.5), 5);
  assert.equal(niceCeiling(0.018), 0.02);
  assert.equal(niceCeiling(1200), 2000);
});

/** Whether any pixel in the box is darker than near-white: text was drawn there. */
function inked(image: { pixels: Buffer; width: number }, box: { x0: number; y0: number; x1: number; y1: number }): boolean {
  // `pixels` is a getter that copies the whole image: read it once.
  const { pixels, width } = image;
  for (let y = box.y0; y < box.y1; y++)
    for (let x = box.x0; x < box.x1; x++) {
      const i = (y * width + x) * 4;
      if (pixels[i]! < 160) return true;
    }
  return false;
}

test("the PNG is drawn with a font it is given, and refuses to draw without one", () => {
  const font = chartFont();
  assert.ok(font, "a DejaVu Sans font file (fonts-dejavu-core; .ci/run installs it)");
  const drawn = renderPng(trend, { fontFile: font });
  assert.ok(drawn.ok);
  assert.deepEqual([...drawn.png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  // The title sits at x 16–400, y 16–36 of the 640-wide drawing: 32–800, 32–72 at twice the size.
  const title = { x0: 32, y0: 32, x1: 800, y1: 72 };
  const svg = renderSvg(trend, { theme: "light" });
  assert.ok(inked(rasterise(svg, 1280, [font]), title), "the title's glyphs are drawn");
  assert.equal(inked(rasterise(svg, 1280, []), title), false, "without a font resvg leaves text out, which is why one is required");
  const missing = renderPng(trend, { fontFile: "/nonexistent/font.ttf" });
  assert.equal(missing.ok, false);
  assert.match(missing.ok ? "" : missing.reason, /no font/);
});
