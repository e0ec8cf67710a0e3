import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { pino } from "pino";
import { telegram } from "../integrations/telegram/index.ts";
import { createGateway } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { startFakeTelegram } from "./fakes/telegram-api.ts";
import { openTestDatabase } from "./helpers/db.ts";
import { waitFor } from "./helpers/wait.ts";

test("a start-up step that fails is logged by its own name: setMyCommands alone, when getMe worked (issue 14, item 12)", async () => {
  const tg = await startFakeTelegram();
  const dataDir = mkdtempSync(join(tmpdir(), "tollgate-tg-start-"));
  const database = await openTestDatabase();
  const lines: { msg: string }[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) });
  // Telegram refuses the command list once (429); getMe answers as usual.
  tg.rateLimit("setMyCommands", 1);
  const config = loadConfig({
    TOLLGATE_DATA_DIR: dataDir,
    TOLLGATE_ADMIN_TOKEN: "telegram-startup-admin-token",
    TOLLGATE_JOBS: "off",
    TELEGRAM_BOT_TOKEN: tg.token,
    TELEGRAM_WEBHOOK_SECRET: "telegram-startup-secret",
    TELEGRAM_API_ROOT: tg.apiRoot,
  });
  const gateway = await createGateway(config, logger, database, [telegram]);
  try {
    await waitFor("the start-up failure to be logged", () => lines.some((l) => /setMyCommands/.test(l.msg)));
    assert.equal(tg.callsOf("getMe").length, 1);
    const failures = lines.filter((l) => /failed/.test(l.msg)).map((l) => l.msg);
    assert.deepEqual(failures, ["telegram start-up setMyCommands failed"]);
  } finally {
    await gateway.close();
    await database.close();
    await tg.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
