import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CommandContext } from "../commands/context.ts";
import { answerText } from "../commands/door.ts";
import { reply } from "../commands/reply.ts";
import { type Element, INPUTS, LIMITS, alertsCard, md, replyCard } from "../integrations/teams/cards.ts";
import type { Alert } from "../src/alerts/alert.ts";
import { gatewayRegistry } from "./helpers/registry.ts";
import { cardProblems } from "./helpers/adaptive-card.ts";
import { sampleAlert, sampleChartedAlert, sampleDigest } from "./helpers/sample-alert.ts";

const alert = sampleAlert;

const approval = (status?: "approved" | "rejected" | "expired"): Alert =>
  alert({
    id: `approval:apr_1:${status ?? "requested"}`,
    kind: status ? "approval_decided" : "approval_requested",
    title: status ? `Raise of search-monthly to $800.00 ${status}` : "slack:U1 asks to raise search-monthly to $800.00",
    actions: status ? [] : [
      { action: "approve", label: "Approve $800.00", target: "apr_1" },
      { action: "reject", label: "Reject", target: "apr_1" },
    ],
    top: [],
    details: {
      approval_id: "apr_1",
      from_usd: "500",
      to_usd: "800",
      reason: "launch week",
      requested_by: "slack:U1",
      expires_at: "2026-11-23T14:02:00.000Z",
      ...(status ? { status, decided_by: "teams:aad-dana", decided_by_name: "Dana Ruiz", decision_reason: status === "rejected" ? "not now" : null } : {}),
    },
  });

const digest = alert({ id: "digest:1", kind: "digest_daily", title: "AI spend yesterday", budget: null, amount_usd: null, percent: null, threshold: null, forecast_usd: null, actions: [], top: [{ dimension: "team", key: "search", spend_usd: "12" }] });

/** Every TextBlock text and fact of a card, deep. */
function texts(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(texts);
  if (!value || typeof value !== "object") return [];
  const o = value as Record<string, unknown>;
  return [...(typeof o.text === "string" ? [o.text] : []), ...(typeof o.value === "string" && !("id" in o) ? [o.value] : []), ...Object.values(o).flatMap(texts)];
}

function find(value: unknown, pred: (e: Record<string, unknown>) => boolean): Record<string, unknown>[] {
  if (Array.isArray(value)) return value.flatMap((v) => find(v, pred));
  if (!value || typeof value !== "object") return [];
  const o = value as Record<string, unknown>;
  return [...(pred(o) ? [o] : []), ...Object.values(o).flatMap((v) => find(v, pred))];
}

const registry = gatewayRegistry();
/** Help and a parse error need nothing of the gateway: no services are there to be asked. */
const asker: CommandContext = { caller: { kind: "member", platform: "teams", userId: "u" }, conversation: { platform: "teams", address: {}, timezone: "UTC" }, services: {} as never, now: new Date() };

describe("Teams cards", () => {
  test("every card the renderer makes is a valid Adaptive Card 1.5", async () => {
    const helps = await Promise.all(["help", ...registry.commands.map((c) => `help ${c.name}`)].map((text) => answerText(registry, text, asker)));
    assert.ok(helps.every((h) => !h.error));
    const cards = [
      ...helps.map((h) => replyCard(h)),
      replyCard(reply({ title: "I did not understand that", summary: "unknown command", notes: ["Expected spend."], error: true }), "Only approvers can decide raises."),
      replyCard(
        reply({
          title: "AI spend this week",
          summary: "$1,234.56 in total",
          facts: [{ label: "Total", value: "$1,234.56" }],
          bars: { heading: "By team", rows: [{ label: "search", value: "$1,000.00", share: 1000 }, { label: "ads", value: "$234.56", share: 234 }] },
          actions: [
            { action: "breakdown", label: "Breakdown", target: "this-week" },
            { action: "request_raise", label: "Request raise", target: "b" },
            { action: "approve", label: "Approve", target: "apr_1" },
            { action: "reject", label: "Reject", target: "apr_1" },
            { action: "mute", label: "Mute", target: "b" },
          ],
        }),
      ),
      alertsCard([alert()]),
      alertsCard([alert({ kind: "blocked" }), alert({ id: "2", kind: "forecast" })]),
      alertsCard([approval()]),
      alertsCard([approval("approved")]),
      alertsCard([approval("rejected")]),
      alertsCard([approval("expired")]),
      alertsCard([approval(), approval()], "You are not an approver."),
      alertsCard([digest]),
    ];
    for (const card of cards) assert.deepEqual(cardProblems(card), [], JSON.stringify(card));
    // The parse-error card of the command core, as a user would get it.
    const parsed = await answerText(registry, "spnd", asker);
    assert.deepEqual(cardProblems(replyCard(parsed)), []);
  });

  test("a threshold alert shows when the amount runs out at this pace, in each reader's zone; none when it will not run out", () => {
    const lines = (card: unknown) => find(card, (e) => e.type === "TextBlock").map((e) => (e as { text: string }).text);
    assert.ok(lines(alertsCard([alert()])).includes("Runs out at this pace {{DATE(2026-11-27T09:30:00Z, SHORT)}} {{TIME(2026-11-27T09:30:00Z)}}"));
    assert.ok(!lines(alertsCard([alert({ run_out_at: null })])).some((l) => l.startsWith("Runs out")));
  });

  test("approval cards: Action.Execute approve and reject with a reason input, Submit fallbacks, refresh while pending", () => {
    const card = alertsCard([approval()]);
    const executes = find(card, (e) => e.type === "Action.Execute");
    assert.deepEqual(executes.map((e) => e.verb).sort(), ["approve", "refresh", "reject"]);
    for (const e of executes.filter((x) => x.verb !== "refresh")) {
      assert.deepEqual(e.data, { verb: e.verb, target: "apr_1" });
      assert.deepEqual((e.fallback as Element).type, "Action.Submit");
      assert.deepEqual((e.fallback as { data: unknown }).data, e.data);
    }
    assert.equal(find(card, (e) => e.id === INPUTS.rejectReason).length, 1);
    assert.deepEqual(card.refresh?.action.data, { verb: "refresh", target: "apr_1" });
    const shown = texts(card).join("\n");
    for (const fact of ["search-monthly", "$412.50 of $500.00", "$610.25", "$500.00 → $800.00", "launch week", "slack:U1", "apr\\_1"]) assert.ok(shown.includes(fact), `${fact} in ${shown}`);

    const decided = alertsCard([approval("approved")]);
    assert.equal(decided.refresh, undefined, "a decided card is final");
    assert.equal(find(decided, (e) => e.type === "Action.Execute").length, 0);
    assert.match(texts(decided).join("\n"), /\*\*Approved\*\* by Dana Ruiz, \{\{TIME\(2026-11-23T14:02:00Z\)\}\}, \$500\.00 → \$800\.00/);
    assert.match(texts(alertsCard([approval("rejected")])).join("\n"), /\*\*Rejected\*\* by Dana Ruiz.*\n?[\s\S]*not now/);
  });

  test("values from usage data cannot inject markdown, links or date functions", () => {
    const hostile = "**boss** [click](https://evil.example) _x_ `code` <b>hi</b> {{DATE(2020-01-01T00:00:00Z)}}\n# head\n- item\n1. one";
    const card = alertsCard([alert({ title: hostile, summary: hostile, top: [{ dimension: "team", key: hostile, spend_usd: "1" }], budget: { id: "b", name: hostile, scope: { team: hostile }, mode: "soft", period: "month" } })]);
    assert.deepEqual(cardProblems(card), []);
    for (const t of texts(card)) {
      assert.doesNotMatch(t, /(?<!\\)\*\*boss/);
      assert.doesNotMatch(t, /(?<!\\)\[click(?<!\\)\]/);
      assert.doesNotMatch(t, /\{\{DATE\(2020/);
      assert.doesNotMatch(t, /^#|^- |^1\./m);
    }
    assert.equal(md("a*b_c"), "a\\*b\\_c");
  });

  test("alert charts: a Chart.Line of the digest's trend and of a budget's period so far, each with its text lines for clients without charts", () => {
    const hostile = "**boss** {{DATE(2020-01-01T00:00:00Z)}}";
    const card = alertsCard([sampleDigest(hostile), sampleChartedAlert()]);
    assert.deepEqual(cardProblems(card), []);
    const charts = find(card, (e) => e.type === "Chart.Line");
    assert.equal(charts.length, 2);
    const trend = charts[0]!.data as { legend: string; values: { x: string; y: number }[] }[];
    assert.deepEqual(trend.map((x) => x.legend), ["Last 7 days", "7 days before"]);
    assert.deepEqual(trend[0]!.values.map((v) => v.y), [10, 10, 12.5, 7.5, 10, 10, 10]);
    assert.equal(trend[0]!.values[0]!.x, "Mon 9 Nov");
    assert.deepEqual((charts[1]!.data as { legend: string }[]).map((x) => x.legend), ["Spent", "Budget"]);
    // The chart's title is no date function; the fallback's lines and the movers are escaped markdown.
    assert.doesNotMatch(String(charts[0]!.title), /\{\{DATE/);
    const fallback = texts(charts[0]!.fallback);
    assert.ok(fallback.includes("Mon 9 Nov: Last 7 days $10.00, 7 days before $5.00"), fallback.join("\n"));
    const all = texts(card);
    assert.ok(all.includes("• \\*\\*boss\\*\\* {\u200b{DATE(2020-01-01T00:00:00Z)}}: +$27.50 ($12.50 → $40.00)"), all.join("\n"));
    assert.ok(all.includes("**Top movers by feature**"));
  });

  test("long tables, bars and contributor lists are cut with a count, within Teams' message size", () => {
    const rows = Array.from({ length: 500 }, (_, i) => [`budget-${i}`, "team:x".repeat(20), "$1.00 / $2.00", "50 %", "ok", "soft"]);
    const card = replyCard(
      reply({
        title: "x".repeat(5000),
        table: { columns: ["budget", "scope", "spent", "used", "state", "mode"], rows },
        bars: { heading: "By user", rows: rows.map((r) => ({ label: r[0]!, value: "$1.00", share: 10 })) },
      }),
    );
    assert.deepEqual(cardProblems(card), []);
    const shown = texts(card).join("\n");
    assert.ok(shown.includes(`…and ${(500 - LIMITS.tableRows + 1).toLocaleString("en-US")} more`));
    assert.ok(shown.includes(`…and ${500 - LIMITS.bars + 1} more`));
    assert.ok(Buffer.byteLength(JSON.stringify(card)) < 28_000, `${Buffer.byteLength(JSON.stringify(card))} bytes`);
  });
});

describe("Teams app package", () => {
  test("the manifest, with a bot's ids, validates against the Teams schema it names; icons are the sizes Teams asks", async () => {
    const { filledManifest, MANIFEST_DIR } = await import("../integrations/teams/package.ts");
    const { readFileSync } = await import("node:fs");
    const { createRequire } = await import("node:module");
    const { Ajv } = await import("ajv");
    const botId = "2f1a6c3e-1b2c-4d5e-8f90-123456789abc";
    const manifest = filledManifest(botId, { domain: "tollgate.example.com" });
    const version = String(manifest.manifestVersion);
    assert.equal(manifest.$schema, `https://developer.microsoft.com/json-schemas/teams/v${version}/MicrosoftTeams.schema.json`);
    const require = createRequire(import.meta.url);
    const schema = JSON.parse(readFileSync(require.resolve(`@microsoft/app-manifest/build/json-schemas/teams/v${version}/MicrosoftTeams.schema.json`), "utf8"));
    // The schema says draft-04 but uses `const` (draft-06); Ajv reads it as draft-07, which covers both.
    delete schema.$schema;
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    const validate = ajv.compile(schema);
    assert.ok(validate(manifest), JSON.stringify(validate.errors, null, 1));
    const bots = manifest.bots as { botId: string; scopes: string[]; commandLists: { commands: { title: string }[] }[] }[];
    assert.equal(bots[0]!.botId, botId);
    assert.deepEqual(bots[0]!.scopes.sort(), ["groupChat", "personal", "team"]);
    assert.deepEqual(bots[0]!.commandLists[0]!.commands.map((c) => c.title), registry.commands.map((c) => c.name));
    const size = (file: string) => {
      const png = readFileSync(`${MANIFEST_DIR}/${file}`);
      return { width: png.readUInt32BE(16), height: png.readUInt32BE(20), colorType: png[25] };
    };
    assert.deepEqual(size("color.png"), { width: 192, height: 192, colorType: 6 });
    assert.deepEqual(size("outline.png"), { width: 32, height: 32, colorType: 6 });
  });

  test("tollgate teams-package writes a zip with the filled manifest and both icons at its root", async () => {
    const { teamsPackageCommand } = await import("../integrations/teams/package.ts");
    const { mkdtempSync, readFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { inflateRawSync } = await import("node:zlib");
    const out = `${mkdtempSync(`${tmpdir()}/teams-`)}/tollgate-teams.zip`;
    const ctx = (options: Record<string, string>) => ({ config: {} as never, logger: {} as never, args: [], options });
    assert.equal(await teamsPackageCommand(ctx({ "bot-id": "not-a-guid" })), 2);
    assert.equal(await teamsPackageCommand(ctx({ "bot-id": "2f1a6c3e-1b2c-4d5e-8f90-123456789abc", out })), 0);
    const zip = readFileSync(out);
    const files = new Map<string, Buffer>();
    for (let at = 0; zip.readUInt32LE(at) === 0x04034b50; ) {
      const packed = zip.readUInt32LE(at + 18);
      const nameLength = zip.readUInt16LE(at + 26);
      const name = zip.subarray(at + 30, at + 30 + nameLength).toString();
      files.set(name, inflateRawSync(zip.subarray(at + 30 + nameLength, at + 30 + nameLength + packed)));
      at += 30 + nameLength + packed;
    }
    assert.deepEqual([...files.keys()], ["manifest.json", "color.png", "outline.png"]);
    assert.equal(JSON.parse(files.get("manifest.json")!.toString()).id, "2f1a6c3e-1b2c-4d5e-8f90-123456789abc");
  });
});
