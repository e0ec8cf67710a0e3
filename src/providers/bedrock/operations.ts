/*
 * Bedrock Runtime's paths, as its REST API names them: `/model/{modelId}/{operation}`, where
 * `modelId` is a model id (`anthropic.claude-sonnet-4-5-20250929-v1:0`), an inference profile id
 * (`us.anthropic...`, `global.anthropic...`) or an ARN of either, URL-encoded by the SDK
 * (`arn%3Aaws%3Abedrock%3A...%2Fus.anthropic...`). The model is only ever in the path: request
 * bodies do not name it.
 */

/** What a call does, by the last segment of its path. */
export type Operation =
  /** Converse: a whole answer whose `usage` is Bedrock's TokenUsage. */
  | "converse"
  /** ConverseStream: an event stream ending in a `metadata` event with that usage. */
  | "converse-stream"
  /** InvokeModel: the model's own request and answer bodies (Anthropic's Messages for Claude). */
  | "invoke"
  /** InvokeModelWithResponseStream: `chunk` events carrying the model's own stream events, base64. */
  | "invoke-with-response-stream"
  /** CountTokens: free, no usage. */
  | "count-tokens";

const OPERATIONS: ReadonlySet<string> = new Set<Operation>(["converse", "converse-stream", "invoke", "invoke-with-response-stream", "count-tokens"]);

/** A Bedrock model call: the model as the path names it (decoded) and the operation. */
export interface ModelCall {
  model: string;
  operation: Operation;
}

const decode = (segment: string): string | undefined => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
};

/**
 * The resource an ARN names, for the two kinds that are priced as a model: a foundation model
 * (`arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-...`) and a system-defined
 * inference profile (`arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic...`).
 * Other resources (application inference profiles, provisioned or custom models) have opaque ids
 * that name no model; they are kept whole, so the ledger shows what was called and leaves it unpriced.
 */
const PRICED_RESOURCES = new Set(["foundation-model", "inference-profile"]);
const ARN = /^arn:aws[a-z-]*:bedrock:[a-z0-9-]*:\d*:([a-z-]+)\/(.+)$/;

/**
 * The model id a path segment names, as the catalog prices it: URL-decoded, with an ARN of a
 * foundation model or inference profile reduced to its id. The inference profile's geography
 * prefix (`us.`, `eu.`, `apac.`, `global.`) stays: Bedrock bills cross-region (geographic)
 * profiles and global ones at different rates, and the catalog's AWS entries tell them apart.
 */
export function bedrockModelId(segment: string): string | undefined {
  const decoded = decode(segment)?.trim();
  if (!decoded) return undefined;
  const arn = ARN.exec(decoded);
  if (!arn) return decoded;
  const [, resource = "", id = ""] = arn;
  return PRICED_RESOURCES.has(resource) ? id : `${resource}/${id}`;
}

/** The model call a path (after `/bedrock`, with or without a query) makes, or undefined for any other path. */
export function modelCall(path: string): ModelCall | undefined {
  const parts = (path.split("?", 1)[0] ?? "").split("/");
  // ["", "model", "{modelId}", "{operation}"]: the SDK encodes "/" inside an ARN, so the id is one segment.
  if (parts.length !== 4 || parts[0] !== "" || parts[1] !== "model") return undefined;
  const operation = parts[3] ?? "";
  const model = bedrockModelId(parts[2] ?? "");
  if (!model || !OPERATIONS.has(operation)) return undefined;
  return { model, operation: operation as Operation };
}
