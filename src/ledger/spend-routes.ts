import { type Request, type Response, Router } from "express";
import { z } from "zod";
import type { Config } from "../config.ts";
import type { Database } from "../db/connection.ts";
import { sendProblem } from "../http/problem.ts";
import { parseQuery } from "../http/request.ts";
import { DIMENSIONS } from "./event.ts";
import { type Period, resolvePeriod } from "./period.ts";
import { financeReport, reportCsv } from "./report.ts";
import { type SpendQuery as SpendRequest, type SpendReport, toJson } from "./spend.ts";

const SpendQuery = z.object({
  period: z.string().default("this-month"),
  by: z.enum(DIMENSIONS).optional(),
  tz: z.string().optional(),
  top: z.coerce.number().int().min(1).max(1000).default(10),
});

/** `team=search&model=gpt-4o`: the dimension filters of a spend query. */
const Filters = z.partialRecord(z.enum(DIMENSIONS), z.string().min(1).max(200));

const ReportQuery = z.object({
  period: z.string().default("last-month"),
  tz: z.string().optional(),
  format: z.enum(["csv", "json"]).default("csv"),
});

/** The finance report under a name that says CSV, for spreadsheets and scripts that fetch it by link. */
const CsvReportQuery = ReportQuery.extend({ format: z.literal("csv", { error: "finance.csv is always CSV; /api/reports/finance?format=json answers JSON" }).default("csv") });

/** Resolves `period` and `tz` of a query, or answers 400 naming what was expected. */
function periodOf(req: Request, res: Response, config: Config, text: string, tz: string | undefined): Period | undefined {
  const timeZone = tz ?? config.TOLLGATE_TIMEZONE;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
  } catch {
    sendProblem(res, "invalid", "tz must be an IANA time zone such as Europe/Berlin", { errors: [{ path: "tz", message: "unknown time zone" }] });
    return undefined;
  }
  const resolved = resolvePeriod(text, { now: new Date(), timeZone });
  if (resolved.ok) return resolved.period;
  sendProblem(res, "invalid", resolved.error.message, { errors: [{ path: "period", message: resolved.error.message }] });
  return undefined;
}

/** `/api/spend` (through the spend service chat commands use too) and the finance report. */
export function spendRouter(spend: { report(query: SpendRequest): Promise<SpendReport> }, database: Database, config: Config): Router {
  const router = Router();
  router.get("/spend", async (req, res) => {
    const q = parseQuery(SpendQuery, req, res);
    if (!q) return;
    const period = periodOf(req, res, config, q.period, q.tz);
    if (!period) return;
    const filters = parseQuery(Filters, req, res, (query) => Object.fromEntries(DIMENSIONS.flatMap((d) => (d in query ? [[d, query[d]]] : []))));
    if (!filters) return;
    const report = await spend.report({ period, by: q.by, filters, top: q.top });
    res.json(toJson(report));
  });
  const finance = (schema: typeof ReportQuery | typeof CsvReportQuery) => async (req: Request, res: Response) => {
    const q = parseQuery(schema, req, res);
    if (!q) return;
    const period = periodOf(req, res, config, q.period, q.tz);
    if (!period) return;
    const rows = await financeReport(database, period);
    if (q.format === "json") return res.json({ period, rows });
    res.type("text/csv").attachment(`tollgate-${period.label}.csv`).send(reportCsv(rows));
  };
  router.get("/reports/finance", finance(ReportQuery));
  router.get("/reports/finance.csv", finance(CsvReportQuery));
  return router;
}
