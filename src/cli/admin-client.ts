/** The admin API seen from the CLI: every command goes through it, to a running server or one started in-process. */
export class AdminClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  async request(method: string, path: string, body?: { type: string; data: string }): Promise<{ status: number; text: string; json: () => unknown }> {
    const res = await fetch(new URL(path, this.baseUrl), {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body ? { "content-type": body.type } : {}) },
      body: body?.data,
    });
    const text = await res.text();
    if (res.status >= 400 && res.status !== 422) {
      let detail = text;
      try {
        const problem = JSON.parse(text) as { detail?: string; errors?: { path: string; message: string }[] };
        // Field errors that only repeat the detail (as a bad period does) would print it twice.
        const errors = (problem.errors ?? []).filter((e) => e.message !== problem.detail);
        detail = [problem.detail, ...errors.map((e) => `  ${e.path}: ${e.message}`)].filter(Boolean).join("\n");
      } catch {
        // Not problem+json: show the body as it came.
      }
      throw new CliError(`${method} ${path} answered ${res.status}: ${detail}`);
    }
    return { status: res.status, text, json: () => JSON.parse(text) };
  }

  async get<T>(path: string): Promise<T> {
    return (await this.request("GET", path)).json() as T;
  }

  async postJson<T>(path: string, value: unknown): Promise<T> {
    return (await this.request("POST", path, { type: "application/json", data: JSON.stringify(value) })).json() as T;
  }
}

/** A failure the CLI reports as one line to the user, without a stack trace: 2 for a usage error, 1 for work that could not be done. */
export class CliError extends Error {
  readonly kind = "cli";
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 2,
  ) {
    super(message);
  }
}
