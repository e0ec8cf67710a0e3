import { pino } from "pino";

/** A pino logger whose lines the test can read. */
export function capturingLogger() {
  const lines: string[] = [];
  return { logger: pino({ level: "info" }, { write: (line: string) => void lines.push(line) }), lines };
}
