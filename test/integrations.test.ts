import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { integrations } from "../integrations/index.ts";
import { loadConfig } from "../src/config.ts";
import { loadIntegrations } from "../src/integration.ts";

/*
 * The entry point's list of platforms: each is loaded only when the config turns it on or one of
 * its commands runs, so the list must name each platform's commands as the platform does.
 */

const platforms = async (env: Record<string, string>, command?: string) =>
  (await loadIntegrations(integrations, loadConfig({ TOLLGATE_DATA_DIR: "/tmp", ...env }), command)).map((i) => i.platform);

describe("integration sources", () => {
  test("each source loads its platform, and names exactly the CLI commands it brings", async () => {
    for (const source of integrations) {
      const loaded = await source.load();
      assert.equal(loaded.platform, source.platform);
      assert.deepEqual(Object.keys(loaded.cli ?? {}).sort(), [...(source.commands ?? [])].sort(), source.platform);
    }
  });

  test("only configured platforms are loaded, plus the one whose command runs", async () => {
    assert.deepEqual(await platforms({}), ["webhook"]);
    assert.deepEqual(await platforms({}, "spend"), ["webhook"]);
    assert.deepEqual(await platforms({ SLACK_BOT_TOKEN: "xoxb-1-2-abc", SLACK_SIGNING_SECRET: "0123456789abcdef0123" }), ["webhook", "slack"]);
    assert.deepEqual(await platforms({ TELEGRAM_BOT_TOKEN: "123456789:AAEabcdefghijklmnopqrstuvwxyz0123456", TELEGRAM_MODE: "polling" }), ["webhook", "telegram"]);
    assert.deepEqual(await platforms({ TEAMS_AUTH: "off" }), ["webhook", "teams"]);
    assert.deepEqual(await platforms({}, "teams-package"), ["webhook", "teams"]);
    assert.deepEqual(await platforms({}, "telegram"), ["webhook", "telegram"]);
  });

  test("each platform reads its own settings: a bad value stops start-up naming the variable, and the gateway's config holds none of them", async () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ SLACK_BOT_TOKEN: "xoxp-user-token" }, /SLACK_BOT_TOKEN: expected a bot token, starting with xoxb-/],
      [{ SLACK_BOT_TOKEN: "xoxb-1-2-abc" }, /SLACK_SIGNING_SECRET: expected the app's signing secret, required when SLACK_BOT_TOKEN is set/],
      [{ TELEGRAM_MODE: "push" }, /TELEGRAM_MODE: expected webhook or polling/],
      [{ TELEGRAM_BOT_TOKEN: "123456789:AAEabcdefghijklmnopqrstuvwxyz0123456" }, /TELEGRAM_WEBHOOK_SECRET: expected .*required when TELEGRAM_BOT_TOKEN is set in webhook mode/],
      [{ MicrosoftAppId: "not-a-guid" }, /MicrosoftAppId: expected the bot's Microsoft app id, a GUID/],
    ];
    for (const [env, message] of bad) await assert.rejects(platforms(env), message, JSON.stringify(env));
    const config = loadConfig({ SLACK_BOT_TOKEN: "xoxb-1-2-abc", SLACK_SIGNING_SECRET: "0123456789abcdef0123", TEAMS_AUTH: "off" });
    assert.ok(!("SLACK_BOT_TOKEN" in config) && !("TEAMS_AUTH" in config));
  });
});
