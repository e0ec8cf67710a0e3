import type { KeyInfo } from "../keys/api-keys.ts";
import type { Attribution } from "../ledger/event.ts";
import type { RequestFacts } from "../providers/types.ts";
import type { Failure } from "../errors.ts";

const LABEL = /^[^\u0000-\u001f]{1,200}$/;
const header = (headers: Record<string, string | string[] | undefined>, name: string): string | null => {
  const value = headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  return text !== undefined && LABEL.test(text.trim()) ? text.trim() : null;
};

/**
 * `x-tollgate-tags: env=prod,tier=free` → a string map; malformed pairs are left out. A `__proto__`
 * key is refused by name, as /v1/usage refuses it: an object will not hold it as a key, so it would
 * vanish from the event without a word.
 */
export function parseTags(text: string | null): { ok: true; tags: Record<string, string> } | Failure<"invalid"> {
  const tags: Record<string, string> = {};
  for (const pair of (text ?? "").split(",")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    const key = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (key === "__proto__") return { ok: false, kind: "invalid", message: "x-tollgate-tags: __proto__ cannot be a tag key; choose another name" };
    if (key && key.length <= 100 && value.length <= 500) tags[key] = value;
  }
  return { ok: true, tags };
}

/** The request's `x-tollgate-tags`, read as parseTags reads them. */
export const headerTags = (headers: Record<string, string | string[] | undefined>) => parseTags(header(headers, "x-tollgate-tags"));

/** The Tollgate headers: read here, and never sent upstream. */
export const ATTRIBUTION_HEADERS = ["x-tollgate-team", "x-tollgate-project", "x-tollgate-feature", "x-tollgate-user", "x-tollgate-session", "x-tollgate-tags"];

/**
 * The key's own attribution first; headers fill only what the key leaves open, and the end user
 * named in the request body (OpenAI `user`, Anthropic `metadata.user_id`) comes last. Tags the
 * request itself implies (Azure's deployment) are facts, and win over a header's tag of that name.
 * `tags` are the header's, read by headerTags before the body (a refusal is answered unread).
 */
export function attribute(
  key: Pick<KeyInfo, "id" | "team" | "project" | "feature" | "user"> | null,
  headers: Record<string, string | string[] | undefined>,
  facts: Pick<RequestFacts, "user" | "tags">,
  tags: Record<string, string>,
): Attribution {
  const bodyUser = facts.user;
  return {
    team: key?.team ?? header(headers, "x-tollgate-team"),
    project: key?.project ?? header(headers, "x-tollgate-project"),
    feature: key?.feature ?? header(headers, "x-tollgate-feature"),
    user: key?.user ?? header(headers, "x-tollgate-user") ?? (bodyUser && LABEL.test(bodyUser) ? bodyUser : null),
    session: header(headers, "x-tollgate-session"),
    tags: facts.tags ? { ...tags, ...facts.tags } : tags,
    api_key_id: key?.id ?? null,
  };
}
