/** The keys and providers pages, as pure functions of what was read: HTML out, every value escaped. */
import type { FieldError } from "../../errors.ts";
import type { KeyInfo } from "../../keys/api-keys.ts";
import type { ProviderKeyInfo } from "../../keys/provider-keys.ts";
import { type Html, type HtmlValue, html } from "../html.ts";
import { csrfForm, errorList, table, when } from "../layout.ts";

/** What the create form was given, to show it again beside its errors. */
export type KeyFormValues = Partial<Record<"kind" | "name" | "team" | "project" | "feature" | "user" | "allowed_models", string>> & { allowed_providers?: string[] };

export interface KeysPageData {
  keys: readonly KeyInfo[];
  providerKeys: readonly ProviderKeyInfo[];
  providers: readonly string[];
  csrf: string;
  notice?: HtmlValue;
  keyForm?: { values: KeyFormValues; errors: readonly FieldError[] };
  providerErrors?: readonly FieldError[];
}

const ATTRIBUTION = ["team", "project", "feature", "user"] as const;

const attributionOf = (k: KeyInfo) => ATTRIBUTION.filter((f) => k[f] !== null).map((f) => `${f} ${k[f]}`).join(", ") || "none";
const limitsOf = (k: KeyInfo) =>
  k.kind === "ingest" ? "–" : [k.allowed_providers ? `providers ${k.allowed_providers.join(", ")}` : "", k.allowed_models ? `models ${k.allowed_models.join(", ")}` : ""].filter(Boolean).join("; ") || "any provider and model";

function keysTable(keys: readonly KeyInfo[]): Html {
  return table<KeyInfo>(
    "Gateway keys",
    [
      { head: "Name", cell: (k) => k.name },
      { head: "Kind", cell: (k) => k.kind },
      { head: "Starts with", cell: (k) => html`<code>${k.prefix}…</code>` },
      { head: "Attribution", cell: attributionOf },
      { head: "Limited to", cell: limitsOf },
      { head: "Created", cell: (k) => when(k.created_at) },
      { head: "State", cell: (k) => (k.revoked_at ? html`<span class="state-blocked">revoked</span> ${when(k.revoked_at)}` : html`<span class="state-ok">live</span>`) },
      { head: "Revoke", cell: (k) => (k.revoked_at ? "" : html`<a href="/keys/${encodeURIComponent(k.id)}/revoke">Revoke ${k.name}…</a>`) },
    ],
    keys,
    "no keys yet.",
  );
}

const field = (name: string, label: string, value: string | undefined, extra: Html = html``) =>
  html`<label>${label}<input name="${name}" value="${value ?? ""}" maxlength="200"${extra}></label>`;

function keyForm(d: KeysPageData): Html {
  const v = d.keyForm?.values ?? {};
  const kind = v.kind ?? "virtual";
  return html`<h2 id="create-key">Create a key</h2>${errorList(d.keyForm?.errors ?? [])}
${csrfForm(
  "/keys",
  d.csrf,
  html`<div class="filters">
<label>Kind<select name="kind"><option value="virtual"${kind === "virtual" ? html` selected` : ""}>virtual: calls providers through the proxy</option><option value="ingest"${kind === "ingest" ? html` selected` : ""}>ingest: reports usage</option></select></label>
${field("name", "Name", v.name, html` required`)}
${ATTRIBUTION.map((f) => field(f, f, v[f]))}
</div>
<fieldset><legend>Providers a virtual key may call (none ticked: all)</legend>${d.providers.map((p) => html`<label><input type="checkbox" name="allowed_providers" value="${p}"${v.allowed_providers?.includes(p) ? html` checked` : ""}> ${p}</label> `)}</fieldset>
<p>${field("allowed_models", "Models a virtual key may call (names or prefixes such as claude-*, separated by spaces or commas; empty: all)", v.allowed_models, html` size="60"`)}</p>
<p class="muted">Attribution set on a key is stamped on all its usage; a caller's headers cannot override it.</p>
<p><button class="primary" type="submit">Create key</button></p>`,
  "Create a key",
)}`;
}

function providersTable(infos: readonly ProviderKeyInfo[]): Html {
  return table<ProviderKeyInfo>(
    "Provider keys (upstream credentials)",
    [
      { head: "Provider", cell: (i) => i.provider },
      { head: "Key from", cell: (i) => (i.source === "stored" ? "stored here (sealed with the master key)" : i.source === "environment" ? "the environment" : html`<span class="muted">none</span>`) },
      { head: "Ends with", cell: (i) => (i.hint ? html`<code>${i.hint}</code>` : "") },
      { head: "Updated", cell: (i) => (i.updated_at ? when(i.updated_at) : "") },
      { head: "Remove", cell: (i) => (i.source === "stored" ? html`<a href="/providers/${encodeURIComponent(i.provider)}/remove">Remove the stored key of ${i.provider}…</a>` : "") },
    ],
    infos,
    "the proxy has no providers.",
  );
}

function providerForm(d: KeysPageData): Html {
  return html`<h2 id="set-provider">Set a provider key</h2>${errorList(d.providerErrors ?? [])}
<p class="muted">A stored key replaces the environment's at once, on every gateway within seconds; it is never shown again, only its last characters.</p>
${csrfForm(
  "/providers",
  d.csrf,
  html`<div class="filters"><label>Provider<select name="name">${d.providers.map((p) => html`<option value="${p}">${p}</option>`)}</select></label>
<label>API key<input name="api_key" type="password" autocomplete="off" required maxlength="4096"></label>
<button class="primary" type="submit">Set key</button></div>`,
  "Set a provider key",
)}`;
}

export function keysPage(d: KeysPageData): Html {
  return html`<h1>Keys and providers</h1>${d.notice ?? ""}
<h2>Gateway keys</h2><p>Virtual keys call providers through the proxy; ingest keys report usage. Only a key's first characters are kept in the clear.</p>
${keysTable(d.keys)}
${keyForm(d)}
<h2>Providers</h2>${providersTable(d.providerKeys)}
${providerForm(d)}`;
}

/** The new key, shown this once: only its hash is kept. The page is sent with Cache-Control: no-store. */
export function keyCreatedPage(created: KeyInfo & { key: string }): Html {
  return html`<h1>Key ${created.name} created</h1>
<p class="notice" role="status">This is the only time the key is shown: copy it now. Tollgate keeps only its hash, so it cannot show it again; if it is lost, create another and revoke this one.</p>
<p><label for="new-key">The ${created.kind} key</label><br><input id="new-key" readonly size="60" value="${created.key}"></p>
${created.kind === "virtual" ? html`<p>Give it to the SDK as its API key, with the gateway's provider path as the base URL (for example <code>/openai/v1</code>).</p>` : html`<p>Send it as <code>Authorization: Bearer …</code> to <code>/v1/usage</code>.</p>`}
<p>Attribution: ${attributionOf(created)}. Limited to: ${limitsOf(created)}.</p>
<p><a href="/keys">Back to the keys</a></p>`;
}

export function revokeKeyPage(key: KeyInfo, csrf: string): Html {
  if (key.revoked_at) return html`<h1>Key ${key.name}</h1><p>This key was revoked ${when(key.revoked_at)}.</p><p><a href="/keys">Back to the keys</a></p>`;
  return html`<h1>Revoke key ${key.name}?</h1>
<p>Callers using the ${key.kind} key <code>${key.prefix}…</code> (${attributionOf(key)}) are refused from the moment it is revoked. This cannot be undone.</p>
${csrfForm(`/keys/${encodeURIComponent(key.id)}/revoke`, csrf, html`<button class="primary" type="submit">Revoke ${key.name}</button>`, `Revoke ${key.name}`)} <a href="/keys">Cancel</a>`;
}

export function removeProviderKeyPage(info: ProviderKeyInfo, csrf: string): Html {
  return html`<h1>Remove the stored key of ${info.provider}?</h1>
<p>The proxy then calls ${info.provider} with the key from the environment (its <code>…_API_KEY</code> variable) if there is one, and otherwise answers its callers that no key is configured.</p>
${csrfForm(`/providers/${encodeURIComponent(info.provider)}/remove`, csrf, html`<button class="primary" type="submit">Remove the key of ${info.provider}</button>`, `Remove the key of ${info.provider}`)} <a href="/keys">Cancel</a>`;
}
