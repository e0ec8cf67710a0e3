import { type LookupAddress, lookup as dnsLookup } from "node:dns";
import { type LookupFunction, isIP } from "node:net";
import { Agent, buildConnector } from "undici";
import type { OutboundPolicy } from "./policy.ts";

/** A connection this policy does not allow; its message says which address and why. */
export class OutboundRefused extends Error {
  override name = "OutboundRefused";
  readonly code = "OUTBOUND_REFUSED";
}

/**
 * Resolves as node would, then refuses when any address the name resolves to is forbidden: the
 * check is on what is connected to, so DNS cannot rebind around a check made earlier, and a name
 * with one public and one private address is not half-trusted.
 */
function guardedLookup(policy: OutboundPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, "", 4);
      const allowed = policy.allowsHost(hostname);
      for (const a of addresses) {
        const why = allowed ? undefined : policy.refusal(a.address);
        if (why) return callback(new OutboundRefused(`${hostname} → ${why}`), "", 4);
      }
      if (options.all) return (callback as unknown as (e: null, all: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }), "", 4);
      callback(null, first.address, first.family);
    });
  };
}

/**
 * An undici dispatcher for requests to addresses people gave: a literal address is checked before
 * connecting, a name on every resolution (node skips the lookup for literals). Redirects are not
 * followed by its callers, so a 3xx cannot lead elsewhere.
 */
export function outboundAgent(policy: OutboundPolicy, opts: { connectTimeoutMs?: number } = {}): Agent {
  const connector = buildConnector({ lookup: guardedLookup(policy), timeout: opts.connectTimeoutMs ?? 10_000 });
  return new Agent({
    connect(options, callback) {
      const host = options.hostname.replace(/^\[|\]$/g, "");
      if (isIP(host) !== 0 && !policy.allowsHost(host)) {
        const why = policy.refusal(host);
        if (why) return callback(new OutboundRefused(why), null);
      }
      connector(options, callback);
    },
  });
}
