import { anthropic } from "./anthropic.ts";
import { gemini } from "./gemini.ts";
import { openai } from "./openai.ts";
import type { ExtractResult, UsageExtractor } from "./types.ts";

export { anthropic } from "./anthropic.ts";
export { gemini } from "./gemini.ts";
export { decimalString, openAIServiceTier, openai } from "./openai.ts";
export type { ExtractResult, NormalisedUsage, UsageError, UsageExtractor } from "./types.ts";

/**
 * Provider names as instrumentations spell them (OTel `gen_ai.provider.name` and the older
 * `gen_ai.system`, OpenLLMetry, the Vercel AI SDK's `openai.chat`-style ids) → the names Tollgate
 * reports and routes by.
 */
const PROVIDER_ALIASES: Readonly<Record<string, string>> = {
  google: "gemini",
  "gcp.gemini": "gemini",
  "gcp.gen_ai": "gemini",
  "gcp.vertex_ai": "gemini",
  vertex: "gemini",
  vertexai: "gemini",
  vertex_ai: "gemini",
  x_ai: "xai",
  "x-ai": "xai",
  mistral_ai: "mistral",
  mistralai: "mistral",
  "aws.bedrock": "bedrock",
  "amazon-bedrock": "bedrock",
  aws: "bedrock",
  "azure.ai.openai": "azure",
  "azure.ai.inference": "azure",
  "azure-openai": "azure",
};

export function normaliseProvider(name: string): string {
  const key = name.trim().toLowerCase();
  const whole = PROVIDER_ALIASES[key];
  if (whole) return whole;
  // Claude through a cloud (`vertex.anthropic.messages`) is reported as Anthropic, its maker and price list.
  if (key.includes("anthropic")) return "anthropic";
  const head = key.split(".")[0] ?? key;
  return PROVIDER_ALIASES[head] ?? head;
}

/** Providers whose usage follows another's format. */
const EXTRACTOR_BY_PROVIDER: Readonly<Record<string, UsageExtractor>> = {
  openai,
  azure: openai,
  xai: openai,
  mistral: openai,
  groq: openai,
  deepseek: openai,
  openrouter: openai,
  anthropic,
  gemini,
};

/** Detection order does not matter: the shapes' detectors exclude each other. */
const EXTRACTORS: readonly UsageExtractor[] = [openai, anthropic, gemini];

/**
 * The shape decides, because the format follows the API a model was reached through, not its
 * vendor: Claude through OpenRouter or Anthropic's OpenAI-compatible endpoint reports OpenAI usage,
 * Claude on Vertex reports Anthropic usage. When no shape fits, the hint's extractor explains
 * what its provider's usage needs.
 */
function extractorFor(raw: unknown, providerHint?: string): UsageExtractor | undefined {
  const hinted = providerHint ? EXTRACTOR_BY_PROVIDER[normaliseProvider(providerHint)] : undefined;
  if (hinted?.detect(raw)) return hinted;
  return EXTRACTORS.find((e) => e.detect(raw)) ?? hinted;
}

/** Normalises a provider's usage object (or the response carrying it). */
export function extractUsage(raw: unknown, providerHint?: string): ExtractResult {
  const extractor = extractorFor(raw, providerHint);
  if (extractor) return extractor.extract(raw);
  return {
    ok: false,
    error: {
      path: "",
      message:
        "expected a provider usage object: OpenAI (prompt_tokens, or input_tokens with total_tokens), " +
        "Anthropic (input_tokens, output_tokens) or Gemini usageMetadata (promptTokenCount)",
    },
  };
}
