import type { Config } from "../../src/config.ts";
import type { Deliverer, Integration } from "../../src/integration.ts";

/*
 * The webhook platform is always on, but most gateways never deliver a webhook: its deliverer
 * (undici's whole entry for `fetch`, the guarded agent) is loaded at the first delivery, not at
 * start-up. Loaded at start it held about 3 MB of heap and 5 MB of RSS in every gateway (undici's
 * entry imported after the gateway's own modules, measured), and V8 sizes the old generation under
 * load from what is live.
 */
function loadedAtFirstDelivery(config: Config): Deliverer {
  let loaded: Promise<Deliverer> | undefined;
  return {
    async deliver(target, message, context) {
      loaded ??= import("./deliverer.ts").then((m) => m.policedWebhookDeliverer(config));
      return (await loaded).deliver(target, message, context);
    },
  };
}

export const webhook: Integration = { platform: "webhook", connect: loadedAtFirstDelivery };
