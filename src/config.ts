import cron from "node-cron";
import { z } from "zod";
import { isTimeZone } from "./ledger/period.ts";
import { parseOutboundAllow } from "./outbound/policy.ts";
import { decimalUsdToPico } from "./pricing/money.ts";
import { builtInProviders, normaliseProvider, providerNamed } from "./providers/registry.ts";

/** An optional setting: an empty value is unset. */
export const optional = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v));

/** A whole number within bounds, read from its decimal text, with one message for every way it can be wrong. */
function wholeNumber(min: number, max: number, fallback: number) {
  const error = `a whole number from ${min} to ${max}`;
  return z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error }).default(fallback);
}

const httpUrl = z.url({ protocol: /^https?$/, error: "an http:// or https:// URL" });

/** An upstream's base URL; tests point it at a fake. */
export function upstreamUrl(fallback: string) {
  return httpUrl.default(fallback);
}

export function httpsUrl(fallback: string) {
  return z.url({ protocol: /^https$/, error: "an https:// URL" }).default(fallback);
}

const DURATION_UNITS_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90m`, `72h`, `3d` → milliseconds, for settings people write by hand. */
export function durationMs(text: string): number | undefined {
  const m = /^(\d{1,6})\s*([mhd])$/.exec(text.trim());
  return m && Number(m[1]) > 0 ? Number(m[1]) * DURATION_UNITS_MS[m[2]!]! : undefined;
}

function duration(fallback: string) {
  return z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const ms = durationMs(text);
      if (ms === undefined) ctx.addIssue({ code: "custom", message: "a duration such as 90m, 72h or 3d" });
      return ms ?? z.NEVER;
    });
}

const WAIT_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, ...DURATION_UNITS_MS };

/** `250ms`, `5s`, `30m`, `10h`, `1d` → milliseconds, at most a day: one wait of a retry schedule. */
function waitMs(text: string): number | undefined {
  const m = /^(\d{1,8})(ms|s|m|h|d)$/.exec(text);
  const ms = m ? Number(m[1]) * WAIT_UNITS_MS[m[2]!]! : undefined;
  return ms !== undefined && ms <= 86_400_000 ? ms : undefined;
}

/** A decimal USD amount ("0.10") read exactly into pico-USD. */
function usd(fallback: string) {
  return z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const pico = decimalUsdToPico(text);
      if (pico instanceof Error || pico < 0n) ctx.addIssue({ code: "custom", message: 'a decimal amount of USD such as "0.10"' });
      return pico instanceof Error ? z.NEVER : pico;
    });
}

const masterKey = z
  .string()
  .regex(/^[A-Za-z0-9+/]{43}=$|^[0-9a-fA-F]{64}$/, "32 bytes as base64 (44 characters) or hex (64 characters)");

/** All environment the gateway reads, in one place. */
export const ConfigSchema = z.object({
  PORT: wholeNumber(0, 65535, 8787),
  HOST: z.string().default("0.0.0.0"),
  /** How long a client may take to send its request headers, and its whole request: a slowloris is closed then (408). */
  TOLLGATE_HEADERS_TIMEOUT_MS: wholeNumber(100, 600_000, 20_000),
  TOLLGATE_REQUEST_TIMEOUT_MS: wholeNumber(100, 3_600_000, 120_000),
  DATABASE_URL: optional.pipe(z.url({ protocol: /^postgres(ql)?$/, error: "a postgres:// or postgresql:// URL" }).optional()),
  TOLLGATE_DATA_DIR: z.string().default("./.tollgate"),
  TOLLGATE_ADMIN_TOKEN: optional.pipe(z.string().min(16, "at least 16 characters").optional()),
  TOLLGATE_MASTER_KEY: optional.pipe(masterKey.optional()),
  /** Master keys being rotated out: values they sealed still open until `providers rotate-master`. */
  TOLLGATE_PREVIOUS_MASTER_KEYS: z
    .string()
    .default("")
    .transform((text) => text.split(",").map((k) => k.trim()).filter(Boolean))
    .pipe(z.array(masterKey)),
  TOLLGATE_PRICES: optional,
  TOLLGATE_TIMEZONE: z.string().default("UTC").refine(isTimeZone, "an IANA time zone such as UTC or Europe/Berlin"),
  TOLLGATE_URL: optional.pipe(z.url({ protocol: /^https?$/, error: "an http:// or https:// URL" }).optional()),
  LOG_LEVEL: z
    .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], { error: "one of fatal, error, warn, info, debug, trace, silent" })
    .default("info"),
  TOLLGATE_BATCH_SIZE: wholeNumber(1, 10_000, 1000),
  TOLLGATE_BATCH_WAIT_MS: wholeNumber(0, 10_000, 20),
  /**
   * The same wait for proxied calls' events: they are in the journal before the answer's last byte,
   * so waiting longer delays only their row (reports, soft-budget alerts), not any answer, and fewer
   * writes cost Postgres less per call. A usage post still waits only TOLLGATE_BATCH_WAIT_MS, and
   * takes every queued event with it.
   */
  TOLLGATE_PROXY_BATCH_WAIT_MS: wholeNumber(0, 10_000, 200),
  /** How many usage writes may be under way at once; 1 writes everything queued behind a write in one statement (least Postgres CPU per event). */
  TOLLGATE_BATCH_WRITERS: wholeNumber(1, 16, 4),
  /**
   * How long after a usage write the rollups (every grain) are brought up to date with it: each
   * rollup row is upserted once per fold rather than once per write. Reads are exact
   * either way (they add what is not folded yet); a longer wait means fewer upserts and more events
   * for a read to add.
   */
  TOLLGATE_ROLLUP_FOLD_MS: wholeNumber(1, 60_000, 1000),
  /** How often the journal is fdatasync'd in the background: the most a power cut can lose. */
  TOLLGATE_JOURNAL_SYNC_MS: wholeNumber(1, 10_000, 100),
  /** A usage write or readiness probe unanswered this long counts as a hung database (ingest answers 503, the proxy's events wait in the journal). */
  TOLLGATE_DB_TIMEOUT_MS: wholeNumber(100, 600_000, 5000),
  /** Opening a connection to Postgres gives up after this long. */
  TOLLGATE_DB_CONNECT_TIMEOUT_MS: wholeNumber(1000, 600_000, 10_000),
  /** Postgres cancels a statement running longer than this (its statement_timeout); 0 turns it off. */
  TOLLGATE_DB_STATEMENT_TIMEOUT_MS: wholeNumber(0, 86_400_000, 60_000),
  /** On SIGTERM/SIGINT the process exits after at most this long, whatever it waits on; the journal keeps what was not written. */
  TOLLGATE_SHUTDOWN_TIMEOUT_MS: wholeNumber(100, 600_000, 10_000),
  /** OpenAI-compatible upstreams by name (`xai=https://api.x.ai,my-vllm=http://10.0.0.5:8000`); each base URL of a built-in provider has its own variable. */
  TOLLGATE_PROVIDERS: z
    .string()
    .default("")
    .transform((text, ctx) => {
      const named: Record<string, string> = {};
      const builtIn = new Set(builtInProviders().map((p) => p.name));
      for (const pair of text.split(",").map((p) => p.trim()).filter(Boolean)) {
        const [written, url] = [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)];
        // `x-ai` configures xai: the same provider whichever door names it.
        const name = normaliseProvider(written);
        if (!/^[a-z][a-z0-9-]{0,30}$/.test(written) || !URL.canParse(url) || builtIn.has(name) || ["v1", "api"].includes(name)) {
          ctx.addIssue({ code: "custom", message: "a comma-separated list of name=https://base-url (names in lower case, not a built-in provider)" });
          return z.NEVER;
        }
        named[name] = url;
      }
      return named;
    }),
  TOLLGATE_ON_DISCONNECT: z.enum(["drain", "cancel"], { error: "drain or cancel" }).default("drain"),
  TOLLGATE_ALLOW_PROVIDER_KEYS: z.enum(["true", "false"], { error: "true or false" }).default("false").transform((v) => v === "true"),
  TOLLGATE_UPSTREAM_TIMEOUT_MS: wholeNumber(1000, 3_600_000, 600_000),
  /** The largest request body the proxy takes; a larger one is refused with 413 (unread when its content-length says so). */
  TOLLGATE_MAX_REQUEST_BYTES: wholeNumber(1024, 1024 * 1024 * 1024, 32 * 1024 * 1024),
  /** Hard budgets: how often each process re-reads budgets and renews its leases of them. */
  TOLLGATE_BUDGET_REFRESH_MS: wholeNumber(10, 60_000, 1000),
  /** How long a process's lease of a hard budget outlives its last renewal (a process gone or cut off). */
  TOLLGATE_BUDGET_LEASE_TTL_MS: wholeNumber(1000, 600_000, 30_000),
  /** The most of a hard budget one process takes ahead of need. */
  TOLLGATE_BUDGET_LEASE_CAP_USD: usd("10"),
  /** What a proxied call to a model without a known price holds against hard budgets while in flight. */
  TOLLGATE_BUDGET_UNKNOWN_MODEL_USD: usd("0.10"),
  /** Output tokens assumed for a call that sets no limit, to a model whose context window is unknown. */
  TOLLGATE_BUDGET_DEFAULT_OUTPUT_TOKENS: wholeNumber(1, 10_000_000, 65_536),
  /** The waits between tries of an outbox message, after which it is dead: Svix's, about 27 hours in all. */
  TOLLGATE_OUTBOX_RETRY_SCHEDULE: z
    .string()
    // Svix's schedule: after the first try, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h.
    .default("5s,5m,30m,2h,5h,10h,10h")
    .transform((text, ctx) => {
      const waits = text.split(",").map((w) => waitMs(w.trim()));
      if (waits.length > 100 || waits.some((w) => w === undefined)) {
        ctx.addIssue({ code: "custom", message: "up to 100 comma-separated waits such as 5s,5m,30m,2h (units ms, s, m, h, d; up to a day each)" });
        return z.NEVER;
      }
      return waits as number[];
    }),
  /** Hosts and addresses (or CIDR ranges) webhook deliveries may reach although private, loopback or link-local: `127.0.0.1,10.0.0.0/8,hooks.internal`. */
  TOLLGATE_OUTBOUND_ALLOW: z
    .string()
    .default("")
    .transform((text, ctx) => {
      const parsed = parseOutboundAllow(text);
      if (!parsed.ok) ctx.addIssue({ code: "custom", message: `${parsed.message}; give a comma-separated list of hosts, addresses and CIDR ranges` });
      return parsed.ok ? parsed.allow : z.NEVER;
    }),
  /**
   * Processes serving the port: 1 is the gateway in this process; more forks that many workers
   * (node:cluster) under a primary that only supervises them, so calls use every core. Several
   * processes share one database, so more than 1 needs DATABASE_URL (PGlite lives in one process).
   */
  TOLLGATE_WORKERS: wholeNumber(1, 64, 1),
  /** `off`: this process neither delivers the outbox nor runs scheduled jobs (a proxy-only process, or tests driving them). */
  TOLLGATE_JOBS: z.enum(["on", "off"], { error: "on or off" }).default("on"),
  /** How long a budget-raise request waits for a decision before it expires. */
  TOLLGATE_APPROVAL_TTL: duration("72h"),
  /** `off` lets the requester of a raise decide it (a team of one); `on` leaves that to someone else, or to an admin overriding with a reason. */
  TOLLGATE_FOUR_EYES: z.enum(["on", "off"], { error: "on or off" }).default("on").transform((v) => v === "on"),
  /** Days raw usage events are kept; rollups stay. Unset keeps events forever. */
  TOLLGATE_RETENTION_DAYS: optional.pipe(z.coerce.number<string | undefined>({ error: "a whole number of days from 1 to 36500" }).int().min(1).max(36_500).optional()),
  /** When every budget is evaluated from the rollups; budgets the recorded events count against are also evaluated after each write. */
  TOLLGATE_EVALUATE_CRON: z.string().default("* * * * *").refine((v) => cron.validate(v), 'a cron expression such as "* * * * *" (every minute)'),
  /** An hour's spend in a scope below this is never an anomaly alert, however unusual for the scope. */
  TOLLGATE_ANOMALY_MIN_USD: usd("5"),
  /** The hour, in each channel's time zone, daily digests (and on Mondays weekly ones) go out at. */
  TOLLGATE_DIGEST_HOUR: wholeNumber(0, 23, 9),
  /** Dashboard sign-in with OpenID Connect: the issuer, and this gateway as a client registered with it. All three or none. */
  TOLLGATE_OIDC_ISSUER: optional.pipe(httpUrl.optional()),
  TOLLGATE_OIDC_CLIENT_ID: optional,
  TOLLGATE_OIDC_CLIENT_SECRET: optional,
  /** What the sign-in button calls the provider ("Sign in with …"); the issuer's host name otherwise. */
  TOLLGATE_OIDC_NAME: optional,
  NODE_ENV: optional,
}).superRefine((c, ctx) => {
  if (c.TOLLGATE_WORKERS > 1 && !c.DATABASE_URL)
    ctx.addIssue({
      code: "custom",
      path: ["TOLLGATE_WORKERS"],
      message: `1 without DATABASE_URL (it is ${c.TOLLGATE_WORKERS}): the embedded PGlite database lives inside one process and cannot be shared by workers; set DATABASE_URL to a PostgreSQL database to run several`,
    });
  // Leases are renewed at each refresh: one refresh late, a lease would still have to be alive, or
  // another process could take the room a call in flight here holds.
  if (c.TOLLGATE_BUDGET_REFRESH_MS * 2 > c.TOLLGATE_BUDGET_LEASE_TTL_MS)
    ctx.addIssue({
      code: "custom",
      path: ["TOLLGATE_BUDGET_REFRESH_MS"],
      message: `at most half of TOLLGATE_BUDGET_LEASE_TTL_MS (${c.TOLLGATE_BUDGET_LEASE_TTL_MS}), it is ${c.TOLLGATE_BUDGET_REFRESH_MS}: a lease renewed less often would lapse while its calls are in flight`,
    });
  const set = [c.TOLLGATE_OIDC_ISSUER, c.TOLLGATE_OIDC_CLIENT_ID, c.TOLLGATE_OIDC_CLIENT_SECRET].filter((v) => v !== undefined).length;
  if (set !== 0 && set !== 3)
    ctx.addIssue({ code: "custom", path: ["TOLLGATE_OIDC_ISSUER"], message: "TOLLGATE_OIDC_ISSUER, TOLLGATE_OIDC_CLIENT_ID and TOLLGATE_OIDC_CLIENT_SECRET all set, or none of them" });
});
/** One proxied provider as configured: where its upstream is, and its own further settings. */
export interface ProviderSetup {
  /** undefined when the provider has no default and its variable is unset: its route then says so. */
  baseUrl: string | undefined;
  /** What its `config.settings` schema read from the environment. */
  settings: unknown;
}

export type Config = z.infer<typeof ConfigSchema> & {
  /** Every proxied provider by name: the built-in ones and those named in TOLLGATE_PROVIDERS. */
  providers: Record<string, ProviderSetup>;
  /** Upstream API keys by provider name, from each provider's key variable (OPENAI_API_KEY, ...). */
  providerKeys: Record<string, string>;
  /**
   * The environment's set values, for the settings a part brings itself (each chat platform's,
   * in integrations/<platform>/settings.ts): read with readSettings.
   */
  env: Readonly<Record<string, string>>;
};

export class ConfigError extends Error {
  readonly kind = "config";
}

/** Reads the environment; a bad value names the variable and what was expected. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty value (`PORT=` in a .env file or compose file) means unset, so the default applies.
  const set = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1].trim() !== ""));
  const parsed = ConfigSchema.safeParse(set);
  const providers = providerSetups(set, parsed.data?.TOLLGATE_PROVIDERS ?? {});
  const issues = [...(parsed.error?.issues ?? []), ...providers.issues, ...retiredSettings(set)];
  if (parsed.success && issues.length === 0) return { ...parsed.data, providers: providers.setups, providerKeys: providers.keys, env: set };
  throw invalid(issues);
}

/** Settings no longer read, each with the one that replaced it: set, they would be ignored without a word. */
const RETIRED: Readonly<Record<string, string>> = {
  TOLLGATE_OUTBOX_MAX_ATTEMPTS: "TOLLGATE_OUTBOX_RETRY_SCHEDULE",
  TOLLGATE_OUTBOX_BACKOFF_MS: "TOLLGATE_OUTBOX_RETRY_SCHEDULE",
  TOLLGATE_OUTBOX_BACKOFF_MAX_MS: "TOLLGATE_OUTBOX_RETRY_SCHEDULE",
};

function retiredSettings(set: Readonly<Record<string, string>>) {
  return Object.entries(RETIRED)
    .filter(([name]) => Object.hasOwn(set, name))
    .map(([name, replacement]) => ({ path: [name], message: `it unset: it is no longer read; set ${replacement} instead` }));
}

const invalid = (issues: readonly { path: PropertyKey[]; message: string }[]) =>
  new ConfigError(`Invalid configuration:\n${issues.map((i) => `  ${i.path.map(String).join(".")}: expected ${i.message}`).join("\n")}`);

const settingsRead = new WeakMap<Config, Map<z.ZodType, unknown>>();

/**
 * A part's own settings (a chat platform's), read from the environment `config` was loaded from;
 * a bad value is a ConfigError worded as loadConfig words them. Read once per config.
 */
export function readSettings<T>(schema: z.ZodType<T>, config: Pick<Config, "env">): T {
  const known = settingsRead.get(config as Config) ?? new Map<z.ZodType, unknown>();
  settingsRead.set(config as Config, known);
  if (known.has(schema)) return known.get(schema) as T;
  const parsed = schema.safeParse(config.env);
  if (!parsed.success) throw invalid(parsed.error.issues);
  known.set(schema, parsed.data);
  return parsed.data;
}

/**
 * Each provider's slice of the environment, read by what its folder declares (src/providers/<name>/
 * index.ts `config`): its base URL variable, its key variable and any further settings.
 */
function providerSetups(set: Readonly<Record<string, string | undefined>>, named: Readonly<Record<string, string>>) {
  const setups: Record<string, ProviderSetup> = {};
  const keys: Record<string, string> = {};
  const issues: { path: PropertyKey[]; message: string }[] = [];
  const entries = [...builtInProviders().map((p) => [p, set[p.config.baseUrlVariable]] as const), ...Object.entries(named).map(([name, url]) => [providerNamed(name), url] as const)];
  for (const [provider, url] of entries) {
    const { config } = provider;
    const settings = config.settings.safeParse(set);
    if (!settings.success) {
      issues.push(...settings.error.issues);
      continue;
    }
    const base = url === undefined ? undefined : httpUrl.safeParse(url);
    if (base && !base.success) issues.push({ path: [config.baseUrlVariable], message: "an http:// or https:// URL" });
    setups[provider.name] = { baseUrl: base?.data ?? config.defaultBaseUrl(settings.data), settings: settings.data };
    const key = set[config.apiKeyVariable]?.trim();
    if (key) keys[provider.name] = key;
  }
  return { setups, keys, issues };
}
