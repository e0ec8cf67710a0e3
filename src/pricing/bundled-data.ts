import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Provider } from "@pydantic/genai-prices";
import { z } from "zod";
import { packageJson, readBuilt, writeBuilt } from "../built-json.ts";

/*
 * genai-prices' bundled providers, as data. The package ships them as an 830 KB JavaScript module
 * (about 5 MB more resident than the same data read as JSON, measured loading the catalog), so the
 * build writes them once as JSON (src/built-json.ts) and a built gateway reads that; the
 * package is loaded where no such file matches the installed version.
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

const PackageJson = z.object({ version: z.string(), homepage: z.string(), license: z.string() });
export type BundledPackage = z.infer<typeof PackageJson>;

/** The installed package's version, home page and licence. */
export const bundledPackage = (): BundledPackage => PackageJson.parse(packageJson("@pydantic/genai-prices"));

/** The providers as the package itself answers for them. */
function fromPackage(): Provider[] {
  const { findProvider } = createRequire(import.meta.url)("@pydantic/genai-prices") as typeof import("@pydantic/genai-prices");
  return BUNDLED_PROVIDER_IDS.map((id) => {
    const provider = findProvider({ providerId: id });
    if (provider?.id !== id) throw new Error(`@pydantic/genai-prices no longer has provider "${id}"; update BUNDLED_PROVIDER_IDS`);
    return provider;
  });
}

/** Where the build puts the JSON: beside this module, so in dist/ only. */
export const BUILT_PRICES = join(dirname(fileURLToPath(import.meta.url)), "bundled-prices.json");

const Providers = z.array(z.object({ id: z.string() }).passthrough());

/** The providers from a file `writeBundledPrices` wrote, when it was written from this `version`; otherwise undefined. */
export function builtPrices(file: string, version: string): Provider[] | undefined {
  const data = readBuilt(file, version);
  if (data === undefined) return undefined;
  const providers = Providers.safeParse(data);
  if (!providers.success) throw new Error(`${file} does not hold price providers; rebuild with \`npm run build\``);
  // Written by writeBundledPrices from the package's own objects, which are plain JSON values.
  return providers.data as unknown as Provider[];
}

/** The bundled providers, in BUNDLED_PROVIDER_IDS order: from the build's JSON where it matches the installed package. */
export function bundledProviders(version: string): Provider[] {
  return builtPrices(BUILT_PRICES, version) ?? fromPackage();
}

/** `npm run build`: the providers as JSON, stamped with the package version they came from. */
export function writeBundledPrices(file: string = BUILT_PRICES): void {
  writeBuilt(file, bundledPackage().version, fromPackage());
}
