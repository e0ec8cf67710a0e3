/*
 * Joining an upstream's base URL path with the path a client's SDK sent. SDKs put the API version
 * in their own paths (`/v1/chat/completions`, `/v1beta/models/...`), and the same SDKs document
 * base URLs that end with it (`OPENAI_BASE_URL=https://api.openai.com/v1`,
 * `https://api.groq.com/openai/v1`, `https://openrouter.ai/api/v1`). Copied as they are, the two
 * meet as `/v1/v1/...`. So a base URL works with or without its version segment: where the base
 * ends with what the client's path begins with, that part is sent once, and where both name a
 * version, the client's (the API its SDK speaks) wins.
 */

/** An API version segment: `v1`, `v2`, `v1beta`, `v1alpha2`. */
const VERSION = /^v\d+(?:(?:alpha|beta)\d*)?$/;

const segments = (path: string): string[] => path.split("/").filter((s) => s !== "");

/**
 * How many trailing segments of `base` the client's path repeats at its start, counting only an
 * overlap that holds a version segment: `/openai/v1` + `/openai/v1/chat` overlap by two, `/api/v1` +
 * `/v1/chat` by one, `/openai` + `/openai/deployments` by none (Azure's own path, not a doubling).
 */
function overlap(base: readonly string[], client: readonly string[]): number {
  for (let n = Math.min(base.length, client.length); n > 0; n--) {
    const tail = base.slice(base.length - n);
    if (tail.some((s) => VERSION.test(s)) && tail.every((s, i) => s === client[i])) return n;
  }
  return 0;
}

/** The upstream path for a client's path (which starts with `/`) under a base URL's path ("" for a host root). */
export function upstreamPath(basePath: string, clientPath: string): string {
  if (basePath === "") return clientPath;
  const base = segments(basePath);
  const client = segments(clientPath.split("?", 1)[0] ?? "");
  let keep = base.length - overlap(base, client);
  // `…/v1beta` with a client speaking `/v1/…`: the client's version, not both.
  if (keep === base.length && VERSION.test(base.at(-1) ?? "") && VERSION.test(client[0] ?? "")) keep--;
  if (keep === base.length) return basePath + clientPath;
  return (keep === 0 ? "" : `/${base.slice(0, keep).join("/")}`) + clientPath;
}

