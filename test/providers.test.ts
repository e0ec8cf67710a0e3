import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { anthropicUsage as anthropic } from "../src/providers/anthropic/usage.ts";
import { geminiUsage as gemini } from "../src/providers/gemini/usage.ts";
import { decimalString, openAIUsage as openai } from "../src/providers/openai/usage.ts";
import { extractUsage, normaliseProvider } from "../src/providers/registry.ts";
import type { ExtractResult, NormalisedUsage } from "../src/providers/usage.ts";
import { tokens } from "./helpers/tokens.ts";

function usageOf(result: ExtractResult): NormalisedUsage {
  if (!result.ok) assert.fail(`expected usage, got error at "${result.error.path}": ${result.error.message}`);
  return result.usage;
}

function errorOf(result: ExtractResult): { path: string; message: string } {
  if (result.ok) assert.fail(`expected an error, got ${JSON.stringify(result.usage)}`);
  return result.error;
}

describe("OpenAI-shaped usage", () => {
  test("chat completion: cached tokens are part of the prompt; the response gives model and tier", () => {
    const response = {
      id: "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
      object: "chat.completion",
      model: "gpt-4o-2024-08-06",
      service_tier: "default",
      choices: [],
      usage: {
        prompt_tokens: 10_000,
        completion_tokens: 1_000,
        total_tokens: 11_000,
        prompt_tokens_details: { cached_tokens: 8_000, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
      },
    };
    assert.deepEqual(usageOf(openai.extract(response)), {
      tokens: tokens({ input: 10_000, cached_input: 8_000, output: 1_000 }),
      service_tier: "standard",
      model: "gpt-4o-2024-08-06",
    });
  });

  test("reasoning model: reasoning tokens are part of the completion tokens", () => {
    const usage = {
      prompt_tokens: 2_006,
      completion_tokens: 300,
      total_tokens: 2_306,
      prompt_tokens_details: { cached_tokens: 1_920 },
      completion_tokens_details: { reasoning_tokens: 192 },
    };
    assert.deepEqual(usageOf(openai.extract(usage)).tokens, tokens({ input: 2_006, cached_input: 1_920, output: 300, reasoning: 192 }));
  });

  test("Responses API usage inside its response, on the flex tier", () => {
    const response = {
      id: "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
      object: "response",
      model: "o4-mini-2025-04-16",
      service_tier: "flex",
      usage: {
        input_tokens: 1_536,
        input_tokens_details: { cached_tokens: 1_024 },
        output_tokens: 900,
        output_tokens_details: { reasoning_tokens: 640 },
        total_tokens: 2_436,
      },
    };
    assert.deepEqual(usageOf(openai.extract(response)), {
      tokens: tokens({ input: 1_536, cached_input: 1_024, output: 900, reasoning: 640 }),
      service_tier: "flex",
      model: "o4-mini-2025-04-16",
    });
  });

  test("xAI counts reasoning beside completion tokens; the total proves it", () => {
    const usage = {
      prompt_tokens: 10_120,
      completion_tokens: 1_499,
      total_tokens: 14_428,
      prompt_tokens_details: { text_tokens: 10_120, audio_tokens: 0, image_tokens: 0, cached_tokens: 128 },
      completion_tokens_details: { reasoning_tokens: 2_809, audio_tokens: 0 },
    };
    assert.deepEqual(usageOf(extractUsage(usage, "xai")).tokens, tokens({ input: 10_120, cached_input: 128, output: 4_308, reasoning: 2_809 }));
    // Reasoning smaller than the completion: only the total tells the two readings apart.
    const shortThought = { prompt_tokens: 32, completion_tokens: 400, total_tokens: 732, completion_tokens_details: { reasoning_tokens: 300 } };
    assert.deepEqual(usageOf(extractUsage(shortThought, "xai")).tokens, tokens({ input: 32, output: 700, reasoning: 300 }));
  });

  test("OpenRouter: its cost becomes an exact decimal string, cache writes are input", () => {
    const usage = {
      prompt_tokens: 194,
      completion_tokens: 2,
      total_tokens: 196,
      prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 100, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
      cost: 0.000_000_15,
      cost_details: { upstream_inference_cost: null },
      is_byok: false,
    };
    assert.deepEqual(usageOf(extractUsage(usage, "openrouter")), {
      tokens: tokens({ input: 194, cache_write: 100, output: 2 }),
      cost_usd: "0.00000015",
    });
  });

  test("DeepSeek's prompt_cache_hit_tokens, embeddings without completion tokens, nulls from compatible APIs", () => {
    assert.deepEqual(
      usageOf(extractUsage({ prompt_tokens: 1_000, completion_tokens: 50, total_tokens: 1_050, prompt_cache_hit_tokens: 768, prompt_cache_miss_tokens: 232 }, "deepseek")).tokens,
      tokens({ input: 1_000, cached_input: 768, output: 50 }),
    );
    assert.deepEqual(usageOf(openai.extract({ prompt_tokens: 8, total_tokens: 8 })).tokens, tokens({ input: 8 }));
    assert.deepEqual(
      usageOf(openai.extract({ prompt_tokens: 5, completion_tokens: 2, total_tokens: 7, prompt_tokens_details: null, completion_tokens_details: null })).tokens,
      tokens({ input: 5, output: 2 }),
    );
  });

  test("bad values are reported at their path, under `usage.` when a response was given", () => {
    assert.deepEqual(errorOf(openai.extract({ prompt_tokens: -1, completion_tokens: 2 })), {
      path: "prompt_tokens",
      message: "Too small: expected number to be >=0",
    });
    assert.equal(errorOf(openai.extract({ model: "gpt-4o", usage: { prompt_tokens: 10, completion_tokens: "7" } })).path, "usage.completion_tokens");
    assert.equal(errorOf(openai.extract({ prompt_tokens: 10, prompt_tokens_details: { cached_tokens: 1.5 } })).path, "prompt_tokens_details.cached_tokens");
    assert.equal(errorOf(openai.extract({ input_tokens: 10, total_tokens: 10, cost: -0.1 })).path, "cost");
  });

  test("cached tokens larger than the prompt fit no reading and are refused", () => {
    const error = errorOf(openai.extract({ prompt_tokens: 100, completion_tokens: 1, prompt_tokens_details: { cached_tokens: 101 } }));
    assert.deepEqual(error, { path: "tokens.cached_input", message: "cached and cache-write tokens cannot exceed input tokens" });
  });
});

describe("Anthropic usage", () => {
  test("input_tokens excludes cache reads and writes; one-hour writes come from the split", () => {
    const message = {
      id: "msg_013Zva2CMHLNnXjNJJKqJ2EF",
      type: "message",
      role: "assistant",
      model: "claude-sonnet-4-5-20250929",
      content: [],
      stop_reason: "end_turn",
      usage: {
        input_tokens: 1_000,
        cache_creation_input_tokens: 4_000,
        cache_read_input_tokens: 5_000,
        cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 4_000 },
        output_tokens: 500,
        service_tier: "standard",
        server_tool_use: null,
      },
    };
    assert.deepEqual(usageOf(anthropic.extract(message)), {
      tokens: tokens({ input: 10_000, cached_input: 5_000, cache_write: 4_000, cache_write_1h: 4_000, output: 500 }),
      service_tier: "standard",
      model: "claude-sonnet-4-5-20250929",
    });
  });

  test("mixed 5-minute and 1-hour writes, batch tier", () => {
    const usage = {
      input_tokens: 12,
      cache_creation_input_tokens: 4_000,
      cache_read_input_tokens: 0,
      cache_creation: { ephemeral_5m_input_tokens: 1_500, ephemeral_1h_input_tokens: 2_500 },
      output_tokens: 80,
      service_tier: "batch",
    };
    assert.deepEqual(usageOf(anthropic.extract(usage)), {
      tokens: tokens({ input: 4_012, cache_write: 4_000, cache_write_1h: 2_500, output: 80 }),
      service_tier: "batch",
    });
  });

  test("without the split, writes are 5-minute writes; without the total, the split is the total", () => {
    assert.deepEqual(
      usageOf(anthropic.extract({ input_tokens: 20, cache_creation_input_tokens: 1_800, cache_read_input_tokens: 0, output_tokens: 10 })).tokens,
      tokens({ input: 1_820, cache_write: 1_800, output: 10 }),
    );
    assert.deepEqual(
      usageOf(anthropic.extract({ input_tokens: 20, cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 300 }, output_tokens: 10 })).tokens,
      tokens({ input: 420, cache_write: 400, cache_write_1h: 300, output: 10 }),
    );
  });

  test("a split that does not add up, and bad counts, are errors with paths", () => {
    const mismatched = {
      input_tokens: 5,
      cache_creation_input_tokens: 4_000,
      cache_creation: { ephemeral_5m_input_tokens: 1_000, ephemeral_1h_input_tokens: 1_000 },
      output_tokens: 1,
    };
    assert.equal(errorOf(anthropic.extract(mismatched)).path, "cache_creation");
    assert.equal(errorOf(anthropic.extract({ model: "claude-haiku-4-5", usage: { input_tokens: "12", output_tokens: 1 } })).path, "usage.input_tokens");
    assert.equal(errorOf(anthropic.extract({ input_tokens: 1, output_tokens: 1, cache_read_input_tokens: -3 })).path, "cache_read_input_tokens");
  });
});

describe("Gemini usageMetadata", () => {
  test("cached content is part of the prompt; thoughts are output beside the candidates", () => {
    const response = {
      candidates: [],
      modelVersion: "gemini-2.5-pro",
      responseId: "mJ9taPKKNt6hz7IPtKzo4AE",
      usageMetadata: {
        promptTokenCount: 250_000,
        cachedContentTokenCount: 200_000,
        candidatesTokenCount: 600,
        thoughtsTokenCount: 400,
        totalTokenCount: 251_000,
        promptTokensDetails: [{ modality: "TEXT", tokenCount: 250_000 }],
        cacheTokensDetails: [{ modality: "TEXT", tokenCount: 200_000 }],
      },
    };
    assert.deepEqual(usageOf(gemini.extract(response)), {
      tokens: tokens({ input: 250_000, cached_input: 200_000, output: 1_000, reasoning: 400 }),
      model: "gemini-2.5-pro",
      // Gemini sends no request-id header: the answer's responseId is the row's request id.
      request_id: "mJ9taPKKNt6hz7IPtKzo4AE",
    });
  });

  test("tool-use prompt tokens are input outside promptTokenCount", () => {
    const usage = { promptTokenCount: 20, candidatesTokenCount: 198, toolUsePromptTokenCount: 1_500, thoughtsTokenCount: 405, totalTokenCount: 2_123 };
    assert.deepEqual(usageOf(gemini.extract(usage)).tokens, tokens({ input: 1_520, output: 603, reasoning: 405 }));
  });

  test("bad values are errors with paths", () => {
    assert.equal(errorOf(gemini.extract({ usageMetadata: { promptTokenCount: 10, thoughtsTokenCount: -1 } })).path, "usageMetadata.thoughtsTokenCount");
    assert.equal(errorOf(gemini.extract({ candidatesTokenCount: 3 })).path, "promptTokenCount");
    assert.equal(errorOf(gemini.extract({ promptTokenCount: 10, cachedContentTokenCount: 11 })).path, "tokens.cached_input");
  });
});

describe("extractUsage", () => {
  test("without a hint, the shape picks the provider", () => {
    assert.deepEqual(usageOf(extractUsage({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 })).tokens, tokens({ input: 3, output: 4 }));
    assert.deepEqual(
      usageOf(extractUsage({ input_tokens: 3, output_tokens: 4, cache_read_input_tokens: 10 })).tokens,
      tokens({ input: 13, cached_input: 10, output: 4 }),
    );
    assert.deepEqual(
      usageOf(extractUsage({ input_tokens: 13, output_tokens: 4, total_tokens: 17, input_tokens_details: { cached_tokens: 10 } })).tokens,
      tokens({ input: 13, cached_input: 10, output: 4 }),
    );
    assert.deepEqual(usageOf(extractUsage({ promptTokenCount: 3, candidatesTokenCount: 4 })).tokens, tokens({ input: 3, output: 4 }));
  });

  test("the detectors exclude each other", () => {
    const samples = [
      { prompt_tokens: 1 },
      { input_tokens: 1, output_tokens: 1, total_tokens: 2 },
      { input_tokens: 1, output_tokens: 1 },
      { promptTokenCount: 1 },
    ];
    for (const sample of samples) assert.equal([openai, anthropic, gemini].filter((e) => e.detect(sample)).length, 1, JSON.stringify(sample));
  });

  test("the shape wins over the hint; the hint names what was expected when nothing fits", () => {
    assert.deepEqual(usageOf(extractUsage({ promptTokenCount: 9, candidatesTokenCount: 1 }, "google")).tokens, tokens({ input: 9, output: 1 }));
    assert.deepEqual(usageOf(extractUsage({ prompt_tokens: 9, completion_tokens: 1 }, "Mistral")).tokens, tokens({ input: 9, output: 1 }));
    assert.deepEqual(usageOf(extractUsage({ input_tokens: 9, output_tokens: 1 }, "acme-llm")).tokens, tokens({ input: 9, output: 1 }));
    // Claude through an OpenAI-compatible API: prompt_tokens already include the cache.
    assert.deepEqual(
      usageOf(extractUsage({ prompt_tokens: 900, completion_tokens: 1, total_tokens: 901, prompt_tokens_details: { cached_tokens: 800 } }, "anthropic")).tokens,
      tokens({ input: 900, cached_input: 800, output: 1 }),
    );
    // Claude on Vertex: Anthropic's disjoint counts.
    assert.deepEqual(usageOf(extractUsage({ input_tokens: 9, cache_read_input_tokens: 90, output_tokens: 1 }, "gcp.vertex_ai")).tokens, tokens({ input: 99, cached_input: 90, output: 1 }));
    assert.deepEqual(errorOf(extractUsage({ tokens: 9 }, "anthropic")), { path: "input_tokens", message: "Invalid input: expected number, received undefined" });
    assert.equal(errorOf(extractUsage({ tokens: 9 }, "gemini")).path, "promptTokenCount");
  });

  test("an unrecognisable value is an error naming what was expected", () => {
    for (const raw of [{ tokens: 5 }, 42, null, "usage", []]) {
      const error = errorOf(extractUsage(raw));
      assert.equal(error.path, "");
      assert.match(error.message, /OpenAI.*Anthropic.*Gemini/);
    }
  });
});

test("provider names from SDKs and instrumentations are normalised", () => {
  const cases: [string, string][] = [
    ["OpenAI", "openai"],
    ["openai.responses", "openai"],
    ["Anthropic", "anthropic"],
    ["anthropic.messages", "anthropic"],
    ["vertex.anthropic.messages", "anthropic"],
    ["gcp.vertex_ai", "gemini"],
    ["google.generative-ai", "gemini"],
    ["x_ai", "xai"],
    ["mistral_ai", "mistral"],
    ["azure.ai.openai", "azure"],
    ["groq", "groq"],
  ];
  for (const [given, expected] of cases) assert.equal(normaliseProvider(given), expected, given);
});

test("decimalString spells out doubles exactly, without exponents", () => {
  const cases: [number, string][] = [
    [0, "0"],
    [19, "19"],
    [0.95, "0.95"],
    [123.456, "123.456"],
    [1.5e-7, "0.00000015"],
    [1e21, "1000000000000000000000"],
  ];
  for (const [value, expected] of cases) assert.equal(decimalString(value), expected, String(value));
});
