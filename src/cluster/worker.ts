import { once } from "node:events";
import type { Gateway } from "../app.ts";
import type { Role } from "../cli/serve.ts";
import type { CachedStore } from "../keys/cached-store.ts";
import type { Logger } from "../logger.ts";
import { registry } from "../metrics.ts";
import { PrimaryMessage, SLOT_VARIABLE, type SharedStore, type WorkerMessage } from "./messages.ts";

const send = (message: WorkerMessage) => process.send?.(message);

/**
 * A change committed through this worker reaches the others through the primary, and theirs reach
 * this one: a revoked key stops working in every worker at once, not when each one's cache expires.
 */
function shareChanges(gateway: Gateway, logger: Logger): void {
  const stores: Record<SharedStore, CachedStore> = { keys: gateway.keys, providerKeys: gateway.providerKeys, sources: gateway.sources };
  for (const [store, cached] of Object.entries(stores) as [SharedStore, CachedStore][]) cached.onChange(() => send({ type: "changed", store }));
  process.on("message", (raw: unknown) => {
    const message = PrimaryMessage.safeParse(raw);
    if (message.success) stores[message.data.store].forget();
    else logger.warn("a message from the primary this worker does not know; ignored");
  });
}

/**
 * A worker of `tollgate serve` with TOLLGATE_WORKERS above 1: a whole gateway on the port the
 * primary shares out, stopped by the primary's SIGTERM. Its logs carry its slot (`worker`), which a
 * replacement inherits along with the slot's jobs.
 */
export function workerRole(logger: Logger): Role {
  const slot = Number(process.env[SLOT_VARIABLE]);
  // Ctrl-C reaches the whole process group: the primary relays it as SIGTERM to every worker.
  process.on("SIGINT", () => {});
  // /metrics is answered by whichever worker the scrape reaches: its figures say whose they are.
  registry.setDefaultLabels({ worker: String(slot) });
  return {
    logger: logger.child({ worker: slot }),
    listening(gateway, port) {
      shareChanges(gateway, logger);
      send({ type: "listening", port });
    },
    stopRequested: once(process, "SIGTERM").then(() => "SIGTERM"),
    stopping: () => {},
  };
}
