import { eq } from "drizzle-orm";
import { audit } from "../audit/log.ts";
import type { Database } from "../db/connection.ts";
import { channels, ingestSourceSecrets, providerKeys } from "../db/schema.ts";
import type { SecretBox } from "./secret-box.ts";

export interface RotationResult {
  master_key_id: string;
  resealed: { provider_keys: number; ingest_source_secrets: number; channel_secrets: number };
}

/**
 * Re-seals every stored secret under the current master key, in one transaction: afterwards the
 * previous master keys can be dropped from the configuration. Running it again changes nothing.
 * Audited (the counts only) in the same transaction.
 */
export async function rotateMasterKey(database: Database, box: SecretBox, actor: string): Promise<RotationResult> {
  return database.db.transaction(async (tx) => {
    const stale = (sealed: string) => box.keyIdOf(sealed) !== box.keyId;
    const keys = (await tx.select().from(providerKeys)).filter((r) => stale(r.keyEncrypted));
    for (const row of keys)
      await tx.update(providerKeys).set({ keyEncrypted: box.seal(box.open(row.keyEncrypted)) }).where(eq(providerKeys.provider, row.provider));
    const secrets = (await tx.select().from(ingestSourceSecrets)).filter((r) => stale(r.secretEncrypted));
    for (const row of secrets)
      await tx.update(ingestSourceSecrets).set({ secretEncrypted: box.seal(box.open(row.secretEncrypted)) }).where(eq(ingestSourceSecrets.id, row.id));
    const channelSecrets = (await tx.select().from(channels)).filter((r) => r.secretEncrypted !== null && stale(r.secretEncrypted));
    for (const row of channelSecrets)
      await tx.update(channels).set({ secretEncrypted: box.seal(box.open(row.secretEncrypted!)) }).where(eq(channels.id, row.id));
    const rotated: RotationResult = {
      master_key_id: box.keyId,
      resealed: { provider_keys: keys.length, ingest_source_secrets: secrets.length, channel_secrets: channelSecrets.length },
    };
    await audit(tx, { actor, action: "rotate_master", entity: "provider_key", entityId: rotated.master_key_id, after: rotated });
    return rotated;
  });
}
