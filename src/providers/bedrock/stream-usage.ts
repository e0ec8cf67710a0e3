import { z } from "zod";
import { messagesTap } from "../anthropic/wire.ts";
import type { CallUsage, StreamTap } from "../types.ts";
import { parseJson, usageFrom } from "../wire.ts";
import { EventStreamReader, type StreamEvent } from "./event-stream.ts";
import { bedrockUsage } from "./usage.ts";

/*
 * Usage read from Bedrock's binary event streams while their bytes go to the client unchanged,
 * chunk by chunk. ConverseStream ends with a `metadata` event carrying TokenUsage.
 * InvokeModelWithResponseStream wraps the model's own stream: each `chunk` event's `bytes` is one
 * of the model's events in base64, which for Claude are Anthropic's Messages stream events, read
 * by Anthropic's own tap.
 */

/**
 * Bedrock answers never name the model the way the path does (Claude's own body says
 * `claude-sonnet-4-5-20250929` for any inference profile), and the price depends on the profile:
 * the model recorded is always the path's, so whatever an answer says is dropped here.
 */
export function withoutModel(outcome: CallUsage): CallUsage {
  if (!outcome.usage) return { usage: undefined, model: undefined };
  const { model: _answered, ...usage } = outcome.usage;
  return { usage, model: undefined };
}

function eventTap(onEvent: (event: StreamEvent) => void, result: () => CallUsage): StreamTap {
  const reader = new EventStreamReader();
  return {
    push(chunk) {
      reader.push(chunk).forEach(onEvent);
      return chunk;
    },
    end: () => undefined,
    result: () => {
      const read = withoutModel(result());
      return reader.stopped ? { ...read, partial: true } : read;
    },
  };
}

/** ConverseStream: the `metadata` event's usage. */
export function converseStreamTap(): StreamTap {
  let usage: CallUsage["usage"];
  return eventTap(
    (event) => {
      if (event.kind === "event" && event.type === "metadata") usage = usageFrom(bedrockUsage.extract(parseJson(event.payload))) ?? usage;
    },
    () => ({ usage, model: undefined }),
  );
}

const PayloadPart = z.looseObject({ bytes: z.string() });
const ModelEvent = z.looseObject({ type: z.string() });

/** InvokeModelWithResponseStream: each `chunk`'s bytes decoded and read as one event of Anthropic's stream. */
export function invokeStreamTap(): StreamTap {
  const inner = messagesTap();
  return eventTap(
    (event) => {
      if (event.kind !== "event" || event.type !== "chunk") return;
      const part = PayloadPart.safeParse(parseJson(event.payload)).data;
      if (!part) return;
      const data = Buffer.from(part.bytes, "base64").toString("utf8");
      // Named explicitly: Anthropic's SSE names its events, here only the JSON's `type` does.
      inner.onEvent({ event: ModelEvent.safeParse(parseJson(data)).data?.type, data });
    },
    () => inner.result(),
  );
}
