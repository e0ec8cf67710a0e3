import { z } from "zod";
import { type ExtractResult, type UsageExtractor, finish, hasAnyKey, locate, parseAt, tokenCount } from "../usage.ts";

/*
 * Bedrock's TokenUsage, as Converse answers carry it (`usage`) and ConverseStream's `metadata`
 * event repeats it. `inputTokens` counts only what was neither read from nor written to the
 * cache (AWS bills the three at different rates and `totalTokens` adds them all up), so the
 * three input classes are disjoint and all input is their sum, as with Anthropic. `cacheDetails`
 * splits the cache writes by lifetime ("5m", "1h"), which are priced differently.
 * A Converse answer never names a model: the model is the one the request's path named.
 */

const CacheDetail = z.looseObject({ ttl: z.string(), inputTokens: tokenCount });

const TokenUsage = z
  .looseObject({
    inputTokens: tokenCount,
    outputTokens: tokenCount.nullish(),
    cacheReadInputTokens: tokenCount.nullish(),
    cacheWriteInputTokens: tokenCount.nullish(),
    cacheDetails: z.array(CacheDetail).nullish(),
  })
  .superRefine((u, ctx) => {
    const detailed = (u.cacheDetails ?? []).reduce((sum, d) => sum + d.inputTokens, 0);
    if (u.cacheDetails?.length && detailed !== (u.cacheWriteInputTokens ?? 0))
      ctx.addIssue({ code: "custom", path: ["cacheDetails"], message: "the cacheDetails inputTokens must add up to cacheWriteInputTokens" });
  });

function extract(raw: unknown): ExtractResult {
  const { usage, prefix } = locate(raw, "usage");
  const parsed = parseAt(TokenUsage, usage, prefix);
  if (!parsed.ok) return parsed;
  const u = parsed.data;
  const reads = u.cacheReadInputTokens ?? 0;
  const writes = u.cacheWriteInputTokens ?? 0;
  const oneHour = (u.cacheDetails ?? []).filter((d) => d.ttl === "1h").reduce((sum, d) => sum + d.inputTokens, 0);
  return finish({
    tokens: { input: u.inputTokens + reads + writes, cached_input: reads, cache_write: writes, cache_write_1h: oneHour, output: u.outputTokens ?? 0 },
  });
}

export const bedrockUsage: UsageExtractor = {
  expects: "Bedrock TokenUsage (inputTokens, outputTokens)",
  // camelCase `inputTokens` is Bedrock's alone among the formats Tollgate reads.
  detect: (raw) => hasAnyKey(locate(raw, "usage").usage, ["inputTokens", "cacheReadInputTokens", "cacheWriteInputTokens"]),
  extract,
};
