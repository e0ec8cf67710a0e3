import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { sql } from "drizzle-orm";
import OpenAI from "openai";
import { type Gateway, createGateway } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { createLogger } from "../src/logger.ts";
import { ANTHROPIC_KEY, startFakeAnthropic } from "./fakes/anthropic.ts";
import type { FakeUpstream } from "./fakes/fake-upstream.ts";
import { OPENAI_KEY, startFakeOpenAI } from "./fakes/openai.ts";
import { FAILING_ACTOR, failAuditFor } from "./helpers/audit.ts";
import { ADMIN_TOKEN, type TestGateway, startTestGateway } from "./helpers/gateway.ts";

const FIRST_MASTER = randomBytes(32).toString("hex");
const SECOND_MASTER = randomBytes(32).toString("base64");
/** The key the API stores: the fake OpenAI accepts it as well as the environment's. */
const STORED_KEY = "sk-stored-openai-key-9876543210zyxw";

let t: TestGateway;
let openaiFake: FakeUpstream;
let storedFake: FakeUpstream;
let anthropicFake: FakeUpstream;

before(async () => {
  openaiFake = await startFakeOpenAI();
  anthropicFake = await startFakeAnthropic();
  storedFake = await startFakeOpenAI(STORED_KEY);
  t = await startTestGateway({
    TOLLGATE_MASTER_KEY: FIRST_MASTER,
    OPENAI_BASE_URL: openaiFake.url,
    OPENAI_API_KEY: OPENAI_KEY,
    ANTHROPIC_BASE_URL: anthropicFake.url,
    ANTHROPIC_API_KEY: ANTHROPIC_KEY,
    TOLLGATE_PROVIDERS: `stored=${storedFake.url}`,
  });
});
after(async () => {
  await t.close();
  await Promise.all([openaiFake.close(), anthropicFake.close(), storedFake.close()]);
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await t.admin(path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
}

async function virtualKey(extra: Record<string, unknown> = {}): Promise<string> {
  const res = await call("POST", "/api/keys", { kind: "virtual", name: `k-${Math.random()}`, ...extra });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.key;
}

const chat = (base: string, key: string, route: string, model = "gpt-4o") =>
  new OpenAI({ baseURL: `${base}/${route}/v1`, apiKey: key, maxRetries: 0 }).chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] });

/** A whole second gateway over the same database, with its own master keys. */
async function gatewayWith(env: Record<string, string>): Promise<{ gateway: Gateway; close(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), "tollgate-providers-"));
  const config = loadConfig({ TOLLGATE_DATA_DIR: dataDir, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, TOLLGATE_PROVIDERS: `stored=${storedFake.url}`, ...env });
  const gateway = await createGateway(config, createLogger("silent"), t.gateway.database);
  return {
    gateway,
    close: async () => {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

describe("provider keys", () => {
  test("a stored key is sealed, listed only by its last characters, used by the proxy, and removable", async () => {
    const before = await call("GET", "/api/providers");
    assert.equal(before.status, 200);
    const byName = (body: any, name: string) => body.providers.find((p: any) => p.provider === name);
    assert.deepEqual(byName(before.body, "openai"), { provider: "openai", source: "environment", hint: `…${OPENAI_KEY.slice(-4)}`, master_key_id: null, updated_at: null });
    assert.equal(byName(before.body, "stored").source, "none");

    const key = await virtualKey();
    await assert.rejects(chat(t.base, key, "stored"), (err: any) => err.status === 503 && err.error?.code === "provider_not_configured");
    assert.equal(storedFake.requests.length, 0);

    const set = await call("POST", "/api/providers", { name: "stored", api_key: STORED_KEY });
    assert.equal(set.status, 200);
    assert.equal(set.body.source, "stored");
    assert.equal(set.body.hint, "…zyxw");
    assert.match(set.body.master_key_id, /^[0-9a-f]{12}$/);
    assert.ok(!JSON.stringify(set.body).includes(STORED_KEY));

    const [row] = await t.gateway.database.rows<{ key_encrypted: string }>(sql`select key_encrypted from provider_keys where provider = 'stored'`);
    assert.ok(row && !row.key_encrypted.includes(STORED_KEY) && !row.key_encrypted.includes(Buffer.from(STORED_KEY).toString("base64")));

    const answer = await chat(t.base, key, "stored");
    assert.equal(answer.object, "chat.completion");
    assert.equal(storedFake.requests.at(-1)!.headers.authorization, `Bearer ${STORED_KEY}`);

    // A stored key wins over the environment's, and removing it brings the environment's back.
    await call("POST", "/api/providers", { name: "openai", api_key: STORED_KEY });
    await assert.rejects(chat(t.base, key, "openai"), (err: any) => err.status === 401);
    const removed = await call("DELETE", "/api/providers/openai");
    assert.equal(removed.status, 200);
    assert.equal(removed.body.source, "environment");
    assert.equal((await chat(t.base, key, "openai")).object, "chat.completion");
    assert.equal((await call("DELETE", "/api/providers/openai")).status, 404);
  });

  test("bad input names the field and what was expected, and stores nothing", async () => {
    const cases: [unknown, string, RegExp][] = [
      [{ name: "nope", api_key: STORED_KEY }, "name", /one of the proxy's providers: openai, anthropic, gemini, azure, bedrock, stored/],
      [{ name: "anthropic", api_key: "short" }, "api_key", /at least 8 characters/],
      [{ name: "anthropic", api_key: "sk has spaces in it" }, "api_key", /without spaces/],
      [{ name: "anthropic" }, "api_key", /./],
      [{ name: "anthropic", api_key: STORED_KEY, extra: 1 }, "", /extra/],
    ];
    for (const [body, path, message] of cases) {
      const res = await call("POST", "/api/providers", body);
      assert.equal(res.status, 400, JSON.stringify(body));
      const error = res.body.errors.find((e: any) => e.path === path);
      assert.ok(error, `${path} in ${JSON.stringify(res.body.errors)}`);
      assert.match(error.message, message);
    }
    const [count] = await t.gateway.database.rows<{ n: number }>(sql`select count(*)::int as n from provider_keys where provider = 'anthropic'`);
    assert.equal(count!.n, 0);
  });

  test("setting and removing a key are audited with their actor and the key's last characters at most; a failed entry changes nothing", async () => {
    const secret = "sk-ant-audited-provider-key-0123456789";
    const as = (name: string) => ({ "x-tollgate-actor": name });
    const anthropic = async () => (await call("GET", "/api/providers")).body.providers.find((p: any) => p.provider === "anthropic");
    const environment = await anthropic();
    assert.equal(environment.source, "environment");

    const restore = await failAuditFor(t.gateway.database);
    try {
      assert.equal((await call("POST", "/api/providers", { name: "anthropic", api_key: secret }, as(FAILING_ACTOR))).status, 500);
      assert.deepEqual(await anthropic(), environment, "not stored");
      assert.equal(await t.gateway.providerKeys.get("anthropic"), ANTHROPIC_KEY, "nor used by the proxy");
      const set = await call("POST", "/api/providers", { name: "anthropic", api_key: secret }, as("alice"));
      assert.equal(set.status, 200);
      assert.equal((await call("DELETE", "/api/providers/anthropic", undefined, as(FAILING_ACTOR))).status, 500);
      assert.deepEqual(await anthropic(), set.body, "still stored");
      assert.equal(await t.gateway.providerKeys.get("anthropic"), secret, "and used");
      const removed = await call("DELETE", "/api/providers/anthropic", undefined, as("bob"));
      assert.deepEqual(removed.body, environment);

      const log = (await call("GET", "/api/audit?entity=provider_key&entity_id=anthropic&limit=500")).body.entries.reverse();
      assert.deepEqual(
        log.map((e: any) => [e.actor, e.action, e.before, e.after]),
        [
          ["admin:alice", "set", environment, set.body],
          ["admin:bob", "remove", set.body, environment],
        ],
      );
      const everything = JSON.stringify((await call("GET", "/api/audit?limit=500")).body);
      for (const material of [secret, secret.slice(0, -4), ANTHROPIC_KEY]) assert.ok(!everything.includes(material), "no provider key in the audit log");
    } finally {
      await restore();
    }
  });

  test("the master key rotates: old and new both open, rotate-master re-seals everything, then the old one can go", async () => {
    await call("POST", "/api/providers", { name: "stored", api_key: STORED_KEY });
    const source = (await call("POST", "/api/ingest-sources", { name: "rotating-sender" })).body;
    const both = await gatewayWith({ TOLLGATE_MASTER_KEY: SECOND_MASTER, TOLLGATE_PREVIOUS_MASTER_KEYS: FIRST_MASTER });
    let newId: string;
    try {
      assert.equal(await both.gateway.providerKeys.get("stored"), STORED_KEY, "values sealed with the previous master key still open");
      const restore = await failAuditFor(t.gateway.database);
      try {
        await rotate(both.gateway, { "x-tollgate-actor": FAILING_ACTOR }, 500);
      } finally {
        await restore();
      }
      const rotated = await rotate(both.gateway, { "x-tollgate-actor": "rotator" });
      assert.ok(rotated.resealed.provider_keys >= 1, "the rotation whose audit entry failed re-sealed nothing");
      assert.ok(rotated.resealed.ingest_source_secrets >= 1);
      newId = rotated.master_key_id;
      const [entry] = (await call("GET", `/api/audit?entity=provider_key&entity_id=${newId}`)).body.entries;
      assert.deepEqual([entry.actor, entry.action, entry.after], ["admin:rotator", "rotate_master", rotated]);
      assert.deepEqual((await rotate(both.gateway)).resealed, { provider_keys: 0, ingest_source_secrets: 0, channel_secrets: 0 }, "a second rotation changes nothing");
    } finally {
      await both.close();
    }

    const onlyNew = await gatewayWith({ TOLLGATE_MASTER_KEY: SECOND_MASTER });
    try {
      assert.equal(await onlyNew.gateway.providerKeys.get("stored"), STORED_KEY);
      assert.ok((await onlyNew.gateway.sources.activeSecrets()).some((s) => s.sourceId === source.id));
      const listed = (await onlyNew.gateway.providerKeys.list(["stored"]))[0]!;
      assert.equal(listed.master_key_id, newId);
    } finally {
      await onlyNew.close();
    }
    // The first master key alone can no longer open what was re-sealed: starting with it says which key is missing.
    await assert.rejects(gatewayWith({ TOLLGATE_MASTER_KEY: FIRST_MASTER }), /sealed with master key [0-9a-f]{12}, which is not configured/);
  });
});

describe("virtual keys limited to providers and models", () => {
  test("a key limited to OpenAI gets 403 in Anthropic's own shape from Anthropic, and the upstream hears nothing", async () => {
    const key = await virtualKey({ allowed_providers: ["openai"] });
    const seen = anthropicFake.requests.length;
    const client = new Anthropic({ baseURL: `${t.base}/anthropic`, apiKey: key, maxRetries: 0 });
    await assert.rejects(
      client.messages.create({ model: "claude-sonnet-4-5", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }),
      (err: any) => err.status === 403 && err.error?.type === "error" && err.error?.error?.type === "permission_error" && /may not call anthropic; it may call openai/.test(err.error?.error?.message),
    );
    assert.equal(anthropicFake.requests.length, seen);
    assert.equal((await chat(t.base, key, "openai")).object, "chat.completion");
  });

  test("a key limited to models gets 403 for others, exact names and prefixes both work", async () => {
    const key = await virtualKey({ allowed_models: ["gpt-4o-mini", "o4*"] });
    const seen = openaiFake.requests.length;
    await assert.rejects(chat(t.base, key, "openai", "gpt-4o"), (err: any) => err.status === 403 && err.error?.code === "model_not_allowed" && /gpt-4o-mini, o4\*/.test(err.message));
    assert.equal(openaiFake.requests.length, seen);
    assert.equal((await chat(t.base, key, "openai", "gpt-4o-mini")).object, "chat.completion");
    assert.equal((await chat(t.base, key, "openai", "o4-mini")).object, "chat.completion");
    // A family name allows its dated snapshots, and only them.
    assert.equal((await chat(t.base, key, "openai", "gpt-4o-mini-2024-07-18")).object, "chat.completion");
    await assert.rejects(chat(t.base, key, "openai", "gpt-4o-2024-08-06"), (err: any) => err.status === 403 && err.error?.code === "model_not_allowed");
  });

  test("limits are refused on ingest keys and must name configured providers", async () => {
    const ingest = await call("POST", "/api/keys", { kind: "ingest", name: "x", allowed_models: ["gpt-4o"] });
    assert.equal(ingest.status, 400);
    assert.deepEqual(ingest.body.errors.map((e: any) => e.path), ["allowed_models"]);
    const unknown = await call("POST", "/api/keys", { kind: "virtual", name: "x", allowed_providers: ["openai", "mistral"] });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.errors[0].path, "allowed_providers[1]");
    assert.match(unknown.body.errors[0].message, /openai, anthropic, gemini, azure, bedrock, stored/);
    const pattern = await call("POST", "/api/keys", { kind: "virtual", name: "x", allowed_models: ["gpt-*-mini"] });
    assert.equal(pattern.status, 400);
    assert.equal(pattern.body.errors[0].path, "allowed_models[0]");
  });
});

async function rotate(gateway: Gateway, headers: Record<string, string> = {}, status = 200): Promise<{ master_key_id: string; resealed: { provider_keys: number; ingest_source_secrets: number } }> {
  const server = gateway.app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  try {
    const { port } = server.address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}/api/providers/rotate-master`, { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...headers } });
    assert.equal(res.status, status);
    return (await res.json()) as never;
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}
