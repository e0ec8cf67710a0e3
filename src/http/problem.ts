import type { Response } from "express";
import { ERROR_KINDS, type ErrorKind } from "../errors.ts";

/**
 * RFC 9457 problem details: the one error shape every HTTP answer of ours uses. Status, title and
 * `code` come from the kind's entry in the catalogue (src/errors.ts); `detail` is the message.
 */
export function sendProblem(res: Response, kind: ErrorKind, detail: string, extra: Record<string, unknown> = {}): void {
  const { status, title, code } = ERROR_KINDS[kind];
  res.status(status).type("application/problem+json").send(JSON.stringify({ type: "about:blank", title, status, code, detail, ...extra }));
}
