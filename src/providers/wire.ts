import { z } from "zod";
import type { Authorization, CallUsage, HeaderBag, RequestFacts, UpstreamRequest } from "./types.ts";
import { isRecord, type ExtractResult, type NormalisedUsage, type UsageExtractor } from "./usage.ts";

/*
 * What every provider module shares: reading credentials out of headers, tolerant request-body
 * schemas, and turning an extractor's answer into a CallUsage. Provider modules keep only what
 * differs between APIs.
 */

export { isRecord };

/** A header's trimmed value; a repeated header counts as its first value, an empty one as absent. */
export function headerValue(headers: HeaderBag, name: string): string | undefined {
  const raw = headers[name];
  const value = (Array.isArray(raw) ? raw[0] : raw)?.trim();
  return value ? value : undefined;
}

/** The token of `Authorization: Bearer <token>`; auth schemes are case-insensitive (RFC 9110 §11.1). */
export function bearerToken(headers: HeaderBag): string | undefined {
  const match = /^Bearer[ \t]+(\S+)$/i.exec(headerValue(headers, "authorization") ?? "");
  return match?.[1];
}

/** Authorisation by the provider key in one header (`prefix` before it, as in `Bearer `); nothing without a key. */
export const keyInHeader =
  (header: string, prefix = "") =>
  (_request: UpstreamRequest, key: string | undefined): Authorization =>
    key === undefined ? undefined : { [header]: prefix + key };

/** The path without its query string: routes hand over paths with or without one. */
export function pathOnly(path: string): string {
  const query = path.indexOf("?");
  return query === -1 ? path : path.slice(0, query);
}

/** The path without its query string and trailing slashes (by hand: a `/\/+$/` replace was a visible cost of every call). */
export function barePath(path: string): string {
  const p = pathOnly(path);
  let end = p.length;
  while (end > 0 && p.charCodeAt(end - 1) === 47) end--;
  return end === p.length ? p : p.slice(0, end);
}

/**
 * Request bodies are the client's: a field of the wrong type is the upstream's to reject, so it is
 * read as absent here rather than losing the other fields with it.
 */
export const lenient = <T extends z.ZodType>(schema: T) => schema.optional().catch(undefined);
export const someText = lenient(z.string().min(1));
export const someFlag = lenient(z.boolean());

/** Parses with a lenient schema; a body that is not a JSON object gives an empty object. */
export function readBody<T extends z.ZodType>(schema: T, body: unknown): Partial<z.infer<T>> {
  return (schema.safeParse(body).data ?? {}) as Partial<z.infer<T>>;
}

export function requestFacts(facts: Partial<RequestFacts>): RequestFacts {
  const known = { model: facts.model, stream: facts.stream ?? false, user: facts.user, rewritten: facts.rewritten };
  return facts.tags ? { ...known, tags: facts.tags } : known;
}

/** JSON text to a value, or undefined: a stream event that is not JSON is forwarded, not judged. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export const usageFrom = (result: ExtractResult): NormalisedUsage | undefined => (result.ok ? result.usage : undefined);

export const textOf = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined);

/**
 * Usage of an answer envelope that carries its usage under `usageKey`: nothing when there is none
 * (errors, count-tokens answers, background jobs), the extractor's reading otherwise. The model is
 * the answer's own (`modelKey`), which names the snapshot that served the call.
 */
export function envelopeUsage(extractor: UsageExtractor, envelope: unknown, usageKey: string, modelKey: string): CallUsage {
  if (!isRecord(envelope)) return { usage: undefined, model: undefined };
  const usage = isRecord(envelope[usageKey]) ? usageFrom(extractor.extract(envelope)) : undefined;
  return { usage, model: textOf(envelope[modelKey]) };
}

/** The event's name, or for streams that send only `data:` lines, the `type` its JSON opens with. */
export function eventType(event: { event: string | undefined; data: string }): string | undefined {
  if (event.event !== undefined) return event.event;
  return /^\s*\{\s*"type"\s*:\s*"([^"]+)"/.exec(event.data)?.[1];
}
