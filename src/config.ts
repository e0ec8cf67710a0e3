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

/** A whole number within bounds, read from its decimal text, with one message for every way it can be wrong. */
function wholeNumber(min: number, max: number, fallback: number) {
  const error = `a whole number from ${min} to ${max}`;
  return z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error }).default(fallback);
}

/** All environment the gateway reads, in one place. */
export const ConfigSchema = z.object({
  PORT: wholeNumber(0, 65535, 8787),
  HOST: z.string().default("0.0.0.0"),
  DATABASE_URL: optional.pipe(z.url({ protocol: /^postgres(ql)?$/, error: "a postgres:// or postgresql:// URL" }).optional()),
  TOLLGATE_DATA_DIR: z.string().default("./.tollgate"),
  TOLLGATE_ADMIN_TOKEN: optional.pipe(z.string().min(16, "at least 16 characters").optional()),
  TOLLGATE_MASTER_KEY: optional.pipe(
    z
      .string()
      .regex(/^[A-Za-z0-9+/]{43}=$|^[0-9a-fA-F]{64}$/, "32 bytes as base64 (44 characters) or hex (64 characters)")
      .optional(),
  ),
  TOLLGATE_PRICES: optional,
  TOLLGATE_TIMEZONE: z.string().default("UTC").refine(isTimeZone, "an IANA time zone such as UTC or Europe/Berlin"),
  TOLLGATE_URL: optional.pipe(z.url({ protocol: /^https?$/, error: "an http:// or https:// URL" }).optional()),
  LOG_LEVEL: z
    .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], { error: "one of fatal, error, warn, info, debug, trace, silent" })
    .default("info"),
  TOLLGATE_BATCH_SIZE: wholeNumber(1, 10_000, 1000),
  TOLLGATE_BATCH_WAIT_MS: wholeNumber(0, 10_000, 20),
});
export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  readonly kind = "config";
}

/** Reads the environment; a bad value names the variable and what was expected. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty value (`PORT=` in a .env file or compose file) means unset, so the default applies.
  const set = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ""));
  const parsed = ConfigSchema.safeParse(set);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: expected ${i.message}`);
  throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}`);
}
