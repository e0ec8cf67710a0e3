/*
 * Fitting content into a platform's limits (3,000 characters a section on one, 4,096 a
 * message, ...) without silently dropping anything: what does not fit is counted, "and N more".
 * Lengths are counted in UTF-16 code units, as the platforms' limits are.
 */

/** `text` cut to at most `max` characters, ending with "…" when cut. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 1) return "…".slice(0, max);
  // Never split a surrogate pair: half an emoji renders as garbage.
  let end = max - 1;
  if (/[\uD800-\uDBFF]/.test(text[end - 1] ?? "")) end--;
  return `${text.slice(0, end)}…`;
}

export const andMore = (n: number) => `…and ${n.toLocaleString("en-US")} more`;

/**
 * The first items that fit in `max` characters once rendered and joined by `separator`, with
 * "…and N more" after them when some are left out; the whole result is never longer than `max`.
 * A single item longer than `max` is clipped.
 */
export function fitLines(lines: readonly string[], max: number, separator = "\n"): string {
  const all = lines.join(separator);
  if (all.length <= max) return all;
  let kept = 0;
  let length = 0;
  for (const line of lines) {
    const next = length + (kept > 0 ? separator.length : 0) + line.length;
    const suffix = separator.length + andMore(lines.length - kept - 1).length;
    if (next + (kept + 1 < lines.length ? suffix : 0) > max) break;
    length = next;
    kept++;
  }
  if (kept === 0) return clip(lines[0] ?? "", max);
  return [...lines.slice(0, kept), andMore(lines.length - kept)].join(separator);
}

/** Splits items into those shown and how many are not, keeping `max` in all with room for one "more" entry. */
export function fitCount<T>(items: readonly T[], max: number): { shown: T[]; more: number } {
  if (items.length <= max) return { shown: [...items], more: 0 };
  const shown = items.slice(0, Math.max(0, max - 1));
  return { shown, more: items.length - shown.length };
}
