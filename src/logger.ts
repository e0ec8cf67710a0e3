import { pino } from "pino";

export type Logger = pino.Logger;

/** JSON logs; anything that could carry a secret is redacted before it is written. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    redact: {
      paths: ["req.headers.authorization", "req.headers.cookie", 'req.headers["x-api-key"]', "key", "secret", "token"],
      censor: "[redacted]",
    },
  });
}
