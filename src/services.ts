import type { Alert } from "./alerts/alert.ts";
import type { ChannelStore } from "./alerts/channels.ts";
import type { MuteStore } from "./alerts/mutes.ts";
import { recentAlerts } from "./alerts/recent.ts";
import type { Members } from "./approvals/members.ts";
import type { Approvals } from "./approvals/requests.ts";
import type { Budget } from "./budgets/budget.ts";
import { type Standing, budgetStandings } from "./budgets/status.ts";
import type { BudgetStore } from "./budgets/store.ts";
import type { Database } from "./db/connection.ts";
import { type DailySpendQuery, type DaySpend, type SpendQuery, type SpendReport, querySpend, querySpendByDay } from "./ledger/spend.ts";

/**
 * What the gateway's domains offer, built once by src/app.ts and handed to whatever acts on them
 * (chat commands, integrations, the admin API): each domain's own service, never the database.
 * Every change goes through the store that audits it, and the stores keep their own checks (an
 * approval checks the decider's role whatever a command already checked).
 */
export interface Services {
  budgets: BudgetStore;
  approvals: Approvals;
  members: Members;
  channels: ChannelStore;
  mutes: MuteStore;
  /** Reads of the ledger, and of budgets against it. */
  spend: {
    report(query: SpendQuery): Promise<SpendReport>;
    /** A report per local day of a period, each the same as `report` for that day alone, in one read. */
    byDay(query: DailySpendQuery): Promise<DaySpend[]>;
    /** Where each budget stands now, in one read. */
    standings(budgets: readonly Budget[], now: Date): Promise<Standing[]>;
  };
  alerts: {
    /** The latest alerts sent, newest first. */
    recent(limit: number): Promise<Alert[]>;
  };
}

export type ServiceParts = Pick<Services, "budgets" | "approvals" | "members" | "channels" | "mutes"> & { database: Database };

export function createServices({ database, ...stores }: ServiceParts): Services {
  return {
    ...stores,
    spend: {
      report: (query) => querySpend(database, query),
      byDay: (query) => querySpendByDay(database, query),
      standings: (budgets, now) => budgetStandings(database, budgets, now),
    },
    alerts: { recent: (limit) => recentAlerts(database, limit) },
  };
}
