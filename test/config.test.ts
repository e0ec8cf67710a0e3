import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError, loadConfig } from "../src/config.ts";

/** The ConfigError `env` raises; fails the test when it loads instead. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`);
    return err;
  }
  assert.fail(`${JSON.stringify(env)} was accepted`);
}

describe("loadConfig", () => {
  test("defaults with nothing set", () => {
    const config = loadConfig({});
    assert.equal(config.PORT, 8787);
    assert.equal(config.HOST, "0.0.0.0");
    assert.equal(config.TOLLGATE_DATA_DIR, "./.tollgate");
    assert.equal(config.TOLLGATE_TIMEZONE, "UTC");
    assert.equal(config.LOG_LEVEL, "info");
    assert.equal(config.TOLLGATE_BATCH_SIZE, 1000);
    assert.equal(config.TOLLGATE_BATCH_WAIT_MS, 20);
    assert.equal(config.TOLLGATE_PROXY_BATCH_WAIT_MS, 200);
    assert.equal(config.TOLLGATE_BATCH_WRITERS, 4);
    assert.equal(config.TOLLGATE_WORKERS, 1);
    for (const unset of ["DATABASE_URL", "TOLLGATE_ADMIN_TOKEN", "TOLLGATE_MASTER_KEY", "TOLLGATE_PRICES", "TOLLGATE_URL"] as const)
      assert.equal(config[unset], undefined, unset);
  });

  test("reads good values, numbers as numbers", () => {
    const config = loadConfig({
      PORT: "0",
      HOST: "127.0.0.1",
      DATABASE_URL: "postgresql://u:p@db.internal:5432/tollgate",
      TOLLGATE_DATA_DIR: "/var/lib/tollgate",
      TOLLGATE_ADMIN_TOKEN: "0123456789abcdef",
      TOLLGATE_MASTER_KEY: "ab".repeat(32),
      TOLLGATE_PRICES: "./prices.yaml",
      TOLLGATE_TIMEZONE: "Europe/Berlin",
      TOLLGATE_URL: "http://localhost:8787",
      LOG_LEVEL: "warn",
      TOLLGATE_BATCH_SIZE: "500",
      TOLLGATE_BATCH_WAIT_MS: "0",
    });
    assert.equal(config.PORT, 0);
    assert.equal(config.HOST, "127.0.0.1");
    assert.equal(config.DATABASE_URL, "postgresql://u:p@db.internal:5432/tollgate");
    assert.equal(config.TOLLGATE_TIMEZONE, "Europe/Berlin");
    assert.equal(config.TOLLGATE_BATCH_SIZE, 500);
    assert.equal(config.TOLLGATE_BATCH_WAIT_MS, 0);
    assert.equal(config.LOG_LEVEL, "warn");
    assert.equal(loadConfig({ DATABASE_URL: "postgres://localhost/x" }).DATABASE_URL, "postgres://localhost/x");
    assert.equal(loadConfig({ DATABASE_URL: "postgres://localhost/x", TOLLGATE_WORKERS: "2" }).TOLLGATE_WORKERS, 2);
    assert.equal(loadConfig({ TOLLGATE_MASTER_KEY: `${"A".repeat(43)}=` }).TOLLGATE_MASTER_KEY, `${"A".repeat(43)}=`);
  });

  test("other environment variables are ignored", () => {
    const config = loadConfig({ PATH: "/usr/bin", HOME: "/root", NODE_ENV: "production" });
    assert.equal(config.PORT, 8787);
    assert.ok(!("PATH" in config));
  });

  test("empty and blank values count as unset", () => {
    const blank = {
      PORT: "",
      HOST: "",
      DATABASE_URL: "",
      TOLLGATE_DATA_DIR: "",
      TOLLGATE_ADMIN_TOKEN: " ",
      TOLLGATE_MASTER_KEY: "",
      TOLLGATE_PRICES: "",
      TOLLGATE_TIMEZONE: "",
      TOLLGATE_URL: "  ",
      LOG_LEVEL: "",
      TOLLGATE_BATCH_SIZE: "",
      TOLLGATE_BATCH_WAIT_MS: "",
    };
    assert.deepEqual(loadConfig(blank), loadConfig({}));
  });

  describe("a bad value names the variable and what was expected", () => {
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ PORT: "abc" }, "PORT", /whole number from 0 to 65535/],
      [{ PORT: "70000" }, "PORT", /whole number from 0 to 65535/],
      [{ PORT: "-1" }, "PORT", /whole number from 0 to 65535/],
      [{ PORT: "80.5" }, "PORT", /whole number from 0 to 65535/],
      [{ DATABASE_URL: "mysql://x" }, "DATABASE_URL", /postgres:\/\/ or postgresql:\/\/ URL/],
      [{ DATABASE_URL: "localhost:5432" }, "DATABASE_URL", /postgres:\/\/ or postgresql:\/\/ URL/],
      [{ TOLLGATE_TIMEZONE: "Mars/Base" }, "TOLLGATE_TIMEZONE", /IANA time zone/],
      [{ TOLLGATE_MASTER_KEY: "short" }, "TOLLGATE_MASTER_KEY", /32 bytes as base64 \(44 characters\) or hex \(64 characters\)/],
      [{ TOLLGATE_MASTER_KEY: "ab".repeat(31) }, "TOLLGATE_MASTER_KEY", /32 bytes/],
      [{ TOLLGATE_ADMIN_TOKEN: "too-short" }, "TOLLGATE_ADMIN_TOKEN", /at least 16 characters/],
      [{ LOG_LEVEL: "loud" }, "LOG_LEVEL", /one of fatal, error, warn, info, debug, trace, silent/],
      [{ TOLLGATE_URL: "localhost:8787" }, "TOLLGATE_URL", /http:\/\/ or https:\/\/ URL/],
      [{ TOLLGATE_BATCH_SIZE: "0" }, "TOLLGATE_BATCH_SIZE", /whole number from 1 to 10000/],
      [{ TOLLGATE_BATCH_WAIT_MS: "soon" }, "TOLLGATE_BATCH_WAIT_MS", /whole number from 0 to 10000/],
      [{ TOLLGATE_BATCH_WRITERS: "0" }, "TOLLGATE_BATCH_WRITERS", /whole number from 1 to 16/],
      [{ TOLLGATE_WORKERS: "0" }, "TOLLGATE_WORKERS", /whole number from 1 to 64/],
      [{ TOLLGATE_WORKERS: "two" }, "TOLLGATE_WORKERS", /whole number from 1 to 64/],
      // PGlite lives in one process: workers need PostgreSQL.
      [{ TOLLGATE_WORKERS: "2" }, "TOLLGATE_WORKERS", /1 without DATABASE_URL \(it is 2\): the embedded PGlite database .* set DATABASE_URL/],
      // Leases are renewed at each refresh, so one must come well within a lease's life.
      [{ TOLLGATE_BUDGET_REFRESH_MS: "20000" }, "TOLLGATE_BUDGET_REFRESH_MS", /at most half of TOLLGATE_BUDGET_LEASE_TTL_MS \(30000\), it is 20000/],
      // Each provider's variables are named by its folder and checked with the rest.
      [{ OPENAI_BASE_URL: "api.openai.com" }, "OPENAI_BASE_URL", /http:\/\/ or https:\/\/ URL/],
      [{ AZURE_OPENAI_BASE_URL: "ftp://myres.openai.azure.com" }, "AZURE_OPENAI_BASE_URL", /http:\/\/ or https:\/\/ URL/],
      [{ TOLLGATE_PROVIDERS: "google=https://example.test" }, "TOLLGATE_PROVIDERS", /not a built-in provider/],
    ];
    for (const [env, name, expected] of cases) {
      test(`${name}=${Object.values(env)[0]}`, () => {
        const err = configError(env);
        const line = err.message.split("\n").find((l) => l.trim().startsWith(`${name}:`));
        assert.ok(line, `${name} is named in:\n${err.message}`);
        assert.match(line, expected);
        assert.match(line, new RegExp(`^\\s*${name}: expected `));
      });
    }
  });

  test("providers: built-in ones with their defaults and keys, named ones by their normalised name", () => {
    const config = loadConfig({ TOLLGATE_PROVIDERS: "x-ai=https://api.x.ai,my-vllm=http://10.0.0.5:8000", XAI_API_KEY: "xai-key-123", MY_VLLM_API_KEY: "vllm-key", AZURE_OPENAI_API_KEY: "az-key-123" });
    const names = ["openai", "anthropic", "gemini", "azure", "xai", "my-vllm"];
    assert.deepEqual(
      Object.fromEntries(names.map((name) => [name, config.providers[name]?.baseUrl])),
      {
        openai: "https://api.openai.com",
        anthropic: "https://api.anthropic.com",
        gemini: "https://generativelanguage.googleapis.com",
        // An Azure resource has no default endpoint: its route says AZURE_OPENAI_BASE_URL is unset.
        azure: undefined,
        xai: "https://api.x.ai",
        "my-vllm": "http://10.0.0.5:8000",
      },
    );
    assert.deepEqual(config.providerKeys, { azure: "az-key-123", xai: "xai-key-123", "my-vllm": "vllm-key" });
  });

  test("every bad value is listed at once", () => {
    const err = configError({ PORT: "abc", TOLLGATE_TIMEZONE: "Mars/Base", TOLLGATE_ADMIN_TOKEN: "short" });
    for (const name of ["PORT", "TOLLGATE_TIMEZONE", "TOLLGATE_ADMIN_TOKEN"]) assert.match(err.message, new RegExp(`^\\s*${name}: `, "m"));
  });

  test("a retired outbox setting refuses to start, naming its replacement", () => {
    for (const name of ["TOLLGATE_OUTBOX_MAX_ATTEMPTS", "TOLLGATE_OUTBOX_BACKOFF_MS", "TOLLGATE_OUTBOX_BACKOFF_MAX_MS"]) {
      const err = configError({ [name]: "8" });
      assert.match(err.message, new RegExp(`^\\s*${name}: expected it unset: it is no longer read; set TOLLGATE_OUTBOX_RETRY_SCHEDULE instead$`, "m"));
    }
    // Blank is unset, as for every setting.
    assert.deepEqual(loadConfig({ TOLLGATE_OUTBOX_MAX_ATTEMPTS: " " }).TOLLGATE_OUTBOX_RETRY_SCHEDULE, loadConfig({}).TOLLGATE_OUTBOX_RETRY_SCHEDULE);
  });

  test("a secret that is wrong is not echoed back", () => {
    const err = configError({ TOLLGATE_ADMIN_TOKEN: "s3cret-tok", TOLLGATE_MASTER_KEY: "hunter2" });
    assert.doesNotMatch(err.message, /s3cret-tok|hunter2/);
  });
});
