import { sql } from "drizzle-orm";
import type { Database } from "../../src/db/connection.ts";
import { waitFor } from "./wait.ts";

/** A proxied call as the ledger holds it, numbers as text so both drivers read the same. */
export interface ProxyRow {
  id: string;
  provider: string;
  model: string;
  input_tokens: string;
  cached_input_tokens: string;
  cache_write_tokens: string;
  cache_write_1h_tokens: string;
  output_tokens: string;
  reasoning_tokens: string;
  status: string;
  team: string | null;
  project: string | null;
  feature: string | null;
  user: string | null;
  session: string | null;
  tags: Record<string, string>;
  api_key_id: string | null;
  request_id: string | null;
  priced: boolean;
  /** The token counts are the gateway's estimate (a stream cut before its usage). */
  estimated: boolean;
  cost: string;
}

/** The proxy's ledger rows for these call ids (the `x-tollgate-request-id` the gateway answered with). */
export async function proxyRows(database: Database, ids: readonly string[]): Promise<ProxyRow[]> {
  if (ids.length === 0) return [];
  const rows = await database.rows<Omit<ProxyRow, "tags"> & { tags: string }>(sql`
    select id, provider, model, input_tokens::text, cached_input_tokens::text, cache_write_tokens::text,
      cache_write_1h_tokens::text, output_tokens::text, reasoning_tokens::text, status, team, project, feature,
      "user", session, tags::text as tags, api_key_id, request_id, priced, estimated, cost::text
    from usage_events where source = 'proxy' and id in (${sql.join(ids.map((id) => sql`${id}`), sql`, `)})`);
  return rows.map((row) => ({ ...row, tags: JSON.parse(row.tags) as Record<string, string> }));
}

/** The ledger row of one proxied call, once the gateway has written it. */
export async function proxyRow(database: Database, id: string, timeoutMs = 5_000): Promise<ProxyRow> {
  let row: ProxyRow | undefined;
  await waitFor(`the ledger row of call ${id}`, async () => ([row] = await proxyRows(database, [id])).length === 1, timeoutMs);
  return row!;
}

/** Token classes in ledger order: input, cached input, cache writes, 1-hour cache writes, output, reasoning. */
export const tokenColumns = (r: ProxyRow): string[] => [
  r.input_tokens,
  r.cached_input_tokens,
  r.cache_write_tokens,
  r.cache_write_1h_tokens,
  r.output_tokens,
  r.reasoning_tokens,
];
