// The entry point, compiled to dist/bin/main.js: it composes in the platform integrations (src never imports integrations/).
import { keepOldGenerationNearLive } from "../src/old-generation.ts";
import { keepYoungGenerationSmall } from "../src/young-generation.ts";

// Before anything else loads: module loading is what would grow V8's young generation.
keepYoungGenerationSmall();
keepOldGenerationNearLive();
const { integrations } = await import("../integrations/index.ts");
const { runCli } = await import("../src/cli.ts");

await runCli(process.argv.slice(2), integrations);
