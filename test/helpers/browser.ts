import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

/** Debian's chromium (`apt-get install chromium`), which .ci/run installs; its binary rather than the shell wrapper. */
const CHROMIUM = ["/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"].find((path) => existsSync(path));

/** A skip reason for node:test when there is no browser to drive, said out loud so a local run does not look green by omission. */
export const NO_BROWSER: string | false = CHROMIUM ? false : "SKIPPED: no chromium installed (apt-get install chromium), so the dashboard's browser tests did not run";
if (NO_BROWSER) console.warn(`\n*** ${NO_BROWSER} ***\n`);

/** Headless chromium through Playwright; no sandbox, as tests may run as root in a container. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}
