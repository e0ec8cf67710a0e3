import { type Behaviour, type FakeUpstream, type ProviderContract, type RecordedRequest, type Reply, json, randomId, sseFrame, startFake } from "./fake-upstream.ts";
import { OPENAI_OPERATIONS } from "./openai.ts";

/*
 * A fake Azure OpenAI resource, written from Azure's REST reference (data plane, inference): the
 * operations bound to a deployment at `/openai/deployments/{deployment-id}/{operation}?api-version=…`,
 * the others (Responses) at `/openai/{operation}?api-version=…`, and the v1 API at
 * `/openai/v1/{operation}` where the body's `model` names the deployment. The key is the `api-key`
 * header. Bodies, answers and streams are OpenAI's (the OpenAI fake's operations), with what Azure
 * adds: the answer names the model behind the deployment, chat answers carry content-filter results,
 * and a stream opens with a chunk holding only the prompt's filter results (`"model": ""`,
 * `"choices": []`). Errors are `{"error": {"code", "message"}}`.
 */

export const AZURE_KEY = "0123456789abcdef0123456789abcdef";

/** The resource's deployments and the model each runs. */
export const AZURE_DEPLOYMENTS: Readonly<Record<string, string>> = {
  "gpt-4o-prod": "gpt-4o-2024-08-06",
  "mini-dev": "gpt-4o-mini-2024-07-18",
};

/** `stream_options` came with 2024-09-01-preview; older versions refuse it as an unknown argument. */
const STREAM_OPTIONS_SINCE = "2024-09-01";

type Body = Record<string, unknown>;

const azureError = (code: string, message: string) => ({ error: { code, message } });

/** Azure's wording for the statuses a test may script. */
function errorBody(status: number, message: string | undefined) {
  const wording: Record<number, string> = {
    400: "The request is invalid.",
    404: "Resource not found",
    429: "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds.",
    500: "The server had an error while processing your request. Sorry about that!",
  };
  return azureError(String(status), message ?? wording[status] ?? `Error ${status}`);
}

function authorise(request: RecordedRequest): Reply | undefined {
  if (request.headers["api-key"] === AZURE_KEY) return undefined;
  return json(
    401,
    azureError(
      "401",
      "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
    ),
  );
}

const SAFE = { filtered: false, severity: "safe" };
const FILTERS = { hate: SAFE, self_harm: SAFE, sexual: SAFE, violence: SAFE };
const PROMPT_FILTERS = [{ prompt_index: 0, content_filter_results: FILTERS }];

/** The OpenAI answer as Azure gives it: filter results in whole chat answers, a filter-only chunk opening streams. */
function asAzure(reply: Reply, operation: string): Reply {
  if (operation !== "/chat/completions") return reply;
  if (reply.kind === "stream") {
    const opening = sseFrame({ choices: [], created: 0, id: "", model: "", object: "", prompt_filter_results: PROMPT_FILTERS });
    const frames = reply.frames;
    return { ...reply, frames: (function* () {
      yield opening;
      yield* frames;
    })() };
  }
  const body = reply.body as Body & { choices: Body[] };
  return { ...reply, body: { ...body, prompt_filter_results: PROMPT_FILTERS, choices: body.choices.map((c) => ({ ...c, content_filter_results: FILTERS })) } };
}

/** Which deployment and operation a path asks for; the v1 API and Responses name the deployment in the body. */
function route(path: string, body: Body): { deployment: string | undefined; operation: string; v1: boolean } | undefined {
  const bound = /^\/openai\/deployments\/([^/]+)(\/.+)$/.exec(path);
  if (bound) return { deployment: decodeURIComponent(bound[1] ?? ""), operation: bound[2] ?? "", v1: false };
  const model = typeof body.model === "string" ? body.model : undefined;
  const v1 = /^\/openai\/v1(\/.+)$/.exec(path);
  if (v1) return { deployment: model, operation: v1[1] ?? "", v1: true };
  if (path === "/openai/responses") return { deployment: model, operation: "/responses", v1: false };
  return undefined;
}

function answer(request: RecordedRequest, url: URL, behaviour: Behaviour): Reply {
  const body = (typeof request.body === "object" && request.body !== null ? request.body : {}) as Body;
  const target = request.method === "POST" ? route(url.pathname, body) : undefined;
  const operate = target && OPENAI_OPERATIONS[target.operation];
  if (!target || !operate) return json(404, azureError("404", "Resource not found"));
  const version = url.searchParams.get("api-version");
  // The v1 API needs no version; every other path does, and without one is not found.
  if (!target.v1 && version === null) return json(404, azureError("404", "Resource not found"));
  if (version !== null && !/^(\d{4}-\d{2}-\d{2}(-preview)?|preview|latest|v1)$/.test(version))
    return json(400, azureError("BadRequest", "API version not supported"));
  const model = target.deployment === undefined ? undefined : AZURE_DEPLOYMENTS[target.deployment];
  if (model === undefined)
    return json(
      404,
      azureError("DeploymentNotFound", "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."),
    );
  if (body.stream_options !== undefined && version !== null && /^\d/.test(version) && version < STREAM_OPTIONS_SINCE)
    return json(400, { error: { message: "Unrecognized request argument supplied: stream_options", type: "invalid_request_error", param: null, code: null } });
  // The OpenAI operations insist on a model; on Azure the deployment stands for it.
  return asAzure(operate({ ...body, model: target.deployment }, model, behaviour), target.operation);
}

const contract: ProviderContract = {
  authorise,
  errorBody,
  answer,
  commonHeaders: () => ({ "apim-request-id": crypto.randomUUID(), "x-request-id": randomId("", 32), "x-ms-region": "Sweden Central" }),
};

/** A fake Azure OpenAI resource on a loopback port. Its endpoint for the `AzureOpenAI` client is `url`. */
export function startFakeAzureOpenAI(): Promise<FakeUpstream> {
  return startFake(contract, AZURE_KEY);
}
