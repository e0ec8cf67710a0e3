import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { ADMIN_TOKEN, type TestGateway, startTestGateway } from "./helpers/gateway.ts";
import { NO_BROWSER, launchBrowser } from "./helpers/browser.ts";

/*
 * The dashboard in a real browser (headless chromium through Playwright): sign in with the
 * token, the overview's total against /api/spend, a chart drawn, exploring by team, creating a
 * budget with its form, approving a raise with its button, signing out. Nothing here runs script of ours: the pages have none.
 */

let gw: TestGateway;
let browser: Browser;
let page: Page;

async function api<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await gw.admin(path, init);
  assert.ok(res.ok, `${path}: ${res.status} ${await res.clone().text()}`);
  return (await res.json()) as T;
}

describe("dashboard in a browser", { skip: NO_BROWSER }, () => {
  before(async () => {
    gw = await startTestGateway({ TOLLGATE_JOBS: "off" });
    const now = Date.now();
    const lines = Array.from({ length: 30 }, (_, i) => ({
      id: `b${i}`,
      timestamp: new Date(now - i * 2_700_000).toISOString(),
      model: i % 3 ? "gpt-4o" : "gpt-4o-mini",
      provider: "openai",
      input_tokens: 2000 + i * 31,
      output_tokens: 300 + i * 5,
      team: ["search", "ads", "support"][i % 3],
      feature: "chat",
    }));
    const res = await gw.admin("/api/usage?source=test", { method: "POST", headers: { "content-type": "application/x-ndjson" }, body: lines.map((l) => JSON.stringify(l)).join("\n") });
    assert.equal(res.status, 200);
    browser = await launchBrowser();
    page = await browser.newPage();
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  test("signs in with the admin token from the sign-in page it is sent to", async () => {
    await page.goto(`${gw.base}/`);
    assert.match(page.url(), /\/sign-in\?next=%2F$/);
    await page.getByLabel("Your name, for the audit log").fill("Dana Admin");
    await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${gw.base}/`);
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Overview");
    assert.match((await page.locator(".who").textContent())!, /Dana Admin \(admin\)/);
  });

  test("the overview's month total is /api/spend's, and the daily chart is drawn", async () => {
    const spend = await api<{ total: { cost_usd: string } }>("/api/spend?period=this-month");
    assert.equal(await page.locator("#month-total data").getAttribute("value"), spend.total.cost_usd);
    const chart = page.locator("figure#daily svg[role=img]");
    await chart.waitFor({ state: "visible" });
    const box = (await chart.boundingBox())!;
    assert.ok(box.width > 300 && box.height > 100, `drawn at ${box.width}×${box.height}`);
    assert.ok((await page.locator("figure#daily svg path, figure#daily svg polyline, figure#daily svg circle").count()) > 0, "the chart has marks");
    assert.match((await chart.getAttribute("aria-labelledby"))!, /title/);
  });

  test("explores this month's spend by team, each team's figure the API's", async () => {
    await page.getByRole("link", { name: "Explore spend" }).click();
    await page.getByLabel("Group by").selectOption("team");
    await page.getByRole("button", { name: "Show" }).click();
    await page.waitForURL(/by=team/);
    const spend = await api<{ total: { cost_usd: string }; groups: { key: string; cost_usd: string }[] }>("/api/spend?period=this-month&by=team&top=50");
    assert.equal(await page.locator("#explore-total data").getAttribute("value"), spend.total.cost_usd);
    const table = page.getByRole("table", { name: "Spend by team" });
    for (const g of spend.groups) {
      const row = table.getByRole("row").filter({ has: page.getByRole("cell", { name: g.key, exact: true }) });
      assert.equal(await row.locator("data").first().getAttribute("value"), g.cost_usd, g.key);
    }
    assert.equal(await page.locator("figure#explore svg rect title").count(), spend.groups.length);
  });

  test("creates a budget with the form, a refused amount shown at its field first, and the API has it", async () => {
    await page.getByRole("link", { name: "Budgets" }).click();
    await page.getByRole("link", { name: "New budget" }).click();
    await page.getByLabel("Name", { exact: true }).fill("support-weekly");
    await page.getByLabel("Amount (USD)").fill("1,200");
    await page.getByLabel("Period").selectOption("week");
    await page.getByLabel("Scope: team").fill("support");
    await page.getByRole("button", { name: "Create budget" }).click();
    assert.match((await page.getByRole("alert").textContent())!, /Amount \(USD\): "1,200" is not a decimal amount of USD/);
    assert.equal(await page.getByLabel("Scope: team").inputValue(), "support", "what was typed is kept");
    await page.getByLabel("Amount (USD)").fill("1200");
    await page.getByRole("button", { name: "Create budget" }).click();
    await page.waitForURL(/done=created/);
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Budget support-weekly");
    const budget = await api<{ amount_usd: string; period: string; scope: Record<string, string> }>("/api/budgets/support-weekly");
    assert.deepEqual(budget, { ...budget, amount_usd: "1200", period: "week", scope: { team: "support" } });
  });

  test("approves a raise with its button, and the budget is raised", async () => {
    await api("/api/members", { method: "PUT", body: JSON.stringify({ platform: "cli", user_id: "rita", role: "requester", name: "Rita Requester" }) });
    await api("/api/budgets", { method: "POST", body: JSON.stringify({ name: "search-monthly", scope: { team: "search" }, amount_usd: "100", period: "month" }) });
    const raise = await api<{ id: string }>("/api/approvals", { method: "POST", body: JSON.stringify({ budget: "search-monthly", amount_usd: "250", reason: "launch week", requested_by: "cli:rita" }) });
    await page.getByRole("link", { name: "Approvals" }).click();
    const row = page.getByRole("row").filter({ hasText: "launch week" });
    await row.getByRole("button", { name: "Approve search-monthly" }).click();
    await page.waitForURL(/decided=/);
    assert.match((await page.getByRole("status").textContent())!, /search-monthly to \$250\.00 was approved by admin:Dana Admin/);
    const budget = await api<{ amount_usd: string }>("/api/budgets/search-monthly");
    assert.equal(budget.amount_usd, "250");
    const decided = await api<{ status: string; decided_by: string }>(`/api/approvals/${raise.id}`);
    assert.deepEqual([decided.status, decided.decided_by], ["approved", "admin:Dana Admin"]);
    await page.getByRole("link", { name: "Budgets" }).click();
    const budgetRow = page.getByRole("row").filter({ hasText: "search-monthly" });
    assert.equal(await budgetRow.locator("td").nth(4).locator("data").getAttribute("value"), "250");
  });

  test("the keyboard reaches the navigation first, past a skip link", async () => {
    await page.keyboard.press("Tab");
    assert.equal(await page.locator(":focus").textContent(), "Skip to content");
    await page.keyboard.press("Tab");
    assert.equal(await page.locator(":focus").textContent(), "Overview");
  });

  test("signs out, and the dashboard asks to sign in again", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/sign-in$/);
    await page.goto(`${gw.base}/budgets`);
    assert.match(page.url(), /\/sign-in\?next=%2Fbudgets$/);
  });
});
