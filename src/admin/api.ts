import express, { Router } from "express";
import type { Registry } from "../../commands/registry.ts";
import { channelsRouter } from "../alerts/channels-routes.ts";
import type { OutboxNotifier } from "../alerts/outbox.ts";
import { outboxRouter } from "../alerts/outbox-routes.ts";
import { membersRouter } from "../approvals/members-routes.ts";
import { approvalsRouter } from "../approvals/routes.ts";
import { auditRouter } from "../audit/routes.ts";
import { budgetsRouter } from "../budgets/routes.ts";
import type { Config } from "../config.ts";
import { OutboundPolicy } from "../outbound/policy.ts";
import type { Database } from "../db/connection.ts";
import { importRouter } from "../ingest/import-route.ts";
import type { ApiKeys } from "../keys/api-keys.ts";
import type { IngestSources } from "../keys/ingest-sources.ts";
import { providersRouter } from "../keys/provider-keys-routes.ts";
import type { ProviderKeys } from "../keys/provider-keys.ts";
import { keysRouter } from "../keys/routes.ts";
import type { SecretBox } from "../keys/secret-box.ts";
import type { Recorder } from "../ledger/recorder.ts";
import { spendRouter } from "../ledger/spend-routes.ts";
import { userDataRouter } from "../ledger/user-data-routes.ts";
import type { Logger } from "../logger.ts";
import type { Services } from "../services.ts";
import type { FailureLimit } from "../http/failure-limit.ts";
import { refuseNulInBody } from "../http/nul-guard.ts";
import { requireAdmin } from "./auth.ts";
import { commandsRouter } from "./commands-route.ts";

/** What the admin API's routes act on: the domains' services (the same ones chat commands use) and the stores not among them. */
export interface AdminParts {
  adminToken: string;
  /** Failed attempts at the admin token, shared with the dashboard's sign-in. */
  signInFailures: FailureLimit;
  config: Config;
  logger: Logger;
  database: Database;
  box: SecretBox;
  recorder: Recorder;
  keys: ApiKeys;
  sources: IngestSources;
  providerKeys: ProviderKeys;
  /** The proxy's provider names: what keys may be limited to and provider keys stored for. */
  providers: readonly string[];
  services: Services;
  outbox: OutboxNotifier;
  /** The chat commands, for `POST /api/commands`. */
  registry: Registry;
  /** Routes the integrations composed in add (a platform's own admin endpoints). */
  extensions: readonly Router[];
}

/**
 * `/api`: the admin token's door. Each domain owns its routes; this only guards them and lists
 * them. The bulk import reads its raw body itself, so it comes before the JSON parser.
 */
export function adminApi(p: AdminParts): Router {
  return Router().use(
    requireAdmin(p.adminToken, p.signInFailures),
    importRouter(p.recorder),
    express.json({ limit: "1mb" }),
    refuseNulInBody,
    keysRouter(p.keys, p.sources, p.providers),
    providersRouter({ database: p.database, box: p.box, providerKeys: p.providerKeys, providers: p.providers }),
    spendRouter(p.services.spend, p.database, p.config),
    budgetsRouter(p.services.budgets, p.database),
    auditRouter(p.database),
    membersRouter(p.services.members),
    approvalsRouter(p.services.approvals, p.services.members),
    channelsRouter({ channels: p.services.channels, mutes: p.services.mutes, outbound: new OutboundPolicy(p.config.TOLLGATE_OUTBOUND_ALLOW) }),
    outboxRouter({ outbox: p.outbox, database: p.database }),
    commandsRouter(p.registry, p.services, p.config),
    ...p.extensions,
    userDataRouter(p.database, p.logger),
  );
}
