import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { countTokens } from "gpt-tokenizer";
import { bundledPackage, builtPrices, writeBundledPrices } from "../src/pricing/bundled-data.ts";
import { builtRanks, loadTokenCounter, writeTokenizerRanks } from "../src/proxy/tokenizer.ts";

// The build writes genai-prices' providers and gpt-tokenizer's ranks as JSON so a gateway need not
// compile the packages' large modules (src/built-json.ts); what it reads must say what they say.
const dir = mkdtempSync(join(tmpdir(), "tollgate-built-"));
const { findProvider } = createRequire(import.meta.url)("@pydantic/genai-prices") as typeof import("@pydantic/genai-prices");

test("the build's price data holds each provider exactly as the package answers for it", () => {
  const file = join(dir, "prices.json");
  writeBundledPrices(file);
  const providers = builtPrices(file, bundledPackage().version);
  assert.ok(providers && providers.length > 40);
  for (const provider of providers) assert.deepEqual(provider, findProvider({ providerId: provider.id }));
  assert.ok(providers.some((p) => p.id === "openai") && providers.some((p) => p.id === "anthropic"));
});

test("data written from another version of the package is not used", () => {
  const file = join(dir, "old.json");
  writeBundledPrices(file);
  const { version } = JSON.parse(readFileSync(file, "utf8")) as { version: string };
  assert.ok(builtPrices(file, version));
  assert.equal(builtPrices(file, `${version}-other`), undefined);
  assert.equal(builtPrices(join(dir, "absent.json"), version), undefined);
});

test("a file that is not the build's data is refused with a rebuild hint", () => {
  const file = join(dir, "broken.json");
  writeFileSync(file, JSON.stringify({ version: "1", data: [{ name: "no id" }] }));
  assert.throws(() => builtPrices(file, "1"), /does not hold price providers; rebuild with `npm run build`/);
  writeFileSync(file, JSON.stringify({ providers: [] }));
  assert.throws(() => builtPrices(file, "1"), /is not data the build writes; rebuild with `npm run build`/);
});

test("the token counter built from the build's ranks counts as the package's own o200k_base", async () => {
  const file = join(dir, "ranks.json");
  await writeTokenizerRanks(file);
  const { version } = JSON.parse(readFileSync(file, "utf8")) as { version: string };
  assert.equal(builtRanks(file, version)?.length, 199_998);
  const count = await loadTokenCounter(file);
  const texts = ["Say hello in five words.", "Ωμέγα 日本語のテキスト, code: const x = await fetch(url); // ok\n\tend", "x".repeat(5000), "🙂 emoji, \u0000 and \ud800 lone surrogates"];
  for (const text of texts) assert.equal(count(text), countTokens(text), text);
  // A counter from a build of another version, or no build at all, is the package's own.
  assert.equal((await loadTokenCounter(join(dir, "absent.json")))("Say hello"), countTokens("Say hello"));
});
