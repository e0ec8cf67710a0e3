import { anthropic } from "./anthropic.ts";
import { gemini } from "./gemini.ts";
import { openAICompatible } from "./openai.ts";
import type { ProxyProvider } from "./types.ts";

export { anthropic } from "./anthropic.ts";
export { gemini } from "./gemini.ts";
export { openAICompatible } from "./openai.ts";
export type { CallUsage, ProxyProvider, RequestFacts, StreamTap } from "./types.ts";

const openai = openAICompatible("openai");

/** The providers with their own API, routed under their names whether or not a key is configured. */
export function builtInProviders(): readonly ProxyProvider[] {
  return [openai, anthropic, gemini];
}

const compatible = new Map<string, ProxyProvider>();

/**
 * The provider for a route name: a built-in one, or else an upstream speaking OpenAI's API under
 * that name (xai, mistral, groq, deepseek, openrouter, or any other configured by name).
 */
export function providerFor(name: string): ProxyProvider {
  const builtIn = builtInProviders().find((p) => p.name === name);
  if (builtIn) return builtIn;
  let provider = compatible.get(name);
  if (!provider) {
    provider = openAICompatible(name);
    compatible.set(name, provider);
  }
  return provider;
}
