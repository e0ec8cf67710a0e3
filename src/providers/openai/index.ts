import { z } from "zod";
import type { Provider } from "../types.ts";
import { openAIOtlp, openAIUsage } from "./usage.ts";
import { openAIWire } from "./wire.ts";

/** OpenAI itself, at `/openai`. */
export const openai: Provider = {
  name: "openai",
  aliases: [],
  catalogId: "openai",
  usage: openAIUsage,
  otlp: openAIOtlp,
  config: {
    baseUrlVariable: "OPENAI_BASE_URL",
    defaultBaseUrl: () => "https://api.openai.com",
    apiKeyVariable: "OPENAI_API_KEY",
    settings: z.object({}),
  },
  ...openAIWire("openai"),
};

/**
 * Upstreams that copy OpenAI's API, known by name so that every door spells them alike and the
 * price catalog finds them; each is routed only once configured (TOLLGATE_PROVIDERS=xai=https://api.x.ai).
 */
const KNOWN_COMPATIBLE: Readonly<Record<string, { aliases: readonly string[]; catalogId: string }>> = {
  xai: { aliases: ["x-ai", "x_ai", "grok"], catalogId: "x-ai" },
  mistral: { aliases: ["mistral_ai", "mistralai"], catalogId: "mistral" },
  groq: { aliases: [], catalogId: "groq" },
  deepseek: { aliases: [], catalogId: "deepseek" },
  openrouter: { aliases: [], catalogId: "openrouter" },
};

/** The variable holding a named upstream's key: `my-vllm` → MY_VLLM_API_KEY. */
export const apiKeyVariableOf = (name: string): string => `${name.toUpperCase().replace(/-/g, "_")}_API_KEY`;

/** An upstream speaking OpenAI's API under `name`, its base URL given in TOLLGATE_PROVIDERS. */
export function openAICompatible(name: string): Provider {
  const known = KNOWN_COMPATIBLE[name];
  return {
    name,
    aliases: known?.aliases ?? [],
    // An unknown name is looked up as it is: the catalog matches providers by name, then by model.
    catalogId: known?.catalogId ?? name,
    usage: openAIUsage,
    otlp: openAIOtlp,
    config: {
      baseUrlVariable: "TOLLGATE_PROVIDERS",
      defaultBaseUrl: () => undefined,
      apiKeyVariable: apiKeyVariableOf(name),
      settings: z.object({}),
    },
    ...openAIWire(name),
  };
}

/** The OpenAI-compatible upstreams known by name (see KNOWN_COMPATIBLE). */
export const knownCompatible = (): Provider[] => Object.keys(KNOWN_COMPATIBLE).map(openAICompatible);
