import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { bundledPackage, builtPrices, writeBundledPrices } from "../src/pricing/bundled-data.ts";

// The build writes genai-prices' providers as JSON so the gateway need not compile the package's
// 830 KB module (src/pricing/bundled-data.ts); the JSON must say exactly what the package says.
const dir = mkdtempSync(join(tmpdir(), "tollgate-prices-"));
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
  const written = JSON.parse(readFileSync(file, "utf8")) as { version: string };
  assert.ok(builtPrices(file, written.version));
  assert.equal(builtPrices(file, `${written.version}-other`), undefined);
  assert.equal(builtPrices(join(dir, "absent.json"), written.version), undefined);
});

test("a file that is not the build's price data is refused with a rebuild hint", () => {
  const file = join(dir, "broken.json");
  writeFileSync(file, JSON.stringify({ version: "1", providers: [{ name: "no id" }] }));
  assert.throws(() => builtPrices(file, "1"), /is not the price data the build writes .*npm run build/);
});
