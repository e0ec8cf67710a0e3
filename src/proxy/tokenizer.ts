import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { packageJson, readBuilt, writeBuilt } from "../built-json.ts";

/*
 * gpt-tokenizer's o200k_base token counter, for estimates (src/proxy/estimate.ts). The package's
 * encoding module holds its 200,000 ranks as a 2.4 MB JavaScript literal, whose source text stays
 * in the heap for good once loaded; built from the same ranks read as JSON (written by the build,
 * src/built-json.ts), the counter leaves about 6 MB less heap. The encoder is the package's own,
 * with the same ranks, so it counts the same.
 */

/** Where the build puts the ranks: beside this module, so in dist/ only. */
export const BUILT_RANKS = join(dirname(fileURLToPath(import.meta.url)), "o200k-ranks.json");

const tokenizerVersion = () => z.object({ version: z.string() }).parse(packageJson("gpt-tokenizer")).version;

/** What the package's own o200k_base encoding is built from: byte strings, or byte arrays where they are not text. */
const Ranks = z.array(z.union([z.string(), z.array(z.number())]));

/** The ranks from a file `writeTokenizerRanks` wrote, when it was written from this `version`; otherwise undefined. */
export function builtRanks(file: string, version: string): (string | number[])[] | undefined {
  const data = readBuilt(file, version);
  if (data === undefined) return undefined;
  const ranks = Ranks.safeParse(data);
  if (!ranks.success) throw new Error(`${file} does not hold tokenizer ranks; rebuild with \`npm run build\``);
  return ranks.data;
}

/** Counts tokens as OpenAI's o200k_base encoding does; loaded from the build's ranks where they match the installed package. */
export async function loadTokenCounter(file: string = BUILT_RANKS): Promise<(text: string) => number> {
  const ranks = builtRanks(file, tokenizerVersion());
  if (!ranks) return (await import("gpt-tokenizer")).countTokens;
  const { GptEncoding } = await import("gpt-tokenizer/esm/GptEncoding");
  return GptEncoding.getEncodingApi("o200k_base", () => ranks).countTokens;
}

/** `npm run build`: the package's o200k_base ranks as JSON, stamped with its version. */
export async function writeTokenizerRanks(file: string = BUILT_RANKS): Promise<void> {
  writeBuilt(file, tokenizerVersion(), (await import("gpt-tokenizer/esm/bpeRanks/o200k_base")).default);
}
