import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * AES-256-GCM with the master key: secrets the gateway must read back (signing secrets, provider
 * keys). Each sealed value names the master key that sealed it, so a new master key can be rolled
 * in while values sealed under the previous ones still open, until `rotate-master` re-seals them.
 */
export interface SecretBox {
  /** The id of the master key new values are sealed with. */
  readonly keyId: string;
  seal(plain: string): string;
  open(sealed: string): string;
  /** The id of the master key a sealed value was sealed with. */
  keyIdOf(sealed: string): string;
}

/** A short public fingerprint of a master key: tells keys apart without revealing them. */
export const masterKeyId = (key: Buffer) => createHash("sha256").update(key).digest("hex").slice(0, 12);

/** `current` seals; it and `previous` open. */
export function secretBox(current: Buffer, previous: Buffer[] = []): SecretBox {
  for (const key of [current, ...previous]) if (key.length !== 32) throw new Error("a master key must be 32 bytes");
  const keys = new Map([current, ...previous].map((key) => [masterKeyId(key), key]));
  const keyId = masterKeyId(current);
  const parse = (sealed: string) => {
    const [version, kid, iv, tag, body] = sealed.split(".");
    if (version !== "v2") throw new Error("not a sealed secret");
    if (!kid || !iv || !tag || body === undefined) throw new Error("not a sealed secret");
    return { kid, iv, tag, body };
  };
  return {
    keyId,
    seal(plain) {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", current, iv);
      const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
      return ["v2", keyId, iv.toString("base64"), cipher.getAuthTag().toString("base64"), body.toString("base64")].join(".");
    },
    open(sealed) {
      const { kid, iv, tag, body } = parse(sealed);
      const key = keys.get(kid);
      if (!key) throw new Error(`sealed with master key ${kid}, which is not configured (TOLLGATE_MASTER_KEY or TOLLGATE_PREVIOUS_MASTER_KEYS)`);
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64"));
      decipher.setAuthTag(Buffer.from(tag, "base64"));
      return Buffer.concat([decipher.update(Buffer.from(body, "base64")), decipher.final()]).toString("utf8");
    },
    keyIdOf: (sealed) => parse(sealed).kid,
  };
}

export function decodeMasterKey(text: string): Buffer {
  return /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, "hex") : Buffer.from(text, "base64");
}

/**
 * Reads a secret kept in the data folder, creating it once if absent, so the embedded setup needs
 * no configuration. Two processes starting together agree on whichever file was written first.
 */
export function persistedSecret(file: string, generate: () => string): string {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    try {
      writeFileSync(file, generate(), { mode: 0o600, flag: "wx" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  return readFileSync(file, "utf8").trim();
}

/** The configured master key, or one kept in the data folder; gateways sharing a Postgres must set it. */
export function resolveMasterKey(configured: string | undefined, dataDir: string): Buffer {
  return decodeMasterKey(configured ?? persistedSecret(join(dataDir, "master.key"), () => randomBytes(32).toString("base64")));
}
