import { sql } from "drizzle-orm";
import type { Database } from "../db/connection.ts";
import { picoToDecimalString } from "../pricing/money.ts";
import type { Period } from "./period.ts";
import { NONE_KEY, SUM_COLUMNS, coverRange, keyColumn, pieceFrom } from "./spend.ts";

/** One line of the finance report: spend of one model in one team's project. */
export interface FinanceRow {
  team: string;
  project: string;
  model: string;
  requests: number;
  unpriced_requests: number;
  input_tokens: string;
  cached_input_tokens: string;
  cache_write_tokens: string;
  output_tokens: string;
  reasoning_tokens: string;
  /** Decimal USD, exact. */
  cost_usd: string;
}

/** Spend of a (finished or running) period by team, project and model, read from rollups. */
export async function financeReport(database: Database, period: Period, now = new Date()): Promise<FinanceRow[]> {
  const range = { start: period.start.getTime(), end: Math.min(period.end.getTime(), Math.max(now.getTime(), period.start.getTime())) };
  const pieces = coverRange(range, false).map(
    (piece) =>
      sql`select ${keyColumn(piece, "team")}::text as team, ${keyColumn(piece, "project")}::text as project,
        ${keyColumn(piece, "model")}::text as model, ${SUM_COLUMNS} ${pieceFrom(piece, {})}`,
  );
  if (pieces.length === 0) return [];
  const rows = await database.rows<Record<string, string>>(sql`
    select team, project, model, sum(requests)::text as requests, sum(unpriced)::text as unpriced,
      sum(input_tokens)::text as input_tokens, sum(cached_input_tokens)::text as cached_input_tokens,
      sum(cache_write_tokens)::text as cache_write_tokens, sum(output_tokens)::text as output_tokens,
      sum(reasoning_tokens)::text as reasoning_tokens, sum(cost)::text as cost
    from (${sql.join(pieces, sql` union all `)}) as pieces
    group by team, project, model
    order by team, project, sum(cost) desc, model`);
  const name = (v: string | undefined) => (v ? v : NONE_KEY);
  return rows.map((r) => ({
    team: name(r.team),
    project: name(r.project),
    model: name(r.model),
    requests: Number(r.requests),
    unpriced_requests: Number(r.unpriced),
    input_tokens: r.input_tokens!,
    cached_input_tokens: r.cached_input_tokens!,
    cache_write_tokens: r.cache_write_tokens!,
    output_tokens: r.output_tokens!,
    reasoning_tokens: r.reasoning_tokens!,
    cost_usd: picoToDecimalString(BigInt(r.cost!)),
  }));
}

const COLUMNS: (keyof FinanceRow)[] = [
  "team",
  "project",
  "model",
  "requests",
  "unpriced_requests",
  "input_tokens",
  "cached_input_tokens",
  "cache_write_tokens",
  "output_tokens",
  "reasoning_tokens",
  "cost_usd",
];

/**
 * RFC 4180 quoting, and a leading apostrophe on text a spreadsheet would otherwise run as a
 * formula: attribution comes from senders, and a finance report gets opened in Excel.
 */
export function csvCell(value: string | number): string {
  let text = String(value);
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function reportCsv(rows: FinanceRow[]): string {
  return [COLUMNS.join(","), ...rows.map((r) => COLUMNS.map((c) => csvCell(r[c])).join(","))].join("\r\n") + "\r\n";
}
