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
});
