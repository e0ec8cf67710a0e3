import { hash as digestOf, randomBytes, randomUUID } from "node:crypto";
import { and, desc, eq, isNull } from "drizzle-orm";
import { z } from "zod";
import { audit } from "../audit/log.ts";
import type { Database } from "../db/connection.ts";
import { apiKeys } from "../db/schema.ts";
import { modelFamily } from "../ledger/model-family.ts";
import { type CachedStore, ChangeListeners } from "./cached-store.ts";

/** Postgres text cannot hold NUL: refused here as a 400 rather than failing the insert as a 500. */
export const labelText = z.string().trim().min(1).max(200).refine((s) => !s.includes("\u0000"), "must not contain NUL characters");
const attribution = labelText.optional();
/** A model name, or a prefix ending in `*` (`claude-*`). */
const modelPattern = labelText.regex(/^[^*]+\*?$|^\*$/, "a model name, or a prefix followed by * (claude-*)");

/** Whether a key limited to `patterns` may ask for `model`; requests that name no model are not limited. */
export function modelAllowed(patterns: readonly string[] | null, model: string | undefined): boolean {
  if (!patterns || model === undefined) return true;
  // A family name allows its dated snapshots, as budget scopes take them.
  const family = modelFamily(model);
  return patterns.some((p) => (p.endsWith("*") ? model.startsWith(p.slice(0, -1)) : p === model || p === family));
}

export const CreateKeyRequest = z.strictObject({
  kind: z.enum(["ingest", "virtual"]),
  name: labelText,
  team: attribution,
  project: attribution,
  feature: attribution,
  user: attribution,
  /** Only for virtual keys: the proxy routes and models this key may use; absent allows all. */
  allowed_providers: z.array(labelText).min(1).max(50).optional(),
  allowed_models: z.array(modelPattern).min(1).max(200).optional(),
}).superRefine((req, ctx) => {
  for (const field of ["allowed_providers", "allowed_models"] as const)
    if (req[field] && req.kind !== "virtual") ctx.addIssue({ code: "custom", path: [field], message: "only virtual keys call providers; leave it out for ingest keys" });
});
export type CreateKeyRequest = z.infer<typeof CreateKeyRequest>;

/** CreateKeyRequest on a gateway whose proxy has these providers: a key may be limited to those only. */
export function createKeyRequestFor(providers: readonly string[]) {
  return CreateKeyRequest.superRefine((req, ctx) => {
    for (const [i, name] of (req.allowed_providers ?? []).entries())
      if (!providers.includes(name)) ctx.addIssue({ code: "custom", path: ["allowed_providers", i], message: `one of the proxy's providers: ${providers.join(", ")}` });
  });
}

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
  allowed_providers: string[] | null;
  allowed_models: string[] | null;
  created_at: string;
  revoked_at: string | null;
}

/** What the audit log keeps of a key: who it is for, never the key, its hash or its prefix. */
const keyRecord = ({ prefix: _prefix, ...rest }: KeyInfo) => rest;

export const KEY_PREFIX = "tlg_";
// One call, not createHash().update().digest(): this runs for every proxied call, and the one-shot form took a third of the time.
const hashKey = (key: string) => digestOf("sha256", key, "hex");

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
    allowed_providers: row.allowedProviders,
    allowed_models: row.allowedModels,
    created_at: row.createdAt.toISOString(),
    revoked_at: row.revokedAt?.toISOString() ?? null,
  };
}

/** How long a looked-up key is trusted before it is read again: the delay a revocation can take. */
const CACHE_MS = 5_000;

/** Lookups of keys never seen before that may wait on the database at once. */
const MAX_FIRST_LOOKUPS = 256;

/** Too many unknown keys are being looked up at once: answered like a database that does not answer. */
export class KeyLookupsBusy extends Error {
  override name = "KeyLookupsBusy";
}

interface CachedKey {
  key: KeyInfo | null;
  until: number;
  refreshing?: Promise<void>;
}

export class ApiKeys implements CachedStore {
  private cache = new Map<string, CachedKey>();
  private firstLookups = 0;
  private readonly changes = new ChangeListeners();

  constructor(private readonly database: Database) {}

  /** Creates a key, shown this once, and its audit entry in the same transaction. */
  async create(req: CreateKeyRequest, actor: string): Promise<KeyInfo & { key: string }> {
    const key = KEY_PREFIX + randomBytes(24).toString("base64url");
    const created = await this.database.db.transaction(async (tx) => {
      const [row] = await tx
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
          allowedProviders: req.allowed_providers ?? null,
          allowedModels: req.allowed_models ?? null,
        })
        .returning();
      const created = info(row!);
      await audit(tx, { actor, action: "create", entity: "key", entityId: created.id, after: keyRecord(created) });
      return created;
    });
    return { ...created, key };
  }

  async list(): Promise<KeyInfo[]> {
    const rows = await this.database.db.select().from(apiKeys).orderBy(desc(apiKeys.createdAt));
    return rows.map(info);
  }

  /**
   * Revokes a key; null when no such key exists. Revoking twice is harmless and logs nothing: only
   * the call whose update flips revoked_at audits, in the same transaction. The conditional update
   * locks the row, so a concurrent revoke waits for it and then finds the key already revoked.
   */
  async revoke(id: string, actor: string): Promise<KeyInfo | null> {
    const revoked = await this.database.db.transaction(async (tx) => {
      const [row] = await tx
        .update(apiKeys)
        .set({ revokedAt: new Date() })
        .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
        .returning();
      if (row) {
        const after = info(row);
        // The update matched only while revoked_at was null, and changed nothing else.
        await audit(tx, { actor, action: "revoke", entity: "key", entityId: id, before: keyRecord({ ...after, revoked_at: null }), after: keyRecord(after) });
        return after;
      }
      // Read through the transaction: PGlite has one connection, held by the transaction.
      const [existing] = await tx.select().from(apiKeys).where(eq(apiKeys.id, id));
      return existing ? info(existing) : null;
    });
    // Once committed: a lookup between a clear and the commit would cache the key as still live.
    this.cache.clear();
    this.changes.emit();
    return revoked;
  }

  onChange(listener: () => void): void {
    this.changes.add(listener);
  }

  forget(): void {
    this.cache.clear();
  }

  /**
   * The live key `presented` is, of either kind, or null; a door told the other kind says so. A key
   * seen before is answered from memory and re-read in the background once it is older than
   * CACHE_MS, so calls never wait on the database for a known key and keep working through a
   * database outage with what was last known; only a key never seen before waits for (and fails
   * with) the database.
   */
  find(presented: string): KeyInfo | null | Promise<KeyInfo | null> {
    if (!presented.startsWith(KEY_PREFIX)) return null;
    const hash = hashKey(presented);
    const hit = this.cache.get(hash);
    if (!hit) return this.firstLookup(hash);
    if (hit.until < Date.now() && !hit.refreshing) {
      const entry = hit;
      entry.refreshing = this.lookup(hash).then(
        (key) => {
          entry.key = key;
          entry.until = Date.now() + CACHE_MS;
        },
        () => undefined,
      ).finally(() => {
        entry.refreshing = undefined;
      });
    }
    // A plain value, not a promise: a known key costs the proxy's hot path no await.
    return hit.key;
  }

  /**
   * A key never seen before, read from the database. Unknown keys are anyone's to send: at most
   * MAX_FIRST_LOOKUPS wait at once, and the rest are refused as if the database were away, so
   * they cannot pile up requests (or queries) in memory.
   */
  private async firstLookup(hash: string): Promise<KeyInfo | null> {
    if (this.firstLookups >= MAX_FIRST_LOOKUPS) throw new KeyLookupsBusy();
    this.firstLookups++;
    try {
      const hit = { key: await this.lookup(hash), until: Date.now() + CACHE_MS };
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(hash, hit);
      return hit.key;
    } finally {
      this.firstLookups--;
    }
  }

  private async lookup(hash: string): Promise<KeyInfo | null> {
    const [row] = await this.database.db.select().from(apiKeys).where(eq(apiKeys.hash, hash));
    return row && !row.revokedAt ? info(row) : null;
  }
}
