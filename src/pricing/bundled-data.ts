import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Provider } from "@pydantic/genai-prices";
import { z } from "zod";

/*
 * genai-prices' bundled providers, as data. The package ships them as an 830 KB JavaScript module;
 * compiling it leaves about 15 MB resident for the life of the process (parser memory the allocator
 * keeps; bench/RESULTS.md, memory), where parsing the same data as JSON leaves about 3 MB. So
 * `npm run build` writes them once as JSON beside the compiled catalog, and the runtime reads that;
 * the package itself is loaded only where no such file matches the installed version (running from
 * the TypeScript sources, or an install updated without a build).
 */

/** Every provider id in the bundled data: genai-prices can look a provider up by id but not list them. */
const BUNDLED_PROVIDER_IDS = [
  "anthropic", "arcee", "avian", "aws", "azure", "baseten", "cerebras", "cloudflare", "cohere", "cursor",
  "deepseek", "doubleword", "fireworks", "github-copilot", "google", "groq", "huggingface_cerebras",
  "huggingface_fireworks-ai", "huggingface_groq", "huggingface_hyperbolic", "huggingface_nebius",
  "huggingface_novita", "huggingface_nscale", "huggingface_ovhcloud", "huggingface_publicai",
  "huggingface_sambanova", "huggingface_together", "minimax", "mistral", "modal", "moonshotai", "novita",
  "openai", "openrouter", "ovhcloud", "perplexity", "quicksilverpro", "together", "typesafe", "voyageai",
  "x-ai", "zai", "zhipuai",
] as const;

const require = createRequire(import.meta.url);

const PackageJson = z.object({ version: z.string(), homepage: z.string(), license: z.string() });
export type BundledPackage = z.infer<typeof PackageJson>;

/** The installed package's version, home page and licence. */
export function bundledPackage(): BundledPackage {
  // The package's exports hide package.json, so it is found beside the resolved entry point.
  const entry = require.resolve("@pydantic/genai-prices");
  return PackageJson.parse(JSON.parse(readFileSync(join(dirname(entry), "..", "package.json"), "utf8")));
}

/** The providers as the package itself answers for them. */
function fromPackage(): Provider[] {
  const { findProvider } = require("@pydantic/genai-prices") as typeof import("@pydantic/genai-prices");
  return BUNDLED_PROVIDER_IDS.map((id) => {
    const provider = findProvider({ providerId: id });
    if (provider?.id !== id) throw new Error(`@pydantic/genai-prices no longer has provider "${id}"; update BUNDLED_PROVIDER_IDS`);
    return provider;
  });
}

/** Where the build puts the JSON: beside this module, so in dist/ only. */
export const BUILT_PRICES = join(dirname(fileURLToPath(import.meta.url)), "bundled-prices.json");

const Built = z.object({ version: z.string(), providers: z.array(z.object({ id: z.string() }).passthrough()) });

/** The providers from a file `writeBundledPrices` wrote, when it was written from this `version`; otherwise undefined. */
export function builtPrices(file: string, version: string): Provider[] | undefined {
  if (!existsSync(file)) return undefined;
  const built = Built.safeParse(JSON.parse(readFileSync(file, "utf8")));
  if (!built.success) throw new Error(`${file} is not the price data the build writes (${built.error.issues[0]?.message}); rebuild with \`npm run build\``);
  if (built.data.version !== version) return undefined;
  // Written by writeBundledPrices from the package's own objects, which are plain JSON values.
  return built.data.providers as unknown as Provider[];
}

/** The bundled providers, in BUNDLED_PROVIDER_IDS order: from the build's JSON where it matches the installed package. */
export function bundledProviders(version: string): Provider[] {
  return builtPrices(BUILT_PRICES, version) ?? fromPackage();
}

/** `npm run build`: the providers as JSON, stamped with the package version they came from. */
export function writeBundledPrices(file: string = BUILT_PRICES): void {
  writeFileSync(file, JSON.stringify({ version: bundledPackage().version, providers: fromPackage() }));
}
