import { z } from "zod";
import { OPENAI_ONLY_KEYS } from "../openai/usage.ts";
import { type ExtractResult, type UsageExtractor, checked, finish, hasAnyKey, isNullishCount, isNullishText, isPlain, isRecord, knownTier, locate, parseAt, tokenCount } from "../usage.ts";

/*
 * Anthropic's `input_tokens` counts only what was neither read from nor written to the cache: the
 * three input classes are disjoint and all input is their sum. `output_tokens` includes thinking.
 */

const CacheCreation = z.looseObject({
  ephemeral_5m_input_tokens: tokenCount.nullish(),
  ephemeral_1h_input_tokens: tokenCount.nullish(),
});

const schema = z
  .looseObject({
    input_tokens: tokenCount,
    output_tokens: tokenCount.nullish(),
    cache_read_input_tokens: tokenCount.nullish(),
    cache_creation_input_tokens: tokenCount.nullish(),
    /** The cache writes split by lifetime; older API versions only had 5-minute writes and no split. */
    cache_creation: CacheCreation.nullish(),
    service_tier: z.string().nullish(),
  })
  .superRefine((u, ctx) => {
    if (!splitAddsUp(u.cache_creation, u.cache_creation_input_tokens))
      ctx.addIssue({
        code: "custom",
        path: ["cache_creation"],
        message: "ephemeral_5m_input_tokens + ephemeral_1h_input_tokens must equal cache_creation_input_tokens",
      });
  });
type AnthropicUsage = z.infer<typeof schema>;

/** The split, when whole and beside a total, adds up to it. */
function splitAddsUp(split: z.infer<typeof CacheCreation> | null | undefined, total: number | null | undefined): boolean {
  if (split?.ephemeral_5m_input_tokens == null || split.ephemeral_1h_input_tokens == null || total == null) return true;
  return split.ephemeral_5m_input_tokens + split.ephemeral_1h_input_tokens === total;
}

const splitFits = (v: unknown) => v == null || (isPlain(v) && isNullishCount(v.ephemeral_5m_input_tokens) && isNullishCount(v.ephemeral_1h_input_tokens));

const AnthropicUsage = checked(
  schema,
  (u) =>
    isPlain(u) &&
    u.input_tokens != null &&
    isNullishCount(u.input_tokens) &&
    isNullishCount(u.output_tokens) &&
    isNullishCount(u.cache_read_input_tokens) &&
    isNullishCount(u.cache_creation_input_tokens) &&
    splitFits(u.cache_creation) &&
    isNullishText(u.service_tier) &&
    splitAddsUp(u.cache_creation as AnthropicUsage["cache_creation"], u.cache_creation_input_tokens as number | null | undefined),
);

const Envelope = checked(z.looseObject({ model: z.string().min(1).nullish() }), (e) => isPlain(e) && isNullishText(e.model, 1));

/** The checked schemas, for the test holding each check to its schema. */
export const ANTHROPIC_CHECKED = { AnthropicUsage, Envelope };

/** Without a total, the split alone says how much was written. */
const cacheWrites = (u: AnthropicUsage): number =>
  u.cache_creation_input_tokens ?? (u.cache_creation?.ephemeral_5m_input_tokens ?? 0) + (u.cache_creation?.ephemeral_1h_input_tokens ?? 0);

function extract(raw: unknown): ExtractResult {
  const { usage, envelope, prefix } = locate(raw, "usage");
  const parsed = parseAt(AnthropicUsage, usage, prefix);
  if (!parsed.ok) return parsed;
  const meta = parseAt(Envelope, envelope ?? {}, "");
  if (!meta.ok) return meta;
  const u = parsed.data;
  const reads = u.cache_read_input_tokens ?? 0;
  const writes = cacheWrites(u);
  return finish({
    tokens: {
      input: u.input_tokens + reads + writes,
      cached_input: reads,
      cache_write: writes,
      // Unsplit writes are 5-minute ones: the default lifetime, and the only one before the split existed.
      cache_write_1h: u.cache_creation?.ephemeral_1h_input_tokens ?? 0,
      output: u.output_tokens ?? 0,
    },
    // A tier name we do not know yet must not cost the call its tokens; it is priced as standard.
    service_tier: knownTier(u.service_tier),
    model: meta.data.model ?? undefined,
  });
}

export const anthropicUsage: UsageExtractor = {
  expects: "Anthropic (input_tokens, output_tokens)",
  detect: (raw) => {
    const { usage } = locate(raw, "usage");
    return isRecord(usage) && "input_tokens" in usage && !hasAnyKey(usage, OPENAI_ONLY_KEYS);
  },
  extract,
};
