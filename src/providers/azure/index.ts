import { z } from "zod";
import { openAIOtlp, openAIUsage } from "../openai/usage.ts";
import type { Provider } from "../types.ts";
import { azureWire } from "./wire.ts";

/** Azure OpenAI, at `/azure`: point the `AzureOpenAI` client's `endpoint` at `http://<gateway>/azure`. */
export const azure: Provider = {
  name: "azure",
  // OTel's `gen_ai.provider.name` values for Azure, and how LiteLLM and others spell it.
  aliases: ["azure.ai.openai", "azure.ai.inference", "azure-openai", "azure_openai", "azure_ai"],
  // The catalog's Azure entries fall back to OpenAI's prices for the models Azure serves.
  catalogId: "azure",
  usage: openAIUsage,
  otlp: openAIOtlp,
  config: {
    // A resource's endpoint (https://<resource>.openai.azure.com): there is no default.
    baseUrlVariable: "AZURE_OPENAI_BASE_URL",
    defaultBaseUrl: () => undefined,
    apiKeyVariable: "AZURE_OPENAI_API_KEY",
    settings: z.object({}),
  },
  ...azureWire,
};
