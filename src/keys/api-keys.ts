import { createHash, randomBytes, randomUUID } from "node:crypto";
import { and, desc, eq, isNull } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "../db/connection.ts";
import { apiKeys } from "../db/schema.ts";

/** Postgres text cannot hold NUL: refused here as a 400 rather than failing the insert as a 500. */
export const labelText = z.string().trim().min(1).max(200).refine((s) => !s.includes("\u0000"), "must not contain NUL characters");
const attribution = labelText.optional();

export const CreateKeyRequest = z.strictObject({
  kind: z.enum(["ingest", "virtual"]),
  name: labelText,
  team: attribution,
  project: attribution,
  feature: attribution,
  user: attribution,
});
export type CreateKeyRequest = z.infer<typeof CreateKeyRequest>;

/** What listings show of a key: never the key, never its hash. */
export interface KeyInfo {
  id: string;
  kind: "ingest" | "virtual";
  name: string;
  prefix: string;
  team: string | null;
  project: string | null;
  feature: string | null;
  user: string | null;
  created_at: string;
  revoked_at: string | null;
}

export const KEY_PREFIX = "tlg_";
const hashKey = (key: string) => createHash("sha256").update(key).digest("hex");

function info(row: typeof apiKeys.$inferSelect): KeyInfo {
  return {
    id: row.id,
    kind: row.kind as KeyInfo["kind"],
    name: row.name,
    prefix: row.prefix,
    team: row.team,
    project: row.project,
    feature: row.feature,
    user: row.user,
    created_at: row.createdAt.toISOString(),
    revoked_at: row.revokedAt?.toISOString() ?? null,
  };
}

/** How long a looked-up key is trusted before it is read again: the delay a revocation can take. */
const CACHE_MS = 5_000;

export class ApiKeys {
  private cache = new Map<string, { key: KeyInfo | null; until: number }>();

  constructor(private readonly database: Database) {}

  async create(req: CreateKeyRequest): Promise<KeyInfo & { key: string }> {
    const key = KEY_PREFIX + randomBytes(24).toString("base64url");
    const [row] = await this.database.db
      .insert(apiKeys)
      .values({
        id: randomUUID(),
        kind: req.kind,
        name: req.name,
        prefix: key.slice(0, 12),
        hash: hashKey(key),
        team: req.team ?? null,
        project: req.project ?? null,
        feature: req.feature ?? null,
        user: req.user ?? null,
      })
      .returning();
    return { ...info(row!), key };
  }

  async list(): Promise<KeyInfo[]> {
    const rows = await this.database.db.select().from(apiKeys).orderBy(desc(apiKeys.createdAt));
    return rows.map(info);
  }

  /** Revokes a key; null when no such key exists. Revoking twice is harmless. */
  async revoke(id: string): Promise<KeyInfo | null> {
    const [row] = await this.database.db
      .update(apiKeys)
      .set({ revokedAt: new Date() })
      .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
      .returning();
    this.cache.clear();
    if (row) return info(row);
    const [existing] = await this.database.db.select().from(apiKeys).where(eq(apiKeys.id, id));
    return existing ? info(existing) : null;
  }

  /** The live key of this kind that `presented` is, or null. */
  async authenticate(presented: string, kind: KeyInfo["kind"]): Promise<KeyInfo | null> {
    if (!presented.startsWith(KEY_PREFIX)) return null;
    const hash = hashKey(presented);
    const now = Date.now();
    let hit = this.cache.get(hash);
    if (!hit || hit.until < now) {
      const [row] = await this.database.db.select().from(apiKeys).where(eq(apiKeys.hash, hash));
      hit = { key: row && !row.revokedAt ? info(row) : null, until: now + CACHE_MS };
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(hash, hit);
    }
    return hit.key?.kind === kind ? hit.key : null;
  }
}
