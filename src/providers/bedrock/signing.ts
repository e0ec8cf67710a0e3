import type { SignatureV4 } from "@smithy/signature-v4";
import type { UpstreamRequest } from "../types.ts";

/*
 * Signing the gateway's own request to Bedrock with AWS Signature Version 4. The signature covers
 * the method, the path exactly as sent, the query, the headers and a hash of the body, so it is
 * computed last, over the final request. Bedrock's signing name is `bedrock`.
 */

/** An AWS access key (with the session token of temporary credentials) and the region to sign for. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
  region: string;
}

const signers = new WeakMap<AwsCredentials, Promise<SignatureV4>>();

/**
 * The AWS signer is loaded at the first signed call, not at start-up: a gateway without Bedrock
 * IAM credentials (most of them, and every proxy worker until one is used) never holds it.
 */
async function newSigner({ accessKeyId, secretAccessKey, sessionToken, region }: AwsCredentials): Promise<SignatureV4> {
  const [{ SignatureV4 }, { Sha256 }] = await Promise.all([import("@smithy/signature-v4"), import("@aws-crypto/sha256-js")]);
  return new SignatureV4({ service: "bedrock", region, credentials: { accessKeyId, secretAccessKey, sessionToken }, sha256: Sha256 });
}

function signerFor(credentials: AwsCredentials): Promise<SignatureV4> {
  let signer = signers.get(credentials);
  if (!signer) {
    signer = newSigner(credentials);
    signers.set(credentials, signer);
  }
  return signer;
}

function queryOf(params: URLSearchParams): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const [name, value] of params) {
    const before = query[name];
    query[name] = before === undefined ? value : [...(Array.isArray(before) ? before : [before]), value];
  }
  return query;
}

/**
 * The headers that authenticate `request`: `authorization`, `x-amz-date`, `x-amz-content-sha256`
 * and, for temporary credentials, `x-amz-security-token`. Every other header it has is signed as
 * it is, with `host` taken from the URL (the HTTP client sends the same), and the path as sent,
 * percent-escapes kept (the signer escapes it once more, as SigV4 wants for every service but S3).
 */
export async function sigV4Headers(credentials: AwsCredentials, request: UpstreamRequest): Promise<Record<string, string>> {
  const { url } = request;
  const signed = await (await signerFor(credentials)).sign(
    {
      method: request.method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: url.pathname,
      query: queryOf(url.searchParams),
      headers: { ...request.headers, host: url.host },
      body: request.body,
    },
  );
  const out: Record<string, string> = {};
  for (const name of ["authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"]) {
    const value = signed.headers[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}
