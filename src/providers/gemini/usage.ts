import { z } from "zod";
import { type ExtractResult, type UsageExtractor, finish, hasAnyKey, locate, parseAt, tokenCount } from "../usage.ts";

/*
 * Gemini's `usageMetadata`. `promptTokenCount` includes cached content (`cachedContentTokenCount` is
 * part of it). The total is prompt + candidates + toolUsePrompt + thoughts, so thoughts are not inside
 * `candidatesTokenCount`, and tool-use prompt tokens (what Search grounding, URL context or code
 * execution feed back to the model) are not inside `promptTokenCount`; Google bills them as input.
 */
const GeminiUsage = z.looseObject({
  promptTokenCount: tokenCount,
  cachedContentTokenCount: tokenCount.nullish(),
  candidatesTokenCount: tokenCount.nullish(),
  thoughtsTokenCount: tokenCount.nullish(),
  toolUsePromptTokenCount: tokenCount.nullish(),
});

const Envelope = z.looseObject({ modelVersion: z.string().min(1).nullish(), responseId: z.unknown().optional() });

/** Gemini sends no request-id header; its answers (and every stream chunk) carry `responseId` instead. An odd one is left out, never a reason to lose the usage. */
const responseIdOf = (id: unknown): string | undefined => (typeof id === "string" && /^[\x21-\x7e]{1,200}$/.test(id) ? id : undefined);

function extract(raw: unknown): ExtractResult {
  const { usage, envelope, prefix } = locate(raw, "usageMetadata");
  const parsed = parseAt(GeminiUsage, usage, prefix);
  if (!parsed.ok) return parsed;
  const meta = parseAt(Envelope, envelope ?? {}, "");
  if (!meta.ok) return meta;
  const u = parsed.data;
  const thoughts = u.thoughtsTokenCount ?? 0;
  return finish({
    tokens: {
      input: u.promptTokenCount + (u.toolUsePromptTokenCount ?? 0),
      cached_input: u.cachedContentTokenCount ?? 0,
      output: (u.candidatesTokenCount ?? 0) + thoughts,
      reasoning: thoughts,
    },
    model: meta.data.modelVersion ?? undefined,
    request_id: responseIdOf(meta.data.responseId),
  });
}

export const geminiUsage: UsageExtractor = {
  expects: "Gemini usageMetadata (promptTokenCount)",
  detect: (raw) => hasAnyKey(locate(raw, "usageMetadata").usage, ["promptTokenCount", "candidatesTokenCount", "totalTokenCount"]),
  extract,
};
