import { z } from "zod";

/** The stores whose cached reads every worker drops when one worker changes them (src/keys/cached-store.ts). */
export const SHARED_STORES = ["keys", "providerKeys", "sources"] as const;
export type SharedStore = (typeof SHARED_STORES)[number];

/** What a worker tells the primary over the cluster's IPC channel. */
export const WorkerMessage = z.discriminatedUnion("type", [
  /** Its gateway is up and takes requests on `port` (the one all workers share). */
  z.object({ type: z.literal("listening"), port: z.number().int() }),
  /** A change to `store` committed through this worker: the others must drop what they hold of it. */
  z.object({ type: z.literal("changed"), store: z.enum(SHARED_STORES) }),
]);
export type WorkerMessage = z.infer<typeof WorkerMessage>;

/** What the primary tells a worker. */
export const PrimaryMessage = z.object({ type: z.literal("forget"), store: z.enum(SHARED_STORES) });
export type PrimaryMessage = z.infer<typeof PrimaryMessage>;

/** The environment variable the primary hands each worker its slot (1..N) in; not a setting. */
export const SLOT_VARIABLE = "TOLLGATE_WORKER_SLOT";
