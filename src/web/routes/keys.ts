import type { Request, Response, Router } from "express";
import { actorText } from "../../approvals/members.ts";
import { fieldErrors } from "../../errors.ts";
import { createKeyRequestFor } from "../../keys/api-keys.ts";
import { setProviderKeyRequestFor } from "../../keys/provider-keys.ts";
import { type HtmlValue, html } from "../html.ts";
import { page } from "../layout.ts";
import type { PageKit } from "../page-kit.ts";
import { type KeyFormValues, type KeysPageData, keyCreatedPage, keysPage, removeProviderKeyPage, revokeKeyPage } from "../pages/keys.ts";
import { problemPage } from "../pages.ts";
import type { Viewer } from "../viewer.ts";

const TEXT_FIELDS = ["kind", "name", "team", "project", "feature", "user", "allowed_models"] as const;

/** The create form as it was filled in: text fields as given, the ticked providers as a list. */
export function keyFormValues(body: Record<string, unknown>): KeyFormValues {
  const values: KeyFormValues = Object.fromEntries(TEXT_FIELDS.flatMap((f) => (typeof body[f] === "string" ? [[f, body[f]]] : [])));
  const ticked = body.allowed_providers;
  const providers = (Array.isArray(ticked) ? ticked : [ticked]).filter((p): p is string => typeof p === "string");
  return providers.length > 0 ? { ...values, allowed_providers: providers } : values;
}

/**
 * The form as the admin API's request body: an empty field is a field left out, models are a
 * list separated by spaces or commas. The API's own schema then judges it.
 */
export function keyRequestOf(values: KeyFormValues): Record<string, unknown> {
  const { allowed_models: models, ...rest } = values;
  const body: Record<string, unknown> = Object.fromEntries(Object.entries(rest).filter(([, v]) => (typeof v === "string" ? v.trim() !== "" : v !== undefined)));
  const modelList = (models ?? "").split(/[\s,]+/).filter(Boolean);
  return modelList.length > 0 ? { ...body, allowed_models: modelList } : body;
}

/**
 * Keys and providers for admins: gateway keys listed, created (the key shown once, on the answer
 * to the form) and revoked after a confirm step; provider keys set and removed. Every change
 * goes through the admin API's schema and store, audited under the person's name.
 */
export function keyRoutes(router: Router, kit: PageKit): void {
  const p = kit.parts;
  const CreateRequest = createKeyRequestFor(p.providers);
  const SetRequest = setProviderKeyRequestFor(p.providers);

  const listPage = async (res: Response, viewer: Viewer, status: number, extra: Partial<KeysPageData> = {}) => {
    const [keys, providerKeys] = await Promise.all([p.keys.list(), p.providerKeys.list(p.providers)]);
    kit.send(res, status, page(kit.shell(viewer, "Keys and providers", "/keys"), keysPage({ keys, providerKeys, providers: p.providers, csrf: viewer.session.csrf, ...extra })));
  };
  const notFound = (res: Response, viewer: Viewer, what: string) => kit.send(res, 404, page(kit.shell(viewer, "Not found", "/keys"), problemPage("Not found", what)));

  /** What the last change did, said from what is stored (never from the query's text). */
  const noticeOf = async (req: Request): Promise<HtmlValue> => {
    const { revoked, provider, done } = req.query;
    if (typeof revoked === "string") {
      const key = (await p.keys.list()).find((k) => k.id === revoked && k.revoked_at);
      if (key) return html`<p class="notice" role="status">Key ${key.name} is revoked: callers using it are refused.</p>`;
    }
    if (typeof provider === "string" && p.providers.includes(provider) && (done === "set" || done === "removed"))
      return html`<p class="notice" role="status">The stored key of ${provider} was ${done === "set" ? "set" : "removed"}.</p>`;
    return undefined;
  };

  router.get(
    "/keys",
    kit.signedIn("admin", async (req, res, viewer) => listPage(res, viewer, 200, { notice: await noticeOf(req) })),
  );

  router.post(
    "/keys",
    kit.form,
    kit.signedIn("admin", async (req, res, viewer) => {
      const values = keyFormValues(req.body ?? {});
      const parsed = CreateRequest.safeParse(keyRequestOf(values));
      if (!parsed.success) return listPage(res, viewer, 400, { keyForm: { values, errors: fieldErrors(parsed.error.issues) } });
      const created = await p.keys.create(parsed.data, actorText(viewer.actor));
      kit.send(res, 201, page(kit.shell(viewer, "Key created", "/keys"), keyCreatedPage(created)));
    }),
  );

  const keyOf = async (id: string) => (await p.keys.list()).find((k) => k.id === id);

  router.get(
    "/keys/:id/revoke",
    kit.signedIn("admin", async (req, res, viewer) => {
      const key = await keyOf(String(req.params.id));
      if (!key) return notFound(res, viewer, `There is no key ${req.params.id}.`);
      kit.send(res, 200, page(kit.shell(viewer, `Revoke ${key.name}`, "/keys"), revokeKeyPage(key, viewer.session.csrf)));
    }),
  );

  router.post(
    "/keys/:id/revoke",
    kit.form,
    kit.signedIn("admin", async (req, res, viewer) => {
      const id = String(req.params.id);
      const revoked = await p.keys.revoke(id, actorText(viewer.actor));
      if (!revoked) return notFound(res, viewer, `There is no key ${id}.`);
      res.redirect(303, `/keys?${new URLSearchParams({ revoked: id })}`);
    }),
  );

  router.post(
    "/providers",
    kit.form,
    kit.signedIn("admin", async (req, res, viewer) => {
      const parsed = SetRequest.safeParse({ name: req.body?.name, api_key: req.body?.api_key });
      if (!parsed.success) return listPage(res, viewer, 400, { providerErrors: fieldErrors(parsed.error.issues) });
      await p.providerKeys.set(parsed.data.name, parsed.data.api_key, actorText(viewer.actor));
      res.redirect(303, `/keys?${new URLSearchParams({ provider: parsed.data.name, done: "set" })}`);
    }),
  );

  router.get(
    "/providers/:name/remove",
    kit.signedIn("admin", async (req, res, viewer) => {
      const name = String(req.params.name);
      const [info] = p.providers.includes(name) ? await p.providerKeys.list([name]) : [];
      if (!info || info.source !== "stored") return notFound(res, viewer, `No key is stored for provider ${name}.`);
      kit.send(res, 200, page(kit.shell(viewer, `Remove the key of ${name}`, "/keys"), removeProviderKeyPage(info, viewer.session.csrf)));
    }),
  );

  router.post(
    "/providers/:name/remove",
    kit.form,
    kit.signedIn("admin", async (req, res, viewer) => {
      const name = String(req.params.name);
      const after = p.providers.includes(name) ? await p.providerKeys.remove(name, actorText(viewer.actor)) : undefined;
      if (!after) return notFound(res, viewer, `No key is stored for provider ${name}.`);
      res.redirect(303, `/keys?${new URLSearchParams({ provider: name, done: "removed" })}`);
    }),
  );
}
