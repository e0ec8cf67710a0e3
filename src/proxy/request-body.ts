/*
 * The JSON a request body holds, whatever its content type says: a client that sends JSON as
 * `text/plain` (or with no type) must still meet the model checks (`allowed_models`, model-scoped
 * budgets), or else changing one header would walk past them. Multipart forms (audio
 * transcriptions, image edits) name their model in a `model` field, read from the form.
 */

export type RequestBody = { ok: true; json: unknown } | { ok: false; reason: string };

const EMPTY: RequestBody = { ok: true, json: undefined };

/**
 * A body's JSON (undefined for none). On a billable endpoint (`billable`) a body that is neither
 * JSON nor a form is refused, as the upstream would refuse it too. Elsewhere (file uploads, batch
 * creation) only a body declared JSON is read, and nothing is refused. Only a form is read
 * asynchronously: JSON, every proxied call's body, is answered at once, without a promise to wait on.
 */
export function requestBody(body: Buffer | undefined, contentType: string | undefined, billable: boolean): RequestBody | Promise<RequestBody> {
  if (!body || body.length === 0) return EMPTY;
  const type = contentType?.toLowerCase() ?? "";
  if (!billable && !type.includes("json")) return EMPTY;
  if (billable && type.startsWith("multipart/form-data")) return formFields(body, contentType!);
  try {
    return { ok: true, json: JSON.parse(body.toString("utf8")) };
  } catch {
    return billable ? { ok: false, reason: "the request body must be JSON" } : EMPTY;
  }
}

/** A form's text fields as an object (files left out), for the provider to read `model` from. */
async function formFields(body: Buffer, contentType: string): Promise<RequestBody> {
  try {
    const form = await new Response(body, { headers: { "content-type": contentType } }).formData();
    const fields: Record<string, string> = {};
    for (const [name, value] of form) if (typeof value === "string") fields[name] = value;
    return { ok: true, json: fields };
  } catch {
    return { ok: false, reason: "the request body is not a valid multipart form" };
  }
}
