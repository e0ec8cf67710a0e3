/**
 * The period grammar of DESIGN.md §5, resolved to instants in a time zone. Pure: "now" and the
 * zone are arguments, and only Intl is used for zone rules, so results are the same in every
 * process whatever its own TZ.
 */

/** A wall-calendar day, without a zone. */
export interface LocalDate {
  year: number;
  /** 1–12 */
  month: number;
  day: number;
}

/**
 * The local calendar span a period was built from. Weeks are 7 days, quarters 3 months, years
 * 12 months; a `month` span always starts on the 1st.
 */
export interface Span {
  from: LocalDate;
  unit: "day" | "month";
  count: number;
}

export interface Period {
  /** Inclusive. */
  start: Date;
  /**
   * Exclusive, and the calendar end even while the period is still running (`this-month` ends at
   * next month's first midnight); spend queries clip to now themselves.
   */
  end: Date;
  label: string;
  timeZone: string;
  span: Span;
}

export interface PeriodError {
  kind: "period";
  message: string;
  expected: string;
  suggestion?: string;
}

export type PeriodResult = { ok: true; period: Period } | { ok: false; error: PeriodError };

export interface ResolveOptions {
  now: Date;
  /** IANA name, e.g. "Europe/Berlin". */
  timeZone: string;
}

const firstOfMonth = (d: LocalDate): LocalDate => ({ year: d.year, month: d.month, day: 1 });
const days = (from: LocalDate, count: number): Span => ({ from, unit: "day", count });
const months = (from: LocalDate, count: number): Span => ({ from: firstOfMonth(from), unit: "month", count });

const NAMED = {
  today: (t: LocalDate) => days(t, 1),
  yesterday: (t: LocalDate) => days(addDays(t, -1), 1),
  "this-week": (t: LocalDate) => days(isoMonday(t), 7),
  "last-week": (t: LocalDate) => days(addDays(isoMonday(t), -7), 7),
  "this-month": (t: LocalDate) => months(t, 1),
  "last-month": (t: LocalDate) => months(addMonths(firstOfMonth(t), -1), 1),
  "this-quarter": (t: LocalDate) => months(quarterStart(t), 3),
  "last-quarter": (t: LocalDate) => months(addMonths(quarterStart(t), -3), 3),
  "this-year": (t: LocalDate) => months({ year: t.year, month: 1, day: 1 }, 12),
  // Rolling windows count today as their last day, so they move at local midnight, not every hour.
  "last-7d": (t: LocalDate) => days(addDays(t, -6), 7),
  "last-30d": (t: LocalDate) => days(addDays(t, -29), 30),
} satisfies Record<string, (today: LocalDate) => Span>;

export type PeriodName = keyof typeof NAMED;
export const PERIOD_NAMES = Object.keys(NAMED) as PeriodName[];

const ALIASES: Record<string, PeriodName> = {
  week: "this-week",
  wtd: "this-week",
  month: "this-month",
  mtd: "this-month",
  quarter: "this-quarter",
  qtd: "this-quarter",
  year: "this-year",
  ytd: "this-year",
  "7d": "last-7d",
  "last-7-days": "last-7d",
  "30d": "last-30d",
  "last-30-days": "last-30d",
};

/** Spelling-insensitive lookup: "This_Week", "this week" and "thisweek" all find this-week. */
const squash = (s: string) => s.replace(/-/g, "");
const LOOKUP = new Map<string, PeriodName>([
  ...PERIOD_NAMES.map((n) => [squash(n), n] as const),
  ...Object.entries(ALIASES).map(([alias, n]) => [squash(alias), n] as const),
]);

export const EXPECTED_PERIOD = `one of ${PERIOD_NAMES.join(", ")}, YYYY-MM or YYYY-MM-DD..YYYY-MM-DD`;

export function resolvePeriod(text: string, opts: ResolveOptions): PeriodResult {
  if (!isTimeZone(opts.timeZone)) return timeZoneError(opts.timeZone);
  const parsed = parsePeriod(text, localDate(opts.now, opts.timeZone));
  if (!parsed.ok) return parsed;
  return { ok: true, period: toPeriod(parsed.span, parsed.label, opts.timeZone) };
}

/**
 * The equal period just before: the previous day, week, month, quarter or year for calendar
 * periods, and as many local days immediately before for rolling and custom ranges.
 */
export function previousPeriod(period: Period): Period {
  const { from, unit, count } = period.span;
  const span: Span = { from: unit === "day" ? addDays(from, -count) : addMonths(from, -count), unit, count };
  return toPeriod(span, spanLabel(span), period.timeZone);
}

type Parsed = { ok: true; span: Span; label: string } | { ok: false; error: PeriodError };

function parsePeriod(text: string, today: LocalDate): Parsed {
  const input = text.trim().toLowerCase().replace(/[\s_]+/g, "-");
  const name = LOOKUP.get(squash(input));
  if (name) return { ok: true, span: NAMED[name](today), label: name };

  const month = /^(\d{4})-(\d{1,2})$/.exec(input);
  if (month) {
    const m = Number(month[2]);
    if (m < 1 || m > 12) return fail(`"${text.trim()}" is not a month`, "YYYY-MM with a month from 01 to 12");
    const span = months({ year: Number(month[1]), month: m, day: 1 }, 1);
    return { ok: true, span, label: spanLabel(span) };
  }

  const range = /^([\d-]+?)(?:-*\.\.-*([\d-]+))?$/.exec(input);
  if (range && /\d{4}-\d{1,2}-\d{1,2}/.test(input)) return parseRange(range[1] ?? "", range[2] ?? range[1] ?? "");

  const suggestion = nearest(squash(input), LOOKUP);
  return fail(
    `unknown period "${text.trim()}"${suggestion ? `; did you mean \`${suggestion}\`?` : ""}`,
    EXPECTED_PERIOD,
    suggestion,
  );
}

/** `YYYY-MM-DD..YYYY-MM-DD` with an inclusive last day; a single date is a one-day range. */
function parseRange(first: string, last: string): Parsed {
  const expected = "YYYY-MM-DD..YYYY-MM-DD (both days included)";
  const from = parseDate(first);
  const to = parseDate(last);
  if (!from) return fail(`"${first}" is not a date`, expected);
  if (!to) return fail(`"${last}" is not a date`, expected);
  const count = dayNumber(to) - dayNumber(from) + 1;
  if (count < 1) {
    const suggestion = `${formatDate(to)}..${formatDate(from)}`;
    return fail(`the range ends before it starts; did you mean \`${suggestion}\`?`, expected, suggestion);
  }
  const span = days(from, count);
  return { ok: true, span, label: spanLabel(span) };
}

function parseDate(text: string): LocalDate | undefined {
  const m = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(text);
  if (!m) return undefined;
  const d = { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) };
  // Date.UTC rolls 2026-02-30 over to March; a date that does not come back unchanged does not exist.
  const back = fromDayNumber(dayNumber(d));
  return back.year === d.year && back.month === d.month && back.day === d.day ? d : undefined;
}

const fail = (message: string, expected: string, suggestion?: string): { ok: false; error: PeriodError } => ({
  ok: false,
  error: { kind: "period", message, expected, ...(suggestion ? { suggestion } : {}) },
});

function timeZoneError(timeZone: string): PeriodResult {
  const zones = new Map(Intl.supportedValuesOf("timeZone").map((z) => [z.toLowerCase(), z]));
  const suggestion = nearest(timeZone.toLowerCase(), zones);
  return fail(
    `unknown time zone "${timeZone}"${suggestion ? `; did you mean \`${suggestion}\`?` : ""}`,
    "an IANA time zone such as UTC or Europe/Berlin",
    suggestion,
  );
}

/** The candidate closest to `input`, if it is close enough to be what was meant. */
export function nearest<T>(input: string, candidates: Map<string, T>): T | undefined {
  let best: { value: T; distance: number } | undefined;
  for (const [key, value] of candidates) {
    const distance = editDistance(input, key);
    if (distance <= Math.max(1, Math.floor(key.length / 3)) && (!best || distance < best.distance))
      best = { value, distance };
  }
  return best?.value;
}

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions, the commonest typo. */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number) => d[i]?.[j] ?? Infinity;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      d[i]![j] = v;
    }
  }
  return at(a.length, b.length);
}

function toPeriod(span: Span, label: string, timeZone: string): Period {
  const last = span.unit === "day" ? addDays(span.from, span.count) : addMonths(span.from, span.count);
  return { start: startOfLocalDay(span.from, timeZone), end: startOfLocalDay(last, timeZone), label, timeZone, span };
}

/** A name for a span that says which days it covers without knowing how it was asked for. */
function spanLabel({ from, unit, count }: Span): string {
  const month = `${from.year}-${pad(from.month)}`;
  if (unit === "month" && count === 1) return month;
  if (unit === "month" && count === 3 && from.month % 3 === 1) return `${from.year}-Q${(from.month + 2) / 3}`;
  if (unit === "month" && count === 12 && from.month === 1) return `${from.year}`;
  const last = unit === "day" ? addDays(from, count - 1) : addDays(addMonths(from, count), -1);
  return count === 1 && unit === "day" ? formatDate(from) : `${formatDate(from)}..${formatDate(last)}`;
}

const pad = (n: number) => String(n).padStart(2, "0");
const formatDate = (d: LocalDate) => `${d.year}-${pad(d.month)}-${pad(d.day)}`;

// ---- calendar arithmetic: on wall-calendar days, through UTC so no zone rule can interfere ----

const DAY_MS = 86_400_000;
const dayNumber = (d: LocalDate) => Date.UTC(d.year, d.month - 1, d.day) / DAY_MS;

function fromDayNumber(n: number): LocalDate {
  const t = new Date(n * DAY_MS);
  return { year: t.getUTCFullYear(), month: t.getUTCMonth() + 1, day: t.getUTCDate() };
}

/** The calendar day `n` days after `d` (before, for negative `n`). */
export const addDays = (d: LocalDate, n: number): LocalDate => fromDayNumber(dayNumber(d) + n);
const addMonths = (d: LocalDate, n: number) => fromDayNumber(Date.UTC(d.year, d.month - 1 + n, d.day) / DAY_MS);
/** ISO 8601 weeks start on Monday; getUTCDay counts from Sunday = 0. */
const isoMonday = (d: LocalDate) => addDays(d, -((new Date(dayNumber(d) * DAY_MS).getUTCDay() + 6) % 7));
const quarterStart = (d: LocalDate): LocalDate => ({ year: d.year, month: d.month - ((d.month - 1) % 3), day: 1 });

// ---- time zones, with Intl only ----

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // h23: some engines print midnight as "24" under hour12: false.
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Whether Intl knows the IANA zone. */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The local wall-clock reading at `ms`, expressed as if it were a UTC instant (whole seconds). */
function wallClock(ms: number, timeZone: string): number {
  const part: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(ms)) if (p.type !== "literal") part[p.type] = Number(p.value);
  return Date.UTC(part.year ?? 0, (part.month ?? 1) - 1, part.day ?? 1, part.hour ?? 0, part.minute ?? 0, part.second ?? 0);
}

const offsetAt = (ms: number, timeZone: string) => wallClock(ms, timeZone) - Math.floor(ms / 1000) * 1000;

/** The calendar day it is in `timeZone` at `instant`. */
export function localDate(instant: Date, timeZone: string): LocalDate {
  return fromDayNumber(Math.floor(wallClock(instant.getTime(), timeZone) / DAY_MS));
}

/**
 * The instant a local day begins. Offsets can change within a day (DST), so the two offsets in
 * force a day either side are both tried: when both fit, midnight happened twice and the day
 * begins at the first; when neither fits, midnight was skipped (America/Santiago springs forward
 * at 00:00) and the day begins at the transition itself.
 */
export function startOfLocalDay(date: LocalDate, timeZone: string): Date {
  const wall = dayNumber(date) * DAY_MS;
  const before = wall - offsetAt(wall - DAY_MS, timeZone);
  const after = wall - offsetAt(wall + DAY_MS, timeZone);
  const fits = [before, after].filter((t) => wallClock(t, timeZone) === wall);
  if (fits.length > 0) return new Date(Math.min(...fits));
  // In a gap the clock jumps from before midnight to after it somewhere between the two guesses.
  let lo = Math.min(before, after);
  let hi = Math.max(before, after);
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (wallClock(mid, timeZone) >= wall) hi = mid;
    else lo = mid;
  }
  return new Date(hi);
}
