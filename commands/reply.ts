import { z } from "zod";
import { AlertAction } from "../src/alerts/alert.ts";
import { Chart } from "../src/charts/chart.ts";

/**
 * What a command answers, for every platform (DESIGN.md §1, "one shape out"). Values that came
 * from usage data (team, feature and user names) are kept as they are: each renderer escapes them
 * for its own markup.
 */
export const Reply = z.object({
  /** Short headline: "AI spend this week". */
  title: z.string(),
  /** One or two sentences a reader takes in first. */
  summary: z.string().optional(),
  /** Label → value pairs: "Total" → "$1,234.56". */
  facts: z.array(z.object({ label: z.string(), value: z.string() })).default([]),
  /** Rows with a share of the whole drawn as a bar (spend by team). */
  bars: z
    .object({
      heading: z.string(),
      rows: z.array(z.object({ label: z.string(), value: z.string(), /** 0–1000 per mille of the largest row. */ share: z.number().int().min(0).max(1000) })),
    })
    .optional(),
  /**
   * Charts of what the answer says (a breakdown, a trend), drawn natively where the platform can
   * (Slack allows two a message); always alongside the bars or text that say the same.
   */
  charts: z.array(Chart).max(2).default([]),
  /** A plain table (budget list, recent alerts). */
  table: z.object({ columns: z.array(z.string()), rows: z.array(z.array(z.string())) }).optional(),
  notes: z.array(z.string()).default([]),
  actions: z.array(AlertAction).default([]),
  /** Whether everyone in the conversation sees it (`share`), or only the asker. */
  visibility: z.enum(["private", "shared"]).default("private"),
  /** An answer that refuses or corrects: renderers may style it differently. */
  error: z.boolean().default(false),
});
export type Reply = z.infer<typeof Reply>;
export type ReplyInput = z.input<typeof Reply>;

export const reply = (input: ReplyInput): Reply => Reply.parse(input);

/** An answer that refuses: what was not done, and why. */
export const refused = (title: string, summary: string): Reply => reply({ title, summary, error: true });

/** `2026-10-01 14:32 UTC`: a moment to the minute, as answers write it. */
export const utcMinute = (at: Date) => `${at.toISOString().slice(0, 16).replace("T", " ")} UTC`;
