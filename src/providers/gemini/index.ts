import { z } from "zod";
import type { Provider } from "../types.ts";
import { geminiUsage } from "./usage.ts";
import { geminiWire } from "./wire.ts";

/** Google's Gemini API (generativelanguage), at `/gemini`. */
export const gemini: Provider = {
  name: "gemini",
  // How OTel instrumentations, the Vercel AI SDK and LiteLLM name Google's models.
  aliases: ["google", "gcp.gemini", "gcp.gen_ai", "gcp.vertex_ai", "vertex", "vertexai", "vertex_ai", "google-vertex"],
  catalogId: "google",
  usage: geminiUsage,
  // Gemini's candidatesTokenCount leaves out thoughts.
  otlp: { nativeCounts: { outputExcludesReasoning: true } },
  config: {
    baseUrlVariable: "GEMINI_BASE_URL",
    defaultBaseUrl: () => "https://generativelanguage.googleapis.com",
    apiKeyVariable: "GEMINI_API_KEY",
    settings: z.object({}),
  },
  ...geminiWire,
};
