import { BlockList, isIP } from "node:net";

/*
 * Where requests to addresses people typed in (webhook channel URLs) may go. Never to this host,
 * the private network, link-local or cloud metadata addresses, nor to addresses that hide an IPv4
 * one inside IPv6, unless the operator names them in TOLLGATE_OUTBOUND_ALLOW. Checked on the
 * address actually connected to (src/outbound/agent.ts), so a name that resolves, or re-resolves,
 * to a forbidden address is refused too.
 */

/** Ranges no outgoing request reaches, with what they are, checked in this order. */
const FORBIDDEN: readonly { kind: string; family: "ipv4" | "ipv6"; net: string; prefix: number }[] = [
  { kind: "a cloud metadata address", family: "ipv4", net: "169.254.169.254", prefix: 32 },
  { kind: "a cloud metadata address", family: "ipv6", net: "fd00:ec2::254", prefix: 128 },
  { kind: "an IPv4-mapped IPv6 address", family: "ipv6", net: "::ffff:0:0", prefix: 96 },
  { kind: "a loopback address", family: "ipv6", net: "::1", prefix: 128 },
  { kind: "the unspecified address", family: "ipv6", net: "::", prefix: 128 },
  { kind: "an IPv4-compatible IPv6 address", family: "ipv6", net: "::", prefix: 96 },
  { kind: "a NAT64 address", family: "ipv6", net: "64:ff9b::", prefix: 96 },
  { kind: "a 6to4 address", family: "ipv6", net: "2002::", prefix: 16 },
  { kind: "a private (unique local) address", family: "ipv6", net: "fc00::", prefix: 7 },
  { kind: "a link-local address", family: "ipv6", net: "fe80::", prefix: 10 },
  { kind: "a multicast address", family: "ipv6", net: "ff00::", prefix: 8 },
  { kind: "a loopback address", family: "ipv4", net: "127.0.0.0", prefix: 8 },
  { kind: "a private address", family: "ipv4", net: "10.0.0.0", prefix: 8 },
  { kind: "a private address", family: "ipv4", net: "172.16.0.0", prefix: 12 },
  { kind: "a private address", family: "ipv4", net: "192.168.0.0", prefix: 16 },
  { kind: "a link-local address", family: "ipv4", net: "169.254.0.0", prefix: 16 },
  { kind: "a shared (carrier-grade NAT) address", family: "ipv4", net: "100.64.0.0", prefix: 10 },
  { kind: "a 'this network' address", family: "ipv4", net: "0.0.0.0", prefix: 8 },
  { kind: "a reserved address", family: "ipv4", net: "192.0.0.0", prefix: 24 },
  { kind: "a benchmarking address", family: "ipv4", net: "198.18.0.0", prefix: 15 },
  { kind: "a multicast address", family: "ipv4", net: "224.0.0.0", prefix: 4 },
  { kind: "a reserved address", family: "ipv4", net: "240.0.0.0", prefix: 4 },
];

const RANGES = FORBIDDEN.map((r) => {
  const list = new BlockList();
  list.addSubnet(r.net, r.prefix, r.family);
  return { ...r, list };
});

/** What TOLLGATE_OUTBOUND_ALLOW names: host names, and addresses or CIDR ranges. */
export interface OutboundAllow {
  hosts: string[];
  nets: { address: string; prefix: number; family: "ipv4" | "ipv6" }[];
}

/** `127.0.0.1,10.0.0.0/8,hooks.internal` → the allow list; an entry that is none of these is an error naming it. */
export function parseOutboundAllow(text: string): { ok: true; allow: OutboundAllow } | { ok: false; message: string } {
  const allow: OutboundAllow = { hosts: [], nets: [] };
  for (const entry of text.split(",").map((e) => e.trim()).filter(Boolean)) {
    const [address, prefixText, ...more] = entry.split("/");
    const family = isIP(unbracket(address!));
    if (family !== 0) {
      const max = family === 4 ? 32 : 128;
      const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
      if (more.length > 0 || !(prefix >= 0 && prefix <= max)) return { ok: false, message: `"${entry}" is not an address or CIDR range (prefix 0 to ${max})` };
      allow.nets.push({ address: unbracket(address!), prefix, family: family === 4 ? "ipv4" : "ipv6" });
    } else if (prefixText === undefined && /^[a-z0-9]([a-z0-9-]{0,62}\.)*[a-z0-9-]{1,63}\.?$/i.test(entry)) {
      allow.hosts.push(entry.toLowerCase().replace(/\.$/, ""));
    } else return { ok: false, message: `"${entry}" is neither a host name, an address nor a CIDR range such as 10.0.0.0/8` };
  }
  return { ok: true, allow };
}

const unbracket = (host: string) => (host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host);

/** The rule as one value: which hosts and addresses a request may reach. */
export class OutboundPolicy {
  private readonly allowedNets = new BlockList();

  constructor(private readonly allow: OutboundAllow) {
    for (const n of allow.nets) {
      if (n.prefix === (n.family === "ipv4" ? 32 : 128)) this.allowedNets.addAddress(n.address, n.family);
      else this.allowedNets.addSubnet(n.address, n.prefix, n.family);
    }
  }

  /** A host name the operator allowed: whatever it resolves to may be reached. */
  allowsHost(hostname: string): boolean {
    return this.allow.hosts.includes(unbracket(hostname).toLowerCase().replace(/\.$/, ""));
  }

  /** Why an address may not be reached, or undefined when it may. */
  refusal(address: string): string | undefined {
    const bare = unbracket(address);
    const family = isIP(bare);
    if (family === 0) return `${address} is not an IP address`;
    const type = family === 4 ? "ipv4" : "ipv6";
    if (this.allowedNets.check(bare, type)) return undefined;
    const range = RANGES.find((r) => r.family === type && r.list.check(bare, type));
    return range && `${bare} is ${range.kind}; TOLLGATE_OUTBOUND_ALLOW can allow it`;
  }

  /**
   * Why a URL's host is refused as written (an address, or `localhost`), for a precise error when
   * a channel is saved; undefined when it may be saved. A name is checked again on every connection.
   */
  urlRefusal(url: string): string | undefined {
    const host = unbracket(new URL(url).hostname);
    if (this.allowsHost(host)) return undefined;
    if (isIP(host) !== 0) return this.refusal(host);
    if (host === "localhost" || host.endsWith(".localhost")) return `${host} is this host (a loopback address); TOLLGATE_OUTBOUND_ALLOW can allow it`;
    return undefined;
  }
}
