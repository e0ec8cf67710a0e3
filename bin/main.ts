// The entry point, compiled to dist/bin/main.js: it composes in the platform integrations (src never imports integrations/).
import { integrations } from "../integrations/index.ts";
import { runCli } from "../src/cli.ts";

await runCli(process.argv.slice(2), integrations);
