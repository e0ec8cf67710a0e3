import { eq } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "../db/connection.ts";
import { providerKeys } from "../db/schema.ts";
import type { SecretBox } from "./secret-box.ts";

export const SetProviderKeyRequest = z.strictObject({
  api_key: z
    .string()
    .trim()
    .min(8, "the provider's API key (at least 8 characters)")
    .max(4096)
    .regex(/^[\x21-\x7e]+$/, "printable characters without spaces, as API keys are"),
});

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
export class ProviderKeys {
  private stored = new Map<string, string>();
  private loadedAt = 0;
  private loading: Promise<void> | undefined;

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

  async set(provider: string, key: string): Promise<ProviderKeyInfo> {
    const values = { provider, keyEncrypted: this.box.seal(key), hint: hintOf(key), updatedAt: new Date() };
    const [row] = await this.database.db
      .insert(providerKeys)
      .values(values)
      .onConflictDoUpdate({ target: providerKeys.provider, set: values })
      .returning();
    this.stored.set(provider, key);
    return this.infoOfRow(row!);
  }

  /** Removes the stored key (the environment's applies again); false when none was stored. */
  async remove(provider: string): Promise<boolean> {
    const rows = await this.database.db.delete(providerKeys).where(eq(providerKeys.provider, provider)).returning();
    this.stored.delete(provider);
    return rows.length > 0;
  }

  async list(providers: readonly string[]): Promise<ProviderKeyInfo[]> {
    const rows = new Map((await this.database.db.select().from(providerKeys)).map((r) => [r.provider, r]));
    return providers.map((provider) => {
      const row = rows.get(provider);
      if (row) return this.infoOfRow(row);
      const env = this.fromEnvironment[provider];
      return { provider, source: env ? "environment" : "none", hint: env ? hintOf(env) : null, master_key_id: null, updated_at: null };
    });
  }

  private current(provider: string): string | undefined {
    return this.stored.get(provider) ?? this.fromEnvironment[provider];
  }

  private infoOfRow(row: typeof providerKeys.$inferSelect): ProviderKeyInfo {
    return { provider: row.provider, source: "stored", hint: row.hint, master_key_id: this.box.keyIdOf(row.keyEncrypted), updated_at: row.updatedAt.toISOString() };
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
