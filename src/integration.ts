import type { Express, Router } from "express";
import type { Command } from "../commands/command.ts";
import type { Door } from "../commands/door.ts";
import type { Alert } from "./alerts/alert.ts";
import type { Config } from "./config.ts";
import type { Database } from "./db/connection.ts";
import type { Logger } from "./logger.ts";
import type { CommandHelp } from "./cli/help.ts";

/** What an outbox row carries: platform-neutral content each deliverer renders its own way. */
export interface MessagePayload {
  alerts: Alert[];
}

/** A channel as a deliverer needs it: where to send, and the opened secret to sign or authenticate with. */
export interface DeliveryTarget {
  id: string;
  platform: string;
  name: string;
  address: Record<string, unknown>;
  secret: string | null;
  timezone: string;
}

/** One outbox row on its way out. */
export interface OutgoingMessage {
  id: number;
  /** Stable across retries: receivers dedupe on it (the webhook-id header). */
  dedupeKey: string;
  /** 1 for the first try. */
  attempt: number;
  payload: MessagePayload;
  createdAt: Date;
}

export interface DeliveryContext {
  now: Date;
  /** Aborts a delivery that takes too long; the row is then retried. */
  signal: AbortSignal;
  /** Where people reach this gateway (`TOLLGATE_URL`), for links in messages; undefined when not configured. */
  publicUrl: string | undefined;
  /**
   * The `externalRef` of an earlier message in this channel that this one is the later state of
   * (an approval's request, now decided: see src/alerts/threads.ts). Platforms that can edit a
   * message update that one in place; the others post anew.
   */
  replaces?: Record<string, unknown>;
}

/**
 * How one try went. `retry` may carry the receiver's own wait (Retry-After); `refused` means this
 * message will never be taken (a 4xx other than 408 and 429, a forbidden address): it is dead at
 * once, with the reason; `gone` means the address will never work again (webhook 410, a removed
 * conversation): the channel is disabled.
 */
export type DeliveryOutcome =
  | { kind: "delivered"; externalRef?: Record<string, unknown> }
  | { kind: "retry"; message: string; retryAfterMs?: number }
  | { kind: "refused"; message: string }
  | { kind: "gone"; message: string };

export interface Deliverer {
  deliver(target: DeliveryTarget, message: OutgoingMessage, context: DeliveryContext): Promise<DeliveryOutcome>;
}

/** What an integration may build on when it is set up for a gateway. */
export interface SetupContext {
  config: Config;
  logger: Logger;
  /** For the platform's own tables (updates already taken in, link codes). */
  database: Database;
}

/** What an integration adds to a gateway besides its routes: commands in the chat grammar, routes in the admin API. */
export interface Extension {
  /** Commands every door answers, typed in any chat (a link code for the platform's chats). */
  commands?: Command[];
  /** Mounted under /api, behind the admin token and the JSON body parser (`POST /api/PLATFORM/...`). */
  adminRouter?: Router;
}

/** What an integration's routes may use of the gateway. */
export interface IntegrationContext extends SetupContext {
  /** The platform's way in to chat commands: conversation, role, command, failures, deadlines. */
  door: Door;
  /** Work the integration started (a polling loop, a timer) is stopped here when the gateway closes, before the database does. */
  onClose(stop: () => Promise<void> | void): void;
}

/** What a platform's own `tollgate <name> ...` command gets: the same as every CLI command. */
export interface IntegrationCommandContext {
  config: Config;
  logger: Logger;
  args: string[];
  options: Record<string, string | boolean | undefined>;
}

/**
 * A chat platform or webhook kind, composed in from `integrations/` by the entry point: `src` never
 * imports platform code. An integration is a receiver (`mount`, answering through its door), a
 * renderer (of Replies and Alerts, used by both), a deliverer, and its own slice of the settings
 * (integrations/<platform>/settings.ts). `mount` adds the platform's own routes (events,
 * interactivity) before the admin API and its JSON parser, so it can read raw bodies to check signatures.
 */
export interface Integration {
  platform: string;
  deliverer?: Deliverer;
  /**
   * For a platform whose delivery needs the gateway's settings (a bot token): this gateway's
   * deliverer, used instead of `deliverer`; undefined when the platform is not configured.
   */
  connect?(config: Config, logger: Logger): Deliverer | undefined;
  /** Its commands and admin routes for this gateway, asked once before anything is mounted. */
  extend?(context: SetupContext): Extension;
  mount?(app: Express, context: IntegrationContext): void;
  /** CLI commands of the platform (`tollgate PLATFORM ...`), by name; the answer is the exit code. */
  cli?: Record<string, (ctx: IntegrationCommandContext) => Promise<number>>;
}

/**
 * A platform as the entry point offers it, unloaded: whether this config turns it on, the CLI
 * commands it brings, and how to load it. A platform's SDK is loaded
 * only when it is configured or one of its commands runs: a gateway or CLI without it starts
 * faster and smaller.
 */
export interface IntegrationSource {
  platform: string;
  configured(config: Config): boolean;
  /** The names of its `cli` commands, so a command can be found before its platform is loaded. */
  commands?: readonly string[];
  /** What `tollgate help` and `tollgate NAME --help` say about each of them, readable without loading the platform. */
  help?: Readonly<Record<string, CommandHelp>>;
  load(): Promise<Integration>;
}

/** The integrations this config turns on, and the one whose command is about to run. */
export async function loadIntegrations(sources: readonly IntegrationSource[], config: Config, command?: string): Promise<Integration[]> {
  const wanted = sources.filter((s) => s.configured(config) || (command !== undefined && s.commands?.includes(command)));
  return Promise.all(wanted.map((s) => s.load()));
}
