import { inspectOpenAI, openAIWire } from "../openai/wire.ts";
import type { ProviderWire, RequestFacts } from "../types.ts";
import { bearerToken, headerValue, keyInHeader } from "../wire.ts";

/*
 * Azure OpenAI speaks OpenAI's API (the same bodies, answers, streams and usage) under its own paths
 * and key placement. The `AzureOpenAI` client of the `openai` SDK calls
 * `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...` for the endpoints
 * bound to a deployment, `{endpoint}/openai/{path}?api-version=...` for the others (Responses), and
 * Azure's v1 API is `{endpoint}/openai/v1/...`; all pass through unchanged. The key travels in
 * `api-key`; a Microsoft Entra token in `Authorization: Bearer`. On Azure a request's `model` names
 * a deployment, and the answer's `model` the model that served it.
 */

/** `/openai/deployments/{deployment}/...`: the deployment, decoded. */
function deploymentIn(path: string): string | undefined {
  const segment = /^\/openai\/deployments\/([^/]+)\//.exec(path)?.[1];
  if (segment === undefined) return undefined;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * Whether the api-version accepts `stream_options` (Azure added it in 2024-09-01-preview; older
 * versions refuse unknown parameters). The v1 API (`/openai/v1/...`, versions `v1`, `preview`, `latest`) always does.
 */
export function takesStreamOptions(apiVersion: string | null): boolean {
  if (apiVersion === null) return false;
  const date = /^(\d{4}-\d{2}-\d{2})/.exec(apiVersion)?.[1];
  return date === undefined ? /^(v1|preview|latest)$/.test(apiVersion) : date >= "2024-09-01";
}

/** Azure's error shape (`{"error": {"code", "message"}}`), as its REST reference documents ErrorResponse. */
function azureError(_status: number, code: string, message: string, details: Record<string, unknown> = {}) {
  return { error: { code, message, ...details } };
}

const openAI = openAIWire("azure");

export const azureWire: ProviderWire = {
  ...openAI,
  clientKey: (headers) => headerValue(headers, "api-key") ?? bearerToken(headers),
  credentialHeaders: ["api-key", "authorization"],
  authorize: keyInHeader("api-key"),
  inspect(path, body, query, bytes): RequestFacts {
    const facts = inspectOpenAI(path, body, path.startsWith("/openai/v1/") || takesStreamOptions(query.get("api-version")), bytes);
    const deployment = deploymentIn(path) ?? facts.model;
    return deployment === undefined ? facts : { ...facts, tags: { deployment } };
  },
  error: azureError,
};
