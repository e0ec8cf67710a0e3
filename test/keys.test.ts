import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { createGateway } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { secretBox } from "../src/keys/secret-box.ts";
import { createLogger } from "../src/logger.ts";
import { ADMIN_TOKEN, type TestGateway, startTestGateway } from "./helpers/gateway.ts";

const MASTER_KEY = randomBytes(32).toString("hex");

let t: TestGateway;
before(async () => {
  t = await startTestGateway({ TOLLGATE_MASTER_KEY: MASTER_KEY });
});
after(() => t.close());

async function call(method: string, path: string, body?: unknown) {
  const res = await t.admin(path, { method, ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, type: res.headers.get("content-type") ?? "", text, body: text ? (JSON.parse(text) as any) : undefined };
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

describe("admin API: keys", () => {
  test("POST /api/keys answers 201 with a tlg_ key shown once; the database holds only its hash", async () => {
    const res = await call("POST", "/api/keys", { kind: "ingest", name: "billing", team: "search", project: "ranker" });
    assert.equal(res.status, 201);
    const created = res.body;
    assert.match(created.key, /^tlg_[A-Za-z0-9_-]{20,}$/);
    assert.equal(created.kind, "ingest");
    assert.equal(created.name, "billing");
    assert.equal(created.team, "search");
    assert.equal(created.project, "ranker");
    assert.equal(created.feature, null);
    assert.equal(created.revoked_at, null);
    assert.ok(created.key.startsWith(created.prefix));
    assert.ok(created.prefix.length < created.key.length);

    const [row] = await t.gateway.database.rows<Record<string, unknown>>(sql`select * from api_keys where id = ${created.id}`);
    assert.ok(row);
    assert.notEqual(row.hash, created.key);
    assert.equal(row.hash, sha256(created.key));
    const secretPart = created.key.slice(created.prefix.length);
    assert.ok(!JSON.stringify(row).includes(secretPart), "no column holds the key");

    const listed = await call("GET", "/api/keys");
    assert.equal(listed.status, 200);
    assert.ok(listed.body.keys.some((k: any) => k.id === created.id && k.name === "billing" && k.prefix === created.prefix));
    assert.ok(!listed.text.includes(secretPart), "the listing never shows the key");
    assert.ok(!listed.text.includes(row.hash as string), "the listing never shows the hash");
    for (const k of listed.body.keys) {
      assert.equal(k.key, undefined);
      assert.equal(k.hash, undefined);
    }
    assert.equal((await t.gateway.keys.authenticate(created.key, "ingest"))?.id, created.id);
  });

  test("bad bodies answer 400 problem+json with the paths at fault", async () => {
    const cases: [unknown, string][] = [
      [{ name: "no kind" }, "kind"],
      [{ kind: "admin", name: "unknown kind" }, "kind"],
      [{ kind: "ingest", name: "" }, "name"],
      [{ kind: "ingest", name: "   " }, "name"],
      [{ kind: "ingest" }, "name"],
      [{ kind: "ingest", name: "n", team: 7 }, "team"],
      [{ kind: "ingest", name: "nul\u0000name" }, "name"],
    ];
    for (const [body, path] of cases) {
      const res = await call("POST", "/api/keys", body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.type, /application\/problem\+json/);
      assert.ok(
        res.body.errors.some((e: any) => e.path === path && typeof e.message === "string"),
        `${JSON.stringify(body)} → ${JSON.stringify(res.body.errors)}`,
      );
    }
    const unknown = await call("POST", "/api/keys", { kind: "ingest", name: "x", colour: "blue" });
    assert.equal(unknown.status, 400);
    assert.match(unknown.type, /application\/problem\+json/);
    assert.ok(Array.isArray(unknown.body.errors) && unknown.body.errors.length > 0);
    assert.ok(unknown.body.errors.every((e: any) => typeof e.path === "string"));
    assert.match(JSON.stringify(unknown.body.errors), /colour/);

    const notJson = await call("POST", "/api/keys", "{kind: ingest");
    assert.equal(notJson.status, 400);
    assert.match(notJson.type, /application\/problem\+json/);
    const before = (await call("GET", "/api/keys")).body.keys.length;
    await call("POST", "/api/keys", { kind: "ingest", name: "" });
    assert.equal((await call("GET", "/api/keys")).body.keys.length, before, "a rejected body creates nothing");
  });

  test("the admin API needs the admin token", async () => {
    const res = await fetch(`${t.base}/api/keys`, { headers: { authorization: "Bearer not-the-admin-token-at-all" } });
    assert.equal(res.status, 401);
    const none = await fetch(`${t.base}/api/keys`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(none.status, 401);
    assert.notEqual(ADMIN_TOKEN, "");
  });

  test("DELETE /api/keys/:id revokes; twice is still 200; an unknown id is 404", async () => {
    const created = (await call("POST", "/api/keys", { kind: "ingest", name: "to-revoke" })).body;
    assert.ok(await t.gateway.keys.authenticate(created.key, "ingest"));
    const first = await call("DELETE", `/api/keys/${created.id}`);
    assert.equal(first.status, 200);
    assert.equal(first.body.id, created.id);
    assert.match(first.body.revoked_at, /^\d{4}-\d\d-\d\dT/);
    assert.equal(first.body.key, undefined);
    const second = await call("DELETE", `/api/keys/${created.id}`);
    assert.equal(second.status, 200);
    assert.equal(second.body.revoked_at, first.body.revoked_at, "revoking again does not move the revocation time");
    assert.equal(await t.gateway.keys.authenticate(created.key, "ingest"), null);
    const listed = (await call("GET", "/api/keys")).body.keys.find((k: any) => k.id === created.id);
    assert.equal(listed.revoked_at, first.body.revoked_at);

    const missing = await call("DELETE", "/api/keys/00000000-0000-0000-0000-000000000000");
    assert.equal(missing.status, 404);
    assert.match(missing.type, /application\/problem\+json/);
    assert.equal((await call("DELETE", "/api/keys/not-a-uuid")).status, 404);
  });
});

describe("admin API: ingest sources", () => {
  test("POST /api/ingest-sources answers 201 with a whsec_ secret; a duplicate name is 409", async () => {
    const res = await call("POST", "/api/ingest-sources", { name: "payments" });
    assert.equal(res.status, 201);
    assert.equal(res.body.name, "payments");
    assert.match(res.body.secret, /^whsec_[A-Za-z0-9+/]+=*$/);
    assert.equal(Buffer.from(res.body.secret.slice("whsec_".length), "base64").length, 32);
    const again = await call("POST", "/api/ingest-sources", { name: "payments" });
    assert.equal(again.status, 409);
    assert.match(again.type, /application\/problem\+json/);
    assert.equal((await call("POST", "/api/ingest-sources", { name: "  payments " })).status, 409);
    for (const body of [{}, { name: "" }, { name: "nul\u0000name" }]) {
      const bad = await call("POST", "/api/ingest-sources", body);
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.equal(bad.body.errors[0].path, "name");
    }
    const listed = (await call("GET", "/api/ingest-sources")).body.sources;
    assert.deepEqual(
      listed.filter((s: any) => s.name === "payments").map((s: any) => ({ id: s.id, active: s.active_secrets })),
      [{ id: res.body.id, active: 1 }],
    );
    assert.ok(!JSON.stringify(listed).includes(res.body.secret.slice(6)));
  });

  test("signing secrets are stored encrypted and only the same master key reads them", async () => {
    const created = (await call("POST", "/api/ingest-sources", { name: "sealed-sender" })).body;
    const secret: string = created.secret;
    const [row] = await t.gateway.database.rows<{ secret_encrypted: string }>(
      sql`select secret_encrypted from ingest_source_secrets where source_id = ${created.id}`,
    );
    assert.ok(row);
    assert.ok(!row.secret_encrypted.includes(secret));
    assert.ok(!row.secret_encrypted.includes(secret.slice("whsec_".length)));
    assert.equal(secretBox(Buffer.from(MASTER_KEY, "hex")).open(row.secret_encrypted), secret);
    assert.ok((await t.gateway.sources.activeSecrets()).some((s) => s.secret === secret && s.sourceId === created.id));

    const otherKey = randomBytes(32);
    assert.throws(() => secretBox(otherKey).open(row.secret_encrypted));

    // Whole gateways over the same database: the data folder does not matter, the master key does.
    const gatewayWith = async (masterKey: string) => {
      const dataDir = mkdtempSync(join(tmpdir(), "tollgate-keys-"));
      const config = loadConfig({ TOLLGATE_DATA_DIR: dataDir, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, TOLLGATE_MASTER_KEY: masterKey });
      const gateway = await createGateway(config, createLogger("silent"), t.gateway.database);
      return {
        gateway,
        close: async () => {
          await gateway.close();
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    };
    const same = await gatewayWith(MASTER_KEY);
    try {
      assert.ok((await same.gateway.sources.activeSecrets()).some((s) => s.secret === secret));
    } finally {
      await same.close();
    }
    const other = await gatewayWith(otherKey.toString("base64"));
    try {
      await assert.rejects(other.gateway.sources.activeSecrets());
    } finally {
      await other.close();
    }
  });
});
