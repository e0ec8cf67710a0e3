import type { Integration } from "../src/integration.ts";
import { slack } from "./slack/index.ts";
import { teams } from "./teams/index.ts";
import { telegram } from "./telegram/index.ts";
import { webhook } from "./webhook/index.ts";

/** Every platform this build delivers to; the entry point hands them to the gateway. */
export const integrations: Integration[] = [webhook, slack, telegram, teams];
