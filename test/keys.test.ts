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
import { FAILING_ACTOR, failAuditFor } from "./helpers/audit.ts";
import { ADMIN_TOKEN, type TestGateway, startTestGateway } from "./helpers/gateway.ts";

const MASTER_KEY = randomBytes(32).toString("hex");

let t: TestGateway;
before(async () => {
  t = await startTestGateway({ TOLLGATE_MASTER_KEY: MASTER_KEY });
});
after(() => t.close());

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await t.admin(path, { method, headers, ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, type: res.headers.get("content-type") ?? "", text, body: text ? (JSON.parse(text) as any) : undefined };
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const as = (name: string) => ({ "x-tollgate-actor": name });

/** The audit entries of one entity, oldest first, as the admin API answers them. */
async function auditOf(entity: string, id: string): Promise<{ actor: string; action: string; before: any; after: any }[]> {
  const res = await call("GET", `/api/audit?entity=${entity}&entity_id=${id}&limit=500`);
  assert.equal(res.status, 200);
  return res.body.entries.reverse();
}

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
    assert.equal((await t.gateway.keys.find(created.key))?.id, created.id);
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
    assert.ok(await t.gateway.keys.find(created.key));
    const first = await call("DELETE", `/api/keys/${created.id}`);
    assert.equal(first.status, 200);
    assert.equal(first.body.id, created.id);
    assert.match(first.body.revoked_at, /^\d{4}-\d\d-\d\dT/);
    assert.equal(first.body.key, undefined);
    const second = await call("DELETE", `/api/keys/${created.id}`);
    assert.equal(second.status, 200);
    assert.equal(second.body.revoked_at, first.body.revoked_at, "revoking again does not move the revocation time");
    assert.equal(await t.gateway.keys.find(created.key), null);
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

describe("audit of keys and ingest sources", () => {
  test("creating and revoking a virtual key and rotating a source's secrets are audited with their actor, never with secret material", async () => {
    const key = await call("POST", "/api/keys", { kind: "virtual", name: "audited-virtual", team: "search", allowed_models: ["gpt-4o"] }, as("alice"));
    assert.equal(key.status, 201);
    const revoked = await call("DELETE", `/api/keys/${key.body.id}`, undefined, as("bob"));
    assert.equal(revoked.status, 200);
    assert.equal((await call("DELETE", `/api/keys/${key.body.id}`, undefined, as("carol"))).status, 200, "revoking again is a no-op, logged by no one");
    const { key: _key, prefix: _prefix, ...record } = key.body;
    assert.deepEqual(
      (await auditOf("key", key.body.id)).map((e) => [e.actor, e.action, e.before, e.after]),
      [
        ["admin:alice", "create", null, record],
        ["admin:bob", "revoke", record, { ...record, revoked_at: revoked.body.revoked_at }],
      ],
    );

    const source = await call("POST", "/api/ingest-sources", { name: "audited-sender" }, as("alice"));
    const rotated = await call("POST", `/api/ingest-sources/${source.body.id}/secrets`, undefined, as("dave"));
    assert.equal(rotated.status, 201);
    assert.deepEqual((await call("POST", `/api/ingest-sources/${source.body.id}/revoke-older-secrets`, undefined, as("erin"))).body, { revoked: 1 });
    assert.deepEqual((await call("POST", `/api/ingest-sources/${source.body.id}/revoke-older-secrets`, undefined, as("frank"))).body, { revoked: 0 });
    assert.deepEqual(
      (await auditOf("ingest_source", source.body.id)).map((e) => [e.actor, e.action, e.after]),
      [
        ["admin:alice", "create", { id: source.body.id, name: "audited-sender" }],
        ["admin:dave", "add_secret", { secret_id: rotated.body.secret_id }],
        ["admin:erin", "revoke_older_secrets", { revoked: 1 }],
      ],
    );

    const sealed = await t.gateway.database.rows<{ secret_encrypted: string }>(sql`select secret_encrypted from ingest_source_secrets where source_id = ${source.body.id}`);
    const everything = (await call("GET", "/api/audit?limit=500")).text;
    const material = [key.body.key, key.body.key.slice(key.body.prefix.length), key.body.prefix, sha256(key.body.key), ...[source.body.secret, rotated.body.secret].flatMap((s: string) => [s, s.slice("whsec_".length)]), ...sealed.map((r) => r.secret_encrypted)];
    for (const secret of material) assert.ok(!everything.includes(secret), `no key material in the audit log: ${secret.slice(0, 8)}…`);
  });

  test("concurrent revocations of one live key: all answer the same revocation, one of them is logged", async () => {
    const key = (await call("POST", "/api/keys", { kind: "virtual", name: "raced" })).body;
    const answers = await Promise.all(["r1", "r2", "r3", "r4", "r5"].map((name) => call("DELETE", `/api/keys/${key.id}`, undefined, as(name))));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200]);
    assert.equal(new Set(answers.map((a) => a.body.revoked_at)).size, 1);
    const revokes = (await auditOf("key", key.id)).filter((e) => e.action === "revoke");
    assert.equal(revokes.length, 1, JSON.stringify(revokes.map((e) => e.actor)));
  });

  test("a change whose audit entry fails leaves nothing behind", async () => {
    const live = (await call("POST", "/api/keys", { kind: "ingest", name: "stays-live" })).body;
    const source = (await call("POST", "/api/ingest-sources", { name: "stays-as-is" })).body;
    assert.equal((await call("POST", `/api/ingest-sources/${source.id}/secrets`)).status, 201);
    const stored = () =>
      t.gateway.database.rows(sql`select
        (select count(*)::int from api_keys where name = 'never-created') as created,
        (select revoked_at from api_keys where id = ${live.id}) as revoked_at,
        (select count(*)::int from ingest_sources where name = 'never-created') as sources,
        (select count(*)::int from ingest_source_secrets where source_id = ${source.id} and revoked_at is null) as active_secrets,
        (select count(*)::int from audit_log) as audit`);
    const before = await stored();
    assert.deepEqual(before[0], { created: 0, revoked_at: null, sources: 0, active_secrets: 2, audit: before[0]!.audit });

    const restore = await failAuditFor(t.gateway.database);
    try {
      const failing = as(FAILING_ACTOR);
      assert.equal((await call("POST", "/api/keys", { kind: "virtual", name: "never-created" }, failing)).status, 500);
      assert.equal((await call("DELETE", `/api/keys/${live.id}`, undefined, failing)).status, 500);
      assert.equal((await call("POST", "/api/ingest-sources", { name: "never-created" }, failing)).status, 500);
      assert.equal((await call("POST", `/api/ingest-sources/${source.id}/secrets`, undefined, failing)).status, 500);
      assert.equal((await call("POST", `/api/ingest-sources/${source.id}/revoke-older-secrets`, undefined, failing)).status, 500);
    } finally {
      await restore();
    }
    assert.deepEqual(await stored(), before, "no key, revocation, source or secret change without its audit entry");
    assert.ok(await t.gateway.keys.find(live.key), "the key is still live");
    assert.equal((await call("GET", "/api/ingest-sources")).body.sources.find((s: any) => s.id === source.id).active_secrets, 2);

    // The same revocation by someone else goes through, and is logged once.
    assert.equal((await call("DELETE", `/api/keys/${live.id}`, undefined, as("grace"))).status, 200);
    assert.deepEqual((await auditOf("key", live.id)).map((e) => `${e.actor} ${e.action}`), ["admin create", "admin:grace revoke"]);
  });
});
