#!/usr/bin/env node
// The CLI is TypeScript run through tsx, so the published package needs no build step.
import { register } from "tsx/esm/api";
register();
// Platform integrations are composed in here: src never imports integrations/.
const { integrations } = await import("../integrations/index.ts");
const { runCli } = await import("../src/cli.ts");
await runCli(process.argv.slice(2), integrations);
