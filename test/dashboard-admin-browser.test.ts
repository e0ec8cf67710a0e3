import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { NO_BROWSER, launchBrowser } from "./helpers/browser.ts";
import { ADMIN_TOKEN, type TestGateway, startTestGateway } from "./helpers/gateway.ts";

/*
 * The admin pages in a real browser (headless chromium), with no script of ours: a key created
 * from the form and shown once, revoked through its confirm page; one end user's usage erased
 * after typing the id. The forms work under the pages' Content-Security-Policy.
 */

let gw: TestGateway;
let browser: Browser;
let page: Page;

describe("admin pages in a browser", { skip: NO_BROWSER }, () => {
  before(async () => {
    gw = await startTestGateway({ TOLLGATE_JOBS: "off" });
    const lines = Array.from({ length: 6 }, (_, i) => ({
      id: `e${i}`,
      timestamp: new Date(Date.now() - i * 3_600_000).toISOString(),
      model: "gpt-4o",
      provider: "openai",
      input_tokens: 1000 + i,
      output_tokens: 100,
      team: "search",
      user: i < 4 ? "erin@example.com" : "frank",
    }));
    const res = await gw.admin("/api/usage?source=test", { method: "POST", headers: { "content-type": "application/x-ndjson" }, body: lines.map((l) => JSON.stringify(l)).join("\n") });
    assert.equal(res.status, 200);
    browser = await launchBrowser();
    page = await browser.newPage();
    await page.goto(`${gw.base}/sign-in`);
    await page.getByLabel("Your name, for the audit log").fill("Dana Admin");
    await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${gw.base}/`);
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  test("creates a key from the form, sees it once, revokes it through the confirm page", async () => {
    await page.getByRole("link", { name: "Keys" }).click();
    await page.getByLabel("Name", { exact: true }).fill("browser key");
    await page.getByLabel("team", { exact: true }).fill("search");
    await page.getByRole("checkbox", { name: "openai" }).check();
    await page.getByRole("button", { name: "Create key" }).click();
    await page.getByRole("heading", { name: "Key browser key created" }).waitFor();
    const key = await page.getByLabel("The virtual key").inputValue();
    assert.match(key, /^tlg_/);
    const listed = ((await (await gw.admin("/api/keys")).json()) as { keys: { name: string; prefix: string; allowed_providers: string[] | null; team: string | null }[] }).keys.find((k) => k.name === "browser key")!;
    assert.deepEqual([listed.team, listed.allowed_providers], ["search", ["openai"]]);

    await page.getByRole("link", { name: "Back to the keys" }).click();
    assert.equal((await page.content()).includes(key), false, "not shown again");
    await page.getByRole("link", { name: "Revoke browser key…" }).click();
    await page.getByRole("button", { name: "Revoke browser key" }).click();
    await page.getByText("Key browser key is revoked").waitFor();
    const after = ((await (await gw.admin("/api/keys")).json()) as { keys: { name: string; revoked_at: string | null }[] }).keys.find((k) => k.name === "browser key")!;
    assert.ok(after.revoked_at);
  });

  test("erases one end user's usage after typing the id, and shows the count", async () => {
    await page.getByRole("link", { name: "End user data" }).click();
    await page.getByLabel("End user id").fill("erin@example.com");
    await page.getByRole("button", { name: "Look up" }).click();
    assert.equal(await page.locator("#footprint-requests").textContent(), "4");
    await page.getByRole("link", { name: "Erase their usage…" }).click();
    await page.getByLabel("Type the end user id to confirm").fill("erin@example.com");
    await page.getByRole("button", { name: "Erase their usage" }).click();
    assert.equal(await page.locator("#erased-events").textContent(), "4");
    const left = (await (await gw.admin("/api/spend?period=last-30d")).json()) as { total: { requests: number } };
    assert.equal(left.total.requests, 2);
  });
});
