// oidc-provider ships no types; the tests use only its constructor and callback().
declare module "oidc-provider" {
  import type { IncomingMessage, ServerResponse } from "node:http";
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown> & { findAccount?: (ctx: unknown, id: string) => unknown });
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
  }
}
