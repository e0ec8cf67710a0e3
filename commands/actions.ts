import type { AlertAction } from "../src/alerts/alert.ts";
import type { BudgetPeriod } from "../src/budgets/budget.ts";
import { contributorDimension } from "../src/budgets/contributors.ts";
import { resolvePeriod } from "../src/ledger/period.ts";
import type { Services } from "../src/services.ts";
import type { z } from "zod";
import { alerts } from "./builtin/alerts.ts";
import { budget } from "./builtin/budget.ts";
import { spend } from "./builtin/spend.ts";
import type { Invocation } from "./command.ts";

type Action = z.infer<typeof AlertAction>;

/** How long an alert's Mute button silences its budget in the conversation: the rest of a working day and the night. */
export const BUTTON_MUTE = { ms: 24 * 3_600_000, text: "24h" } as const;

const CURRENT: Record<BudgetPeriod, string> = { day: "today", week: "this-week", month: "this-month", quarter: "this-quarter", year: "this-year" };

/**
 * The command a button of a Reply or an Alert stands for, so a press goes through the same role
 * checks and handlers as the typed command. Undefined for `request_raise`, which needs the amount
 * and reason a form asks for, and for a target that names nothing.
 *
 * A breakdown's target is a budget (from an alert or `budget show`): its spend this period by the
 * dimension that best splits its scope; or a period (from `spend`): that period by team.
 */
export async function actionCommand(action: Pick<Action, "action" | "target">, services: Pick<Services, "budgets">, now: Date): Promise<Invocation | undefined> {
  switch (action.action) {
    case "approve":
      return budget.invoke({ verb: "budget.approve", id: action.target });
    case "reject":
      return budget.invoke({ verb: "budget.reject", id: action.target, reason: "" });
    case "mute":
      return alerts.invoke({ verb: "alerts.mute", name: action.target, durationMs: BUTTON_MUTE.ms, duration: BUTTON_MUTE.text });
    case "breakdown": {
      const found = await services.budgets.find(action.target);
      if (found) return spend.invoke({ verb: "spend", period: CURRENT[found.period], by: contributorDimension(found.scope) ?? "team", filters: found.scope, share: false });
      if (!resolvePeriod(action.target, { now, timeZone: "UTC" }).ok) return undefined;
      return spend.invoke({ verb: "spend", period: action.target, by: "team", filters: {}, share: false });
    }
    case "request_raise":
      return undefined;
  }
}
