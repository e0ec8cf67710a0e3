import { z } from "zod";
import type { Provider } from "../types.ts";
import { anthropicUsage } from "./usage.ts";
import { anthropicWire } from "./wire.ts";

/** Anthropic's Messages API, at `/anthropic`. */
export const anthropic: Provider = {
  name: "anthropic",
  aliases: [],
  catalogId: "anthropic",
  usage: anthropicUsage,
  // Anthropic's input_tokens leave out cache reads and writes.
  otlp: { nativeCounts: { inputExcludesCache: true } },
  config: {
    baseUrlVariable: "ANTHROPIC_BASE_URL",
    defaultBaseUrl: () => "https://api.anthropic.com",
    apiKeyVariable: "ANTHROPIC_API_KEY",
    settings: z.object({}),
  },
  ...anthropicWire,
};
