import { randomBytes } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { join } from "node:path";
import express, { type Express, type NextFunction, type Request, type Response } from "express";
import { ChannelStore } from "./alerts/channels.ts";
import { DeliveryWorker } from "./alerts/delivery.ts";
import { MuteStore } from "./alerts/mutes.ts";
import { OutboxNotifier } from "./alerts/outbox.ts";
import { digestJobs } from "./alerts/digest.ts";
import { BudgetEvaluator } from "./budgets/evaluator.ts";
import { Members } from "./approvals/members.ts";
import { Approvals } from "./approvals/requests.ts";
import { Enforcer, enforcerOptions } from "./budgets/enforcer.ts";
import { BudgetStore } from "./budgets/store.ts";
import type { Config } from "./config.ts";
import { type Database, openDatabase } from "./db/connection.ts";
import { type Services, createServices } from "./services.ts";
import type { Integration } from "./integration.ts";
import type { Registry } from "../commands/registry.ts";
import { type Job, Scheduler } from "./jobs/scheduler.ts";
import { migrate } from "./db/migrate.ts";
import { PRE_AUTH_BYTES } from "./ingest/sender-auth.ts";
import { ByteBudget } from "./http/read-body.ts";
import { ApiKeys } from "./keys/api-keys.ts";
import { IngestSources } from "./keys/ingest-sources.ts";
import { ProviderKeys } from "./keys/provider-keys.ts";
import { decodeMasterKey, persistedSecret, resolveMasterKey, secretBox } from "./keys/secret-box.ts";
import { RollupFolder } from "./ledger/fold.ts";
import { Recorder } from "./ledger/recorder.ts";
import { deleteExpiredEvents } from "./ledger/retention.ts";
import { JournalDrain } from "./ledger/journal-drain.ts";
import { eventBuilder } from "./ledger/build-event.ts";
import type { Logger } from "./logger.ts";
import { type PriceCatalog, loadCatalog, priceEvent } from "./pricing/index.ts";
import { FailureLimit, SIGN_IN_LIMITS } from "./http/failure-limit.ts";
import { sendProblem } from "./http/problem.ts";
import { refuseNulInUrl } from "./http/nul-guard.ts";
import { createHttpServer } from "./http/server.ts";
import { loadedOnFirstRequest } from "./http/loaded-on-first-request.ts";
import { operationsRouter } from "./operations-routes.ts";
import { proxyHandler, proxyMiddleware } from "./proxy/router.ts";
import { proxyRoutes } from "./proxy/routes.ts";
import { requestLog } from "./request-log.ts";
import { OidcSignIn } from "./web/oidc.ts";
import { WebSessions } from "./web/sessions.ts";

/** How long a dashboard sign-in lasts: a working day. */
const WEB_SESSION_SECONDS = 12 * 3600;

/** Dashboard sign-in with OpenID Connect, when its three settings are given. */
function oidcSignIn(config: Config): OidcSignIn | undefined {
  const { TOLLGATE_OIDC_ISSUER: issuer, TOLLGATE_OIDC_CLIENT_ID: clientId, TOLLGATE_OIDC_CLIENT_SECRET: clientSecret } = config;
  if (!issuer || !clientId || !clientSecret) return undefined;
  return new OidcSignIn({ issuer, clientId, clientSecret, name: config.TOLLGATE_OIDC_NAME ?? new URL(issuer).hostname });
}

/** Every part of a running gateway, wired together; the one place that knows them all. */
export interface Gateway {
  /** Everything but the proxy: the admin API, ingest, chat platforms, operations. */
  app: Express;
  /** The whole gateway as one request handler: proxy routes answered before express is involved, the rest by `app`. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** An HTTP server for `handle`, listening on `port` and `host`. */
  listen(port: number, host: string): Server;
  config: Config;
  database: Database;
  recorder: Recorder;
  /** Where the proxy hands its calls: the journal, drained into the recorder. */
  usage: JournalDrain;
  keys: ApiKeys;
  sources: IngestSources;
  providerKeys: ProviderKeys;
  catalog: PriceCatalog;
  adminToken: string;
  budgets: BudgetStore;
  notifier: OutboxNotifier;
  channels: ChannelStore;
  mutes: MuteStore;
  delivery: DeliveryWorker;
  scheduler: Scheduler;
  members: Members;
  approvals: Approvals;
  evaluator: BudgetEvaluator;
  /** Every domain's service, as chat commands and the admin API act through them. */
  services: Services;
  close(): Promise<void>;
}

/** The admin token from config, or one generated into the data folder for the embedded setup. */
export function resolveAdminToken(config: Config): string {
  return config.TOLLGATE_ADMIN_TOKEN ?? persistedSecret(join(config.TOLLGATE_DATA_DIR, "admin.token"), () => `tga_${randomBytes(24).toString("base64url")}`);
}

/** Body-parser failures and anything unexpected become problem+json, never a stack trace. */
function errorHandler(logger: Logger) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const type = (err as { type?: string }).type;
    if (type === "entity.too.large") return sendProblem(res, "too_large", "the body is over the 5 MB limit");
    if (type === "entity.parse.failed") return sendProblem(res, "invalid", "the body is not valid JSON");
    if (type === "encoding.unsupported") return sendProblem(res, "unsupported_media_type", "content-encoding must be gzip, deflate or identity");
    if (type === "request.aborted") return;
    // Only the error's kind: database errors carry query parameters, which hold usage contents.
    logger.error({ error: (err as Error).name, code: (err as { code?: string }).code, reqId: res.locals.requestId }, "unhandled error");
    if (!res.headersSent) sendProblem(res, "internal", `something went wrong; the request id is ${res.locals.requestId}`);
  };
}

/** `integrations` come from the entry point (integrations/index.ts): src never imports platform code. */
export async function createGateway(config: Config, logger: Logger, given?: Database, integrations: readonly Integration[] = []): Promise<Gateway> {
  const database =
    given ??
    (await openDatabase({
      url: config.DATABASE_URL,
      dataDir: config.TOLLGATE_DATA_DIR,
      connectTimeoutMs: config.TOLLGATE_DB_CONNECT_TIMEOUT_MS,
      statementTimeoutMs: config.TOLLGATE_DB_STATEMENT_TIMEOUT_MS,
    }));
  try {
    return await assemble(config, logger, database, !given, integrations);
  } catch (err) {
    // A start that fails (a newer build's database, a bad prices file) must not leave the pool we
    // opened holding connections, nor keeping the process alive after its error is printed.
    if (!given) await database.close().catch(() => {});
    throw err;
  }
}

async function assemble(config: Config, logger: Logger, database: Database, ownsDatabase: boolean, integrations: readonly Integration[]): Promise<Gateway> {
  const applied = await migrate(database);
  if (applied.length > 0) logger.info({ applied }, "migrations applied");
  const catalog = await loadCatalog({ overrideFile: config.TOLLGATE_PRICES });
  const masterKey = resolveMasterKey(config.TOLLGATE_MASTER_KEY, config.TOLLGATE_DATA_DIR);
  const box = secretBox(masterKey, config.TOLLGATE_PREVIOUS_MASTER_KEYS.map(decodeMasterKey));
  const adminToken = resolveAdminToken(config);
  // The one builder of ledger events: every door's events are normalised, checked and priced by it, once.
  const builder = eventBuilder((e) => priceEvent(catalog, e));
  // PGlite runs in this process: it cannot hang, and a write abandoned at a deadline would finish anyway.
  const dbTimeoutMs = database.driver === "postgres" ? config.TOLLGATE_DB_TIMEOUT_MS : undefined;
  const recorder = new Recorder(database, builder, {
    batchSize: config.TOLLGATE_BATCH_SIZE,
    maxWaitMs: config.TOLLGATE_BATCH_WAIT_MS,
    maxConcurrentFlushes: config.TOLLGATE_BATCH_WRITERS,
    writeTimeoutMs: dbTimeoutMs,
    logger,
  });
  // Each write queues its events for the user rollups; a fold adds many writes' at once, and on
  // start whatever a stopped process left queued.
  const folder = new RollupFolder(database, { intervalMs: config.TOLLGATE_ROLLUP_FOLD_MS, logger });
  recorder.onFlush(() => folder.soon());
  folder.soon();
  const keys = new ApiKeys(database);
  const sources = new IngestSources(database, box);
  const usage = await JournalDrain.open({ recorder, dataDir: config.TOLLGATE_DATA_DIR, logger, syncIntervalMs: config.TOLLGATE_JOURNAL_SYNC_MS, recordWaitMs: config.TOLLGATE_PROXY_BATCH_WAIT_MS });
  const routes = proxyRoutes(config);
  const providers = [...routes.keys()];
  const providerKeys = new ProviderKeys(database, box, config.providerKeys);
  const budgets = new BudgetStore(database);
  const enforcer = new Enforcer({ database, catalog, budgets, logger, options: enforcerOptions(config) });
  await enforcer.start();
  // First of the recorder's listeners: it only moves figures in memory, and frees them soonest.
  recorder.onFlush((events) => enforcer.recorded(events));
  const notifier = new OutboxNotifier(database, { scheduleMs: config.TOLLGATE_OUTBOX_RETRY_SCHEDULE });
  const channels = new ChannelStore(database, box);
  const mutes = new MuteStore(database);
  const delivery = new DeliveryWorker({
    outbox: notifier,
    channels,
    deliverers: new Map(
      integrations.flatMap((i) => {
        const deliverer = i.connect?.(config, logger) ?? i.deliverer;
        return deliverer ? [[i.platform, deliverer] as const] : [];
      }),
    ),
    logger,
    publicUrl: config.TOLLGATE_URL,
  });
  notifier.onEnqueue(() => delivery.wake());
  const evaluator = new BudgetEvaluator(database, notifier, { anomalyMinSpend: config.TOLLGATE_ANOMALY_MIN_USD, logger });
  recorder.onFlush((events) => evaluator.evaluateMatching(events));
  budgets.onChange((change) => evaluator.budgetChanged(change.id));
  const digests = digestJobs({ database, notifier, hour: config.TOLLGATE_DIGEST_HOUR });
  // People act from the chat platforms this gateway receives (those that mount a receiver), the
  // dashboard when it signs people in with OpenID Connect, or the CLI.
  const oidc = oidcSignIn(config);
  const members = new Members(database, [...integrations.filter((i) => i.mount).map((i) => i.platform), ...(oidc ? ["oidc"] : [])]);
  const webSessions = new WebSessions(database, WEB_SESSION_SECONDS * 1000);
  const approvals = new Approvals(database, budgets, members, notifier, { ttlMs: config.TOLLGATE_APPROVAL_TTL, fourEyes: config.TOLLGATE_FOUR_EYES });
  /** Scheduled work, each run under its advisory lock; evaluation, digests, approval expiry and retention belong here. */
  const jobs: Job[] = [
    { name: "expire-approvals", cron: "* * * * *", run: async (now) => { await approvals.expireApprovals(now); } },
    // Off the hour, away from the digests; a first run on a large ledger may take a while, in small batches.
    { name: "retention", cron: "17 * * * *", run: async (now) => { await deleteExpiredEvents(database, config.TOLLGATE_RETENTION_DAYS, now); } },
    { name: "evaluate-budgets", cron: config.TOLLGATE_EVALUATE_CRON, run: async (now) => { await evaluator.evaluateAll(now); } },
    // Hourly: each channel gets its digest in the hour that is TOLLGATE_DIGEST_HOUR in its own zone.
    { name: "daily-digests", cron: "0 * * * *", run: async (now) => { await digests.runDailyDigests(now); } },
    { name: "weekly-digests", cron: "0 * * * *", run: async (now) => { await digests.runWeeklyDigests(now); } },
    { name: "prune-web-sessions", cron: "41 * * * *", run: async (now) => { await webSessions.prune(now); } },
  ];
  const scheduler = new Scheduler(database, jobs, logger);
  await providerKeys.refresh();

  const proxy = proxyHandler({
    routes,
    keys,
    providerKeys,
    gate: enforcer,
    builder,
    // The one place a proxied call's built event is handed to the ledger: journaled (a write to
    // the OS) before the answer's last byte is sent.
    record: (built) => usage.submit(built),
    whenRecorded: (send) => usage.whenJournaled(send),
    logger,
    onDisconnect: config.TOLLGATE_ON_DISCONNECT,
    drainTimeoutMs: 60_000,
    maxDrains: 64,
    upstreamTimeoutMs: config.TOLLGATE_UPSTREAM_TIMEOUT_MS,
    allowProviderKeys: config.TOLLGATE_ALLOW_PROVIDER_KEYS,
    maxRequestBytes: config.TOLLGATE_MAX_REQUEST_BYTES,
  });
  const app = express();
  app.disable("x-powered-by");
  // Proxy routes reach express only when the app is served on its own (app.listen); `handle` answers them first.
  app.use(proxyMiddleware(proxy));
  app.use(requestLog(logger));
  app.use(refuseNulInUrl);
  app.use(operationsRouter(database, usage, dbTimeoutMs, logger));
  const ingest = { keys, sources, recorder, preAuth: new ByteBudget(PRE_AUTH_BYTES) };
  // Not on the proxy's path: each of these is loaded by its first request (src/http/loaded-on-first-request.ts).
  app.use(loadedOnFirstRequest("the usage API", async () => (await import("./ingest/usage-route.ts")).usageRouter(ingest), logger));
  app.use(loadedOnFirstRequest("the OTLP receiver", async () => (await import("./ingest/otlp-route.ts")).otlpRouter(ingest), logger));
  const services = createServices({ database, budgets, members, approvals, mutes, channels });
  const extensions = integrations.map((i) => i.extend?.({ config, logger, database }) ?? {});
  const commands = async (): Promise<Registry> => (await import("../commands/registry.ts")).createRegistry(extensions.flatMap((e) => e.commands ?? []));
  // With a chat platform, its doors need the commands now (and two that answer to one name stop
  // the start); without one, only the admin API answers commands, and loads them with itself.
  let registry: Registry | undefined = integrations.length > 0 ? await commands() : undefined;
  /** What integrations started, stopped first on close. */
  const integrationStops: (() => Promise<void> | void)[] = [];
  const onClose = (stop: () => Promise<void> | void) => void integrationStops.push(stop);
  const mounting = integrations.filter((i) => i.mount);
  if (mounting.length > 0) {
    const { chatDoor } = await import("../commands/door.ts");
    for (const integration of mounting) {
      const door = chatDoor({ platform: integration.platform, registry: registry!, services, logger, timezone: config.TOLLGATE_TIMEZONE });
      integration.mount!(app, { config, logger, database, door, onClose });
    }
  }
  const signInFailures = new FailureLimit(SIGN_IN_LIMITS);
  const loadAdminApi = async () => {
    const [{ adminApi }, loaded] = await Promise.all([import("./admin/api.ts"), registry ?? commands()]);
    registry = loaded;
    return adminApi({
      adminToken,
      signInFailures,
      config,
      logger,
      database,
      box,
      recorder,
      keys,
      sources,
      providerKeys,
      providers,
      services,
      outbox: notifier,
      registry: loaded,
      extensions: extensions.flatMap((e) => (e.adminRouter ? [e.adminRouter] : [])),
    });
  };
  app.use("/api", loadedOnFirstRequest("the admin API", loadAdminApi, logger));
  const loadDashboard = async () =>
    (await import("./web/routes.ts")).webRouter({ config, logger, database, services, outbox: notifier, sessions: webSessions, adminToken, masterKey, oidc, sessionSeconds: WEB_SESSION_SECONDS, signInFailures, keys, providerKeys, providers });
  app.use(loadedOnFirstRequest("the dashboard", loadDashboard, logger));
  app.use((req, res) => sendProblem(res, "not_found", `no route for ${req.method} ${req.path}`));
  app.use(errorHandler(logger));
  if (config.TOLLGATE_JOBS === "on") {
    delivery.start();
    scheduler.start();
  }

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (!proxy(req, res)) app(req, res);
  };
  return {
    app,
    handle,
    listen: (port, host) => createHttpServer(handle, config).listen(port, host),
    config,
    database,
    recorder,
    usage,
    keys,
    sources,
    providerKeys,
    catalog,
    adminToken,
    budgets,
    notifier,
    channels,
    mutes,
    delivery,
    scheduler,
    members,
    approvals,
    evaluator,
    services,
    async close() {
      for (const stop of integrationStops) await stop();
      await scheduler.stop();
      await delivery.stop();
      await usage.close();
      await recorder.close();
      await folder.close();
      await evaluator.idle();
      await enforcer.close();
      await Promise.all([...routes.values()].map((r) => r.upstream?.dispatcher.close()));
      if (ownsDatabase) await database.close();
    },
  };
}
