import type { Reply } from "./reply.ts";

const BAR_WIDTH = 24;

/** A bar of `share` per mille, `width` characters at most, drawn in eighths; shared by the renderers that draw text bars. */
export function bar(share: number, width = BAR_WIDTH): string {
  const eighths = Math.round((share * width * 8) / 1000);
  return "█".repeat(Math.floor(eighths / 8)) + (["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"][eighths % 8] ?? "");
}

/** Rows of cells as lines with columns padded to a common width (for monospace text), the last column unpadded. */
export function columns(rows: string[][]): string[] {
  const widths = rows.reduce<number[]>((w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, [...cell].length)), []);
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell + " ".repeat((widths[i] ?? 0) - [...cell].length))).join("  ").trimEnd());
}

/**
 * Plain text for the terminal (the CLI, through POST /api/commands): the content every chat
 * renderer shows, without its buttons, which a terminal cannot press.
 */
export function renderText(r: Reply): string {
  const out: string[] = [r.title];
  if (r.summary) out.push(r.summary);
  if (r.facts.length > 0) out.push("", ...columns(r.facts.map((f) => [`${f.label}:`, f.value])));
  if (r.bars && r.bars.rows.length > 0) out.push("", r.bars.heading, ...columns(r.bars.rows.map((row) => [row.label, row.value, bar(row.share)])));
  if (r.table) out.push("", ...columns([r.table.columns, ...r.table.rows]));
  if (r.notes.length > 0) out.push("", ...r.notes);
  return out.join("\n");
}
