import type { MatchLogic } from "@pydantic/genai-prices";
import { z } from "zod";

/** A compiled model matcher; it expects an id already passed through `normaliseModelId`. */
export type ModelMatcher = (modelId: string) => boolean;

/** genai-prices lower-cases and trims ids before matching; doing the same keeps its data meaning what it says. */
export function normaliseModelId(id: string): string {
  return id.trim().toLowerCase();
}

/**
 * Compiles genai-prices match logic once, at load. As in genai-prices, the plain string tests compare
 * case-insensitively and a regex runs as written against the lower-cased id.
 */
export function compileMatch(logic: MatchLogic): ModelMatcher {
  if ("or" in logic) {
    const parts = logic.or.map(compileMatch);
    return (id) => parts.some((part) => part(id));
  }
  if ("and" in logic) {
    const parts = logic.and.map(compileMatch);
    return (id) => parts.every((part) => part(id));
  }
  if ("equals" in logic) {
    const text = logic.equals.toLowerCase();
    return (id) => id === text;
  }
  if ("starts_with" in logic) {
    const text = logic.starts_with.toLowerCase();
    return (id) => id.startsWith(text);
  }
  if ("ends_with" in logic) {
    const text = logic.ends_with.toLowerCase();
    return (id) => id.endsWith(text);
  }
  if ("contains" in logic) {
    const text = logic.contains.toLowerCase();
    return (id) => id.includes(text);
  }
  if ("regex" in logic) {
    const pattern = new RegExp(logic.regex);
    return (id) => pattern.test(id);
  }
  // Reachable only with data that breaks the declared type, e.g. a newer genai-prices.
  throw new Error(`unknown model match rule ${JSON.stringify(logic)}`);
}

function isRegex(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

const text = z.string().min(1);

/** Match logic as operators write it in the override file: the same vocabulary as genai-prices. */
export const MatchLogicSchema: z.ZodType<MatchLogic> = z.lazy(() =>
  z.union([
    z.strictObject({ equals: text }),
    z.strictObject({ starts_with: text }),
    z.strictObject({ ends_with: text }),
    z.strictObject({ contains: text }),
    z.strictObject({ regex: text.refine(isRegex, "not a valid regular expression") }),
    z.strictObject({ and: z.array(MatchLogicSchema).min(1) }),
    z.strictObject({ or: z.array(MatchLogicSchema).min(1) }),
  ]),
);
