import { z } from "zod";
import type { AwsCredentials } from "./signing.ts";

/*
 * Bedrock's own configuration, in the variables every AWS tool reads: the region (AWS_REGION, or
 * AWS_DEFAULT_REGION as the AWS CLI also reads it) and an IAM access key for SigV4. A Bedrock API
 * key instead goes in BEDROCK_API_KEY or is stored with `tollgate providers`, like any provider key.
 */

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
const region = z.string().regex(REGION, { error: "an AWS region such as us-east-1" }).optional();

export const BedrockSettingsSchema = z
  .object({
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_ACCESS_KEY_ID: z.string().optional(),
    AWS_SECRET_ACCESS_KEY: z.string().optional(),
    AWS_SESSION_TOKEN: z.string().optional(),
  })
  .superRefine((s, ctx) => {
    // Half a key pair is a mistake to stop on, not a reason to send unsigned requests.
    if ((s.AWS_ACCESS_KEY_ID === undefined) !== (s.AWS_SECRET_ACCESS_KEY === undefined))
      ctx.addIssue({ code: "custom", path: [s.AWS_ACCESS_KEY_ID === undefined ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY"], message: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY together, or neither" });
    if (s.AWS_SESSION_TOKEN !== undefined && s.AWS_ACCESS_KEY_ID === undefined)
      ctx.addIssue({ code: "custom", path: ["AWS_SESSION_TOKEN"], message: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY beside a session token" });
  })
  .transform((s): BedrockSettings => {
    const at = s.AWS_REGION ?? s.AWS_DEFAULT_REGION ?? DEFAULT_REGION;
    const iam =
      s.AWS_ACCESS_KEY_ID !== undefined && s.AWS_SECRET_ACCESS_KEY !== undefined
        ? { accessKeyId: s.AWS_ACCESS_KEY_ID, secretAccessKey: s.AWS_SECRET_ACCESS_KEY, sessionToken: s.AWS_SESSION_TOKEN, region: at }
        : undefined;
    return { region: at, iam };
  });

/** The region Bedrock is reached in when none is set: AWS's first, where every Bedrock model is offered. */
export const DEFAULT_REGION = "us-east-1";

export interface BedrockSettings {
  region: string;
  /** IAM credentials to sign with when no Bedrock API key is configured. */
  iam: AwsCredentials | undefined;
}
