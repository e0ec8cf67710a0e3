import { LogLevel, type Logger as SlackLogger } from "@slack/bolt";
import type { Logger } from "../../src/logger.ts";

/**
 * The Slack SDK's log lines go to the gateway's logger as text; its debug and info lines (request
 * bodies among them) go nowhere. Errors are written by kind and message, never with their payloads.
 */
export function slackSdkLogger(logger: Logger): SlackLogger {
  let level = LogLevel.WARN;
  const text = (parts: unknown[]) => parts.map((p) => (p instanceof Error ? `${p.name}: ${p.message}` : String(p))).join(" ");
  return {
    debug: () => {},
    info: () => {},
    warn: (...parts: unknown[]) => logger.warn({ component: "slack" }, text(parts)),
    error: (...parts: unknown[]) => logger.error({ component: "slack" }, text(parts)),
    setLevel: (l: LogLevel) => void (level = l),
    getLevel: () => level,
    setName: () => {},
  };
}
