import type { Response } from "express";

/** A field that failed validation: where, and what was expected there. */
export interface FieldError {
  path: string;
  message: string;
}

/** Turns a zod issue path into the dotted form API answers use (`tags.env`, `items[3].model`). */
export function pathOf(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, part) => {
    if (typeof part === "number") return `${out}[${part}]`;
    return out ? `${out}.${String(part)}` : String(part);
  }, "");
}

export function fieldErrors(issues: readonly { path: readonly PropertyKey[]; message: string }[]): FieldError[] {
  return issues.map((i) => ({ path: pathOf(i.path), message: i.message }));
}

/** RFC 9457 problem details: the one error shape every HTTP answer of ours uses. */
export function sendProblem(
  res: Response,
  status: number,
  title: string,
  detail: string,
  extra: Record<string, unknown> = {},
): void {
  res.status(status).type("application/problem+json").send(JSON.stringify({ type: "about:blank", title, status, detail, ...extra }));
}

/** A zod `error` option for strict objects: an unknown key is named, with the fields there are. */
export function unknownFieldError(what: string, fields: readonly string[]) {
  return (iss: { code?: string; keys?: readonly string[] }) =>
    iss.code === "unrecognized_keys" ? `unknown field ${(iss.keys ?? []).map((k) => `"${k}"`).join(", ")}; the fields of ${what} are ${fields.join(", ")}` : undefined;
}
