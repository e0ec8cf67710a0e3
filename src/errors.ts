/**
 * Every kind of error Tollgate answers with, in one place: its HTTP status, the title problem
 * details carry, and a stable `code` clients may branch on. Codes never change once published;
 * a new situation gets a new kind rather than a changed code.
 */
export const ERROR_KINDS = {
  invalid: { status: 400, title: "Bad Request", code: "invalid_request" },
  unauthorized: { status: 401, title: "Unauthorized", code: "unauthorized" },
  forbidden: { status: 403, title: "Forbidden", code: "forbidden" },
  not_found: { status: 404, title: "Not Found", code: "not_found" },
  conflict: { status: 409, title: "Conflict", code: "conflict" },
  /** Asked of a part this gateway was not set up with (a chat platform without its credentials). */
  not_configured: { status: 409, title: "Conflict", code: "not_configured" },
  too_large: { status: 413, title: "Payload Too Large", code: "payload_too_large" },
  unsupported_media_type: { status: 415, title: "Unsupported Media Type", code: "unsupported_media_type" },
  /** Too many failed attempts (of a secret): refused until a window passes, said in `retry-after`. */
  too_many_requests: { status: 429, title: "Too Many Requests", code: "too_many_requests" },
  internal: { status: 500, title: "Internal Server Error", code: "internal_error" },
  /** The ledger could not be written: the sender should send again. */
  storage_unavailable: { status: 503, title: "Storage unavailable", code: "storage_unavailable" },
  unavailable: { status: 503, title: "Service Unavailable", code: "service_unavailable" },
} as const satisfies Record<string, { status: number; title: string; code: string }>;

export type ErrorKind = keyof typeof ERROR_KINDS;

/** An error as a value: what kind it is and a sentence for the person who caused or meets it. */
export interface Failure<K extends ErrorKind = ErrorKind> {
  ok: false;
  kind: K;
  message: string;
}

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

/** A zod `error` option for strict objects: an unknown key is named, with the fields there are. */
export function unknownFieldError(what: string, fields: readonly string[]) {
  return (iss: { code?: string; keys?: readonly string[] }) =>
    iss.code === "unrecognized_keys" ? `unknown field ${(iss.keys ?? []).map((k) => `"${k}"`).join(", ")}; the fields of ${what} are ${fields.join(", ")}` : undefined;
}
