import { anthropic } from "./anthropic/index.ts";
import { azure } from "./azure/index.ts";
import { bedrock } from "./bedrock/index.ts";
import { gemini } from "./gemini/index.ts";
import { knownCompatible, openAICompatible, openai } from "./openai/index.ts";
import type { Provider } from "./types.ts";
import type { ExtractResult, UsageExtractor } from "./usage.ts";

/*
 * The registry: every provider with its own API, one line each. Config, pricing, the proxy and every
 * ingest door read providers from here and nowhere else. Adding a provider is its folder plus its
 * line in BUILT_IN (docs/providers.md).
 */

/** Providers with their own API: each mounted at `/<name>` whether or not a key is configured. */
const BUILT_IN: readonly Provider[] = [openai, anthropic, gemini, azure, bedrock];

export const builtInProviders = (): readonly Provider[] => BUILT_IN;

/** Every provider a name can resolve to without configuration: the built-in ones and the known OpenAI-compatible ones. */
const KNOWN: readonly Provider[] = [...BUILT_IN, ...knownCompatible()];

/** Every spelling (name and aliases, lower case) → the provider's name. */
const SPELLINGS: ReadonlyMap<string, string> = new Map(KNOWN.flatMap((p) => [[p.name, p.name] as const, ...p.aliases.map((a) => [a, p.name] as const)]));
const NAMES: ReadonlySet<string> = new Set(KNOWN.map((p) => p.name));

/**
 * A provider's name as Tollgate records and routes it, whichever door it came through and however
 * the sender spelled it: `x-ai` and `xai`, `google` and `gemini`, `Azure` and `azure` come out the
 * same. Instrumentations send dotted ids (`openai.chat`, `google.generative-ai`,
 * `vertex.anthropic.messages`): the part naming a provider decides, its own name before an alias,
 * since a model reached through a cloud is billed at its maker's prices.
 */
export function normaliseProvider(name: string): string {
  const key = name.trim().toLowerCase();
  const whole = SPELLINGS.get(key);
  if (whole) return whole;
  const parts = key.split(".");
  const named = parts.find((part) => NAMES.has(part)) ?? parts.find((part) => SPELLINGS.has(part));
  if (named) return SPELLINGS.get(named)!;
  return parts[0] ?? key;
}

/** A built-in or known OpenAI-compatible provider by its (normalised) name. */
const knownProvider = (name: string): Provider | undefined => KNOWN.find((p) => p.name === name);

/** The price catalog's id for a provider name at any door; undefined for a name no known provider answers to. */
export const catalogIdOf = (name: string): string | undefined => knownProvider(normaliseProvider(name))?.catalogId;

const compatible = new Map<string, Provider>();

/**
 * The provider behind a name (normalised first): a built-in one, or else an upstream speaking
 * OpenAI's API under that name (xai, mistral, groq, deepseek, openrouter, or any other configured by name).
 */
export function providerNamed(name: string): Provider {
  const key = normaliseProvider(name);
  const known = knownProvider(key);
  if (known) return known;
  let provider = compatible.get(key);
  if (!provider) {
    provider = openAICompatible(key);
    compatible.set(key, provider);
  }
  return provider;
}

/** Usage formats, each once: the shapes' detectors exclude each other, so the order does not matter. */
const EXTRACTORS: readonly UsageExtractor[] = [...new Set(BUILT_IN.map((p) => p.usage))];

/**
 * The shape decides, because the format follows the API a model was reached through, not its
 * vendor: Claude through OpenRouter or Anthropic's OpenAI-compatible endpoint reports OpenAI usage,
 * Claude on Vertex reports Anthropic usage. When no shape fits, the hint's extractor explains
 * what its provider's usage needs.
 */
function extractorFor(raw: unknown, providerHint?: string): UsageExtractor | undefined {
  const hinted = providerHint ? knownProvider(normaliseProvider(providerHint))?.usage : undefined;
  if (hinted?.detect(raw)) return hinted;
  return EXTRACTORS.find((e) => e.detect(raw)) ?? hinted;
}

/** Normalises a provider's usage object (or the response carrying it). */
export function extractUsage(raw: unknown, providerHint?: string): ExtractResult {
  const extractor = extractorFor(raw, providerHint);
  if (extractor) return extractor.extract(raw);
  return { ok: false, error: { path: "", message: `expected a provider usage object: ${EXTRACTORS.map((e) => e.expects).join(", ")}` } };
}
