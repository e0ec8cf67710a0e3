import { writeBundledPrices } from "./pricing/bundled-data.ts";
import { writeTokenizerRanks } from "./proxy/tokenizer.ts";

/** `npm run build`, after compiling: the packages' large data modules written as JSON beside dist/ (src/built-json.ts). */
export async function writeBuildData(): Promise<void> {
  writeBundledPrices();
  await writeTokenizerRanks();
}
