/*
 * Bedrock Runtime's errors, as a restJson1 service answers them: `{"message": ...}` with the
 * exception's name in the `x-amzn-errortype` header, which is what the AWS SDK reads to name the
 * error it throws (ThrottlingException, AccessDeniedException, ...). Names come from the Bedrock
 * Runtime API reference's "Errors" sections.
 */

/** The exception Bedrock would name for a gateway error of this status. */
export function exceptionName(status: number): string {
  if (status === 429) return "ThrottlingException";
  if (status === 401) return "UnrecognizedClientException";
  if (status === 403) return "AccessDeniedException";
  if (status === 404) return "ResourceNotFoundException";
  if (status === 503) return "ServiceUnavailableException";
  if (status >= 500) return "InternalServerException";
  return "ValidationException";
}

/** The body: Bedrock's `message`, with Tollgate's own code and details beside it (the SDK puts them on the error). */
export function bedrockErrorBody(_status: number, code: string, message: string, details: Record<string, unknown> = {}) {
  return { message, code, ...details };
}

/**
 * The headers: the exception's name, and no `retry-after`. The AWS SDK retries a 429 as throttling
 * (three attempts by default) and stretches each wait toward `retry-after` by up to five seconds;
 * a budget that resets next month is not worth those seconds, so the SDK's own short backoff
 * applies and the error reaches the caller in about a second, its message saying when the budget resets.
 */
export function bedrockErrorHeaders(status: number, headers: Readonly<Record<string, string>>): Record<string, string> {
  const { "retry-after": _dropped, ...rest } = headers;
  return { ...rest, "x-amzn-errortype": exceptionName(status) };
}
