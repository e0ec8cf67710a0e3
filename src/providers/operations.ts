import type { Operation } from "./types.ts";
import { barePath } from "./wire.ts";

/*
 * Which requests are billable inference, per provider. Each provider lists its inference
 * endpoints (and batch reads, where the batch object reports usage); every other request is
 * forwarded and counted as an operation named after the API resource it touches (`files.list`,
 * `batches.retrieve`, `models.countTokens`), never recorded as usage: reading a result back,
 * listing, uploading and counting tokens cost nothing, and recording them would either bill a
 * result twice or fill the ledger with unpriced rows.
 */

export const INFERENCE: Operation = { kind: "inference" };

/** One rule: requests with this method whose path (query and trailing slashes left out) matches. */
export interface OperationRule {
  method: string;
  path: RegExp;
  operation: Operation;
}

const VERBS: Readonly<Record<string, [collection: string, item: string]>> = {
  GET: ["list", "retrieve"],
  POST: ["create", "update"],
  DELETE: ["delete", "delete"],
};

/**
 * The operation a request on one of `resources` (path segments such as `files`, `chat/completions`,
 * longest first) is named by: the resource and a verb from the method and whether an id follows.
 * A resource outside the list is `other`, so client-chosen paths cannot grow a metric's labels.
 */
function restOperation(method: string, path: string, resources: readonly string[]): Operation {
  for (const resource of resources) {
    const at = path.search(new RegExp(`(^|/)${resource}(/|$)`));
    if (at === -1) continue;
    const rest = path.slice(at).replace(/^\//, "").slice(resource.length).replace(/^\//, "");
    const [collection, item] = VERBS[method] ?? ["other", "other"];
    return { kind: "other", name: `${resource.replace(/\//g, ".")}.${rest === "" ? collection : item}` };
  }
  return { kind: "other", name: "other" };
}

/** A provider's classifier: the first rule that matches, else a request on one of its resources. */
export function operations(rules: readonly OperationRule[], resources: readonly string[]): (method: string, path: string) => Operation {
  const sorted = [...resources].sort((a, b) => b.length - a.length);
  return (method, raw) => {
    const path = barePath(raw);
    const verb = method.toUpperCase();
    for (const rule of rules) if (rule.method === verb && rule.path.test(path)) return rule.operation;
    return restOperation(verb, path, sorted);
  };
}

/** A rule for POST to a path ending in one of these endpoints. */
export const inferenceAt = (...endpoints: string[]): OperationRule => ({
  method: "POST",
  path: new RegExp(`(^|/)(${endpoints.join("|")})$`),
  operation: INFERENCE,
});
