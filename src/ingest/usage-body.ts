import type { Failure, FieldError } from "../errors.ts";

export const MAX_BODY_BYTES = 5 * 1024 * 1024;
export const MAX_EVENTS = 10_000;

/** One item of a usage post, before validation: its raw value, or why it could not be read. */
export type RawItem = { index: number; value: unknown; error?: undefined } | { index: number; value?: undefined; error: FieldError };

export type BodyError = Omit<Failure<"invalid" | "too_large">, "ok">;

export type BodyFormat = "json" | "ndjson" | "cloudevent" | "cloudevents-batch";

export function formatOf(contentType: string | undefined): BodyFormat | null {
  const type = (contentType ?? "application/json").split(";")[0]!.trim().toLowerCase();
  switch (type) {
    case "application/json":
    case "":
      return "json";
    case "application/x-ndjson":
    case "application/ndjson":
    case "application/jsonl":
      return "ndjson";
    case "application/cloudevents+json":
      return "cloudevent";
    case "application/cloudevents-batch+json":
      return "cloudevents-batch";
    default:
      return null;
  }
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

/**
 * Splits a usage post into items. A body that cannot be read at all is an error; a single bad
 * NDJSON line is only that item's error, so the lines beside it are kept.
 */
export function splitBody(format: BodyFormat, body: string): { ok: true; items: RawItem[] } | { ok: false; error: BodyError } {
  let items: RawItem[];
  if (format === "ndjson") {
    items = body
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line.length > 0)
      .map((line, index) => {
        const parsed = parseJson(line);
        return parsed.ok ? { index, value: parsed.value } : { index, error: { path: "", message: `line ${index + 1} is not JSON: ${parsed.message}` } };
      });
  } else {
    const parsed = parseJson(body);
    if (!parsed.ok) return { ok: false, error: { kind: "invalid", message: `body is not JSON: ${parsed.message}` } };
    const batch = format === "json" ? Array.isArray(parsed.value) : format === "cloudevents-batch";
    if (batch && !Array.isArray(parsed.value))
      return { ok: false, error: { kind: "invalid", message: "a CloudEvents batch must be a JSON array" } };
    const values = batch ? (parsed.value as unknown[]) : [parsed.value];
    items = values.map((value, index) => ({ index, value }));
  }
  if (items.length > MAX_EVENTS)
    return { ok: false, error: { kind: "too_large", message: `at most ${MAX_EVENTS} events per request, got ${items.length}` } };
  if (items.length === 0) return { ok: false, error: { kind: "invalid", message: "the body holds no events" } };
  return { ok: true, items };
}
