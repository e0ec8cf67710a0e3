import { eq } from "drizzle-orm";
import { z } from "zod";
import { audit } from "../audit/log.ts";
import type { Database } from "../db/connection.ts";
import { providerKeys } from "../db/schema.ts";
import type { SecretBox } from "./secret-box.ts";
import { type CachedStore, ChangeListeners } from "./cached-store.ts";

export const SetProviderKeyRequest = z.strictObject({
  api_key: z
    .string()
    .trim()
    .min(8, "the provider's API key (at least 8 characters)")
    .max(4096)
    .regex(/^[\x21-\x7e]+$/, "printable characters without spaces, as API keys are"),
});

/** SetProviderKeyRequest naming the provider, one of the proxy's routes. */
export function setProviderKeyRequestFor(providers: readonly string[]) {
  return SetProviderKeyRequest.extend({
    name: z.enum(providers as [string, ...string[]], { error: `one of the proxy's providers: ${providers.join(", ")}` }),
  });
}

/** What listings show of a provider key: where it comes from and its last characters, never the key. */
export interface ProviderKeyInfo {
  provider: string;
  source: "stored" | "environment" | "none";
  hint: string | null;
  master_key_id: string | null;
  updated_at: string | null;
}

/** Short keys would give too much away: they get no hint at all. */
const hintOf = (key: string) => (key.length >= 20 ? `…${key.slice(-4)}` : "");

/** How often stored keys are re-read: a key set on another gateway process takes effect within it. */
const REFRESH_MS = 5_000;

/**
 * The upstream key of each proxy route: the stored one (sealed with the master key) wins over
 * `<NAME>_API_KEY` from the environment, so a key can be replaced without a restart. Stored keys
 * are held decrypted in memory and re-read in the background, so the proxy never waits on the
 * database for them and keeps its keys through a database outage.
 */
export class ProviderKeys implements CachedStore {
  private stored = new Map<string, string>();
  private loadedAt = 0;
  private loading: Promise<void> | undefined;
  private readonly changes = new ChangeListeners();

  constructor(
    private readonly database: Database,
    private readonly box: SecretBox,
    private readonly fromEnvironment: Readonly<Record<string, string>>,
  ) {}

  /** The key to send upstream for `provider`; undefined when none is configured. */
  get(provider: string): string | undefined | Promise<string | undefined> {
    if (this.loadedAt === 0) return this.refresh().then(() => this.current(provider));
    if (Date.now() - this.loadedAt > REFRESH_MS) this.refresh().catch(() => undefined);
    return this.current(provider);
  }

  /**
   * Stores (or replaces) a provider's key, audited in the same transaction. The entry holds what
   * listings show before and after: the key's last characters at most, never the key.
   */
  async set(provider: string, key: string, actor: string): Promise<ProviderKeyInfo> {
    const values = { provider, keyEncrypted: this.box.seal(key), hint: hintOf(key), updatedAt: new Date() };
    const after = await this.database.db.transaction(async (tx) => {
      const [current] = await tx.select().from(providerKeys).where(eq(providerKeys.provider, provider)).for("update");
      const [row] = await tx.insert(providerKeys).values(values).onConflictDoUpdate({ target: providerKeys.provider, set: values }).returning();
      const after = this.infoOf(provider, row);
      await audit(tx, { actor, action: "set", entity: "provider_key", entityId: provider, before: this.infoOf(provider, current), after });
      return after;
    });
    this.stored.set(provider, key);
    this.changes.emit();
    return after;
  }

  /**
   * Removes the stored key (the environment's applies again), audited in the same transaction;
   * answers what applies now, or undefined when none was stored.
   */
  async remove(provider: string, actor: string): Promise<ProviderKeyInfo | undefined> {
    const after = await this.database.db.transaction(async (tx) => {
      const [row] = await tx.delete(providerKeys).where(eq(providerKeys.provider, provider)).returning();
      if (!row) return undefined;
      const after = this.infoOf(provider, undefined);
      await audit(tx, { actor, action: "remove", entity: "provider_key", entityId: provider, before: this.infoOf(provider, row), after });
      return after;
    });
    if (after) {
      this.stored.delete(provider);
      this.changes.emit();
    }
    return after;
  }

  async list(providers: readonly string[]): Promise<ProviderKeyInfo[]> {
    const rows = new Map((await this.database.db.select().from(providerKeys)).map((r) => [r.provider, r]));
    return providers.map((provider) => this.infoOf(provider, rows.get(provider)));
  }

  onChange(listener: () => void): void {
    this.changes.add(listener);
  }

  /** Re-read now; meanwhile calls keep the keys last read, as through a database outage. */
  forget(): void {
    this.refresh().catch(() => {
      // Read again by the next call once REFRESH_MS has passed.
    });
  }

  private current(provider: string): string | undefined {
    return this.stored.get(provider) ?? this.fromEnvironment[provider];
  }

  /** What applies to `provider`: its stored row if any, else the environment's key, else none. */
  private infoOf(provider: string, row: typeof providerKeys.$inferSelect | undefined): ProviderKeyInfo {
    if (row) return { provider, source: "stored", hint: row.hint, master_key_id: this.box.keyIdOf(row.keyEncrypted), updated_at: row.updatedAt.toISOString() };
    const env = this.fromEnvironment[provider];
    return { provider, source: env ? "environment" : "none", hint: env ? hintOf(env) : null, master_key_id: null, updated_at: null };
  }

  /** Reads the stored keys; fails when one was sealed with a master key this process does not have. */
  refresh(): Promise<void> {
    this.loading ??= (async () => {
      try {
        const rows = await this.database.db.select().from(providerKeys);
        this.stored = new Map(rows.map((r) => [r.provider, this.box.open(r.keyEncrypted)]));
        this.loadedAt = Date.now();
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }
}
