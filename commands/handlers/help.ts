import { TOPICS, type Topic } from "../command.ts";
import { USAGE } from "../parse.ts";
import { type Reply, reply } from "../reply.ts";

const EXAMPLES: Record<Topic, string[]> = {
  spend: ["spend this-week", "spend last-month by model team:search", "spend 7d by feature share"],
  budget: ["budget list", "budget set team:search $500 monthly hard", "budget raise team-search-monthly 800 launch week"],
  alerts: ["alerts recent", "alerts mute team-search-monthly 24h"],
  subscribe: ["subscribe team:search alerts", "subscribe approvals", "subscribe weekly"],
  unsubscribe: ["unsubscribe"],
  "telegram-link": ["telegram-link --scope team:search", "telegram-link --scope team:search --kinds alerts,daily"],
  help: ["help spend"],
};

export function help(topic: Topic | undefined): Reply {
  if (topic) return reply({ title: `How to use ${topic}`, summary: USAGE[topic], notes: EXAMPLES[topic].map((e) => `e.g. ${e}`) });
  return reply({
    title: "Tollgate: AI spend and budgets",
    table: { columns: ["command", "usage"], rows: TOPICS.map((t) => [t, USAGE[t]]) },
    notes: ["Periods: today, yesterday, this-week, last-week, this-month, last-month, this-quarter, last-quarter, this-year, last-7d, last-30d, YYYY-MM, YYYY-MM-DD..YYYY-MM-DD."],
  });
}
