import type { Provider } from "../types.ts";
import { type BedrockSettings, BedrockSettingsSchema } from "./settings.ts";
import { bedrockUsage } from "./usage.ts";
import { bedrockWire } from "./wire.ts";

/** Amazon Bedrock Runtime, at `/bedrock`. */
export const bedrock: Provider<BedrockSettings> = {
  name: "bedrock",
  // OTel's `gen_ai.provider.name` is `aws.bedrock`; LiteLLM and the Vercel AI SDK say `bedrock` or `amazon-bedrock`.
  aliases: ["aws.bedrock", "amazon-bedrock", "amazon_bedrock", "aws-bedrock", "aws"],
  catalogId: "aws",
  usage: bedrockUsage,
  // Bedrock's inputTokens leave out cache reads and writes, as Anthropic's input_tokens do.
  otlp: { nativeCounts: { inputExcludesCache: true } },
  config: {
    baseUrlVariable: "BEDROCK_BASE_URL",
    defaultBaseUrl: (settings) => `https://bedrock-runtime.${settings.region}.amazonaws.com`,
    apiKeyVariable: "BEDROCK_API_KEY",
    settings: BedrockSettingsSchema,
  },
  ...bedrockWire,
};
