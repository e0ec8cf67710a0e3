import { z } from "zod";

const optional = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v));

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** All environment the gateway reads, in one place. */
export const ConfigSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8787),
  HOST: z.string().default("0.0.0.0"),
  DATABASE_URL: optional.pipe(z.url({ protocol: /^postgres(ql)?$/, error: "a postgres:// or postgresql:// URL" }).optional()),
  TOLLGATE_DATA_DIR: z.string().min(1).default("./.tollgate"),
  TOLLGATE_ADMIN_TOKEN: optional.pipe(z.string().min(16, "at least 16 characters").optional()),
  TOLLGATE_MASTER_KEY: optional.pipe(
    z
      .string()
      .regex(/^[A-Za-z0-9+/]{43}=$|^[0-9a-fA-F]{64}$/, "32 bytes as base64 (44 characters) or hex (64 characters)")
      .optional(),
  ),
  TOLLGATE_PRICES: optional,
  TOLLGATE_TIMEZONE: z.string().default("UTC").refine(isTimeZone, "an IANA time zone such as UTC or Europe/Berlin"),
  TOLLGATE_URL: optional.pipe(z.url().optional()),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  TOLLGATE_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(1000),
  TOLLGATE_BATCH_WAIT_MS: z.coerce.number().int().min(0).max(10_000).default(20),
});
export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  readonly kind = "config";
}

/** Reads the environment; a bad value names the variable and what was expected. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = ConfigSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: expected ${i.message}`);
  throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}`);
}
