import { randomUUID } from "node:crypto";
import { and, asc, eq, inArray, isNull } from "drizzle-orm";
import { z } from "zod";
import { audit } from "../audit/log.ts";
import type { Database } from "../db/connection.ts";
import { ingestSources, ingestSourceSecrets } from "../db/schema.ts";
import { newWebhookSecret } from "../signing/standard-webhooks.ts";
import { labelText } from "./api-keys.ts";
import type { SecretBox } from "./secret-box.ts";
import { type CachedStore, ChangeListeners } from "./cached-store.ts";

export const CreateSourceRequest = z.strictObject({ name: labelText });

export interface SourceInfo {
  id: string;
  name: string;
  created_at: string;
  active_secrets: number;
}

/** A decrypted, active signing secret and the sender it belongs to. */
export interface SigningSecret {
  sourceId: string;
  sourceName: string;
  secret: string;
}

/** Active secrets are read at most this often; a rotation or revocation takes effect within it. */
const CACHE_MS = 5_000;

export class IngestSources implements CachedStore {
  private cached: { secrets: SigningSecret[]; until: number } | undefined;
  private readonly changes = new ChangeListeners();

  constructor(
    private readonly database: Database,
    private readonly box: SecretBox,
  ) {}

  /** Creates a sender and its first secret, audited in the same transaction; the secret is shown once. */
  async create(name: string, actor: string): Promise<{ id: string; name: string; secret: string } | { conflict: true }> {
    const id = randomUUID();
    const secret = newWebhookSecret();
    const created = await this.database.db.transaction(async (tx) => {
      const rows = await tx.insert(ingestSources).values({ id, name }).onConflictDoNothing().returning();
      if (rows.length === 0) return false;
      await tx.insert(ingestSourceSecrets).values({ id: randomUUID(), sourceId: id, secretEncrypted: this.box.seal(secret) });
      await audit(tx, { actor, action: "create", entity: "ingest_source", entityId: id, after: { id, name } });
      return true;
    });
    this.changed();
    return created ? { id, name, secret } : { conflict: true };
  }

  /**
   * Adds a secret beside the active ones, so senders can move to it before the old one is revoked;
   * audited (by the secret's id only) in the same transaction. Null when there is no such source.
   */
  async rotate(sourceId: string, actor: string): Promise<{ secret_id: string; secret: string } | null> {
    const secret = newWebhookSecret();
    const secretId = randomUUID();
    const added = await this.database.db.transaction(async (tx) => {
      const [source] = await tx.select().from(ingestSources).where(eq(ingestSources.id, sourceId));
      if (!source) return false;
      await tx.insert(ingestSourceSecrets).values({ id: secretId, sourceId, secretEncrypted: this.box.seal(secret) });
      await audit(tx, { actor, action: "add_secret", entity: "ingest_source", entityId: sourceId, after: { secret_id: secretId } });
      return true;
    });
    if (!added) return null;
    this.changed();
    return { secret_id: secretId, secret };
  }

  /**
   * Revokes every secret of the source but the newest, audited in the same transaction when any
   * was. The active secrets are locked first: a concurrent call waits, then finds only the newest
   * still active and changes (and logs) nothing.
   */
  async revokeOlderSecrets(sourceId: string, actor: string): Promise<number> {
    const revoked = await this.database.db.transaction(async (tx) => {
      const active = await tx
        .select({ id: ingestSourceSecrets.id })
        .from(ingestSourceSecrets)
        .where(and(eq(ingestSourceSecrets.sourceId, sourceId), isNull(ingestSourceSecrets.revokedAt)))
        .orderBy(asc(ingestSourceSecrets.createdAt))
        .for("update");
      const older = active.slice(0, -1).map((s) => s.id);
      if (older.length === 0) return 0;
      await tx.update(ingestSourceSecrets).set({ revokedAt: new Date() }).where(inArray(ingestSourceSecrets.id, older));
      await audit(tx, { actor, action: "revoke_older_secrets", entity: "ingest_source", entityId: sourceId, after: { revoked: older.length } });
      return older.length;
    });
    this.changed();
    return revoked;
  }

  onChange(listener: () => void): void {
    this.changes.add(listener);
  }

  forget(): void {
    this.cached = undefined;
  }

  private changed(): void {
    this.forget();
    this.changes.emit();
  }

  async list(): Promise<SourceInfo[]> {
    const sources = await this.database.db.select().from(ingestSources).orderBy(asc(ingestSources.name));
    const active = await this.activeSecrets();
    return sources.map((s) => ({
      id: s.id,
      name: s.name,
      created_at: s.createdAt.toISOString(),
      active_secrets: active.filter((a) => a.sourceId === s.id).length,
    }));
  }

  async activeSecrets(): Promise<SigningSecret[]> {
    if (this.cached && this.cached.until > Date.now()) return this.cached.secrets;
    const rows = await this.database.db
      .select({ sourceId: ingestSources.id, sourceName: ingestSources.name, sealed: ingestSourceSecrets.secretEncrypted })
      .from(ingestSourceSecrets)
      .innerJoin(ingestSources, eq(ingestSources.id, ingestSourceSecrets.sourceId))
      .where(isNull(ingestSourceSecrets.revokedAt));
    const secrets = rows.map((r) => ({ sourceId: r.sourceId, sourceName: r.sourceName, secret: this.box.open(r.sealed) }));
    this.cached = { secrets, until: Date.now() + CACHE_MS };
    return secrets;
  }
}
