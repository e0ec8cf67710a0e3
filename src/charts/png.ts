import { existsSync } from "node:fs";
import { Resvg } from "@resvg/resvg-js";
import type { Chart } from "./chart.ts";
import { type ChartTheme, renderSvg } from "./svg.ts";

/*
 * A Chart as a PNG (for Telegram's sendPhoto), rasterised from our SVG by resvg. resvg draws text
 * only with a font it is given: the system's fonts are not relied on (a bare container has none),
 * so a font file is looked for in the places Debian/Ubuntu (fonts-dejavu-core), Fedora, Alpine
 * and Arch install DejaVu Sans. Without one, no PNG is made and the caller sends text alone:
 * a chart with its labels missing would mislead.
 */

/** Where the DejaVu Sans package of the common distributions puts the font. */
export const FONT_CANDIDATES = [
  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
  "/usr/share/fonts/dejavu/DejaVuSans.ttf",
  "/usr/share/fonts/TTF/DejaVuSans.ttf",
  "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
] as const;

/** The first font file that exists, or undefined. */
export function chartFont(candidates: readonly string[] = FONT_CANDIDATES): string | undefined {
  return candidates.find((path) => existsSync(path));
}

export type PngResult = { ok: true; png: Buffer } | { ok: false; reason: string };

export interface PngOptions {
  width?: number;
  theme?: Exclude<ChartTheme, "css">;
  /** The font file to draw text with; looked for in FONT_CANDIDATES when not given. */
  fontFile?: string;
}

/** The chart drawn as a PNG at twice its SVG size (sharp on phones), or why it could not be. */
export function renderPng(chart: Chart, options: PngOptions = {}): PngResult {
  const font = options.fontFile ?? chartFont();
  if (!font || !existsSync(font)) return { ok: false, reason: `no font to draw the chart's text with (install fonts-dejavu-core; looked in ${FONT_CANDIDATES.join(", ")})` };
  const width = options.width ?? 640;
  return { ok: true, png: rasterise(renderSvg(chart, { width, theme: options.theme ?? "light" }), width * 2, [font]).asPng() };
}

/** An SVG drawn `width` pixels wide with only the given font files (none: text is left out). */
export function rasterise(svg: string, width: number, fontFiles: string[]) {
  const resvg = new Resvg(svg, {
    fitTo: { mode: "width", value: width },
    font: { loadSystemFonts: false, fontFiles, defaultFontFamily: "DejaVu Sans", sansSerifFamily: "DejaVu Sans" },
    logLevel: "off",
  });
  return resvg.render();
}
