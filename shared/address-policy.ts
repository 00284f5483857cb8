/**
 * Which IP addresses a server-side request may connect to: only globally
 * routable unicast ones. A model can be talked into fetching
 * `http://169.254.169.254/` (cloud metadata) or an internal admin page, and a
 * client can name such a page as its webhook_url; this policy keeps a name
 * that resolves inward from being followed. Shared by the `http_get` tool and
 * webhook deliveries (worker) and the submit check of webhook_url (api).
 *
 * IPv6 is checked as an allowlist (only global unicast 2000::/3), and IPv6
 * forms that carry an IPv4 address (mapped, NAT64, 6to4) are judged by that
 * IPv4 address, so `::ffff:127.0.0.1` is refused like `127.0.0.1`.
 */
import { isIP, type LookupFunction } from 'node:net';

type Range = readonly [base: bigint, prefix: number];

/** IPv4 ranges that are not globally reachable (IANA special-purpose registry). */
const BLOCKED_V4: readonly Range[] = [
  v4Range('0.0.0.0', 8), // "this network", including the unspecified 0.0.0.0
  v4Range('10.0.0.0', 8), // private
  v4Range('100.64.0.0', 10), // carrier-grade NAT
  v4Range('127.0.0.0', 8), // loopback
  v4Range('169.254.0.0', 16), // link-local, home of cloud metadata services
  v4Range('172.16.0.0', 12), // private
  v4Range('192.0.0.0', 24), // IETF protocol assignments
  v4Range('192.0.2.0', 24), // documentation (TEST-NET-1)
  v4Range('192.88.99.0', 24), // 6to4 relay anycast
  v4Range('192.168.0.0', 16), // private
  v4Range('198.18.0.0', 15), // benchmarking
  v4Range('198.51.100.0', 24), // documentation (TEST-NET-2)
  v4Range('203.0.113.0', 24), // documentation (TEST-NET-3)
  v4Range('224.0.0.0', 4), // multicast
  v4Range('240.0.0.0', 4), // reserved, including the broadcast 255.255.255.255
];

const V6_GLOBAL_UNICAST = v6Range('2000::', 3);
/** Parts of 2000::/3 that are still not public. */
const BLOCKED_V6: readonly Range[] = [
  v6Range('2001::', 23), // IETF protocol assignments: Teredo, benchmarking, ORCHID
  v6Range('2001:db8::', 32), // documentation
  v6Range('3fff::', 20), // documentation
];
/** IPv6 prefixes whose low 32 bits are an IPv4 address. */
const V4_MAPPED = v6Range('::ffff:0:0', 96);
const NAT64 = v6Range('64:ff9b::', 96);
/** 6to4 puts the IPv4 address in bits 16–47. */
const SIX_TO_FOUR = v6Range('2002::', 16);

/** True when `ip` is a literal IPv4/IPv6 address that is safe to connect to from a server. */
export function isPublicAddress(ip: string): boolean {
  // A zone id (fe80::1%eth0) only ever goes with scoped, non-global addresses.
  if (ip.includes('%')) return false;
  const family = isIP(ip);
  if (family === 4) return isPublicV4(parseV4(ip));
  if (family === 6) return isPublicV6(parseV6(ip));
  return false;
}

function isPublicV4(address: bigint): boolean {
  return !BLOCKED_V4.some((range) => inRange(address, range, 32));
}

function isPublicV6(address: bigint): boolean {
  const low32 = address & 0xffff_ffffn;
  if (inRange(address, V4_MAPPED, 128) || inRange(address, NAT64, 128)) return isPublicV4(low32);
  if (inRange(address, SIX_TO_FOUR, 128)) return isPublicV4((address >> 80n) & 0xffff_ffffn);
  if (!inRange(address, V6_GLOBAL_UNICAST, 128)) return false;
  return !BLOCKED_V6.some((range) => inRange(address, range, 128));
}

function inRange(address: bigint, [base, prefix]: Range, bits: number): boolean {
  const shift = BigInt(bits - prefix);
  return address >> shift === base >> shift;
}

function v4Range(base: string, prefix: number): Range {
  return [parseV4(base), prefix];
}

function v6Range(base: string, prefix: number): Range {
  return [parseV6(base), prefix];
}

/** Dotted quad to a 32-bit integer; the caller has checked the syntax with isIP. */
function parseV4(ip: string): bigint {
  return ip.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

/** IPv6 text (with `::` and an optional trailing dotted quad) to a 128-bit integer. */
function parseV6(ip: string): bigint {
  let text = ip.toLowerCase();
  // A trailing dotted quad stands for the last two 16-bit groups.
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const v4 = parseV4(quad[1]!);
    text = `${text.slice(0, quad.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = [
    ...headGroups,
    ...Array<string>(tail === undefined ? 0 : missing).fill('0'),
    ...tailGroups,
  ];
  return groups.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
}

/** An address a name resolved to, as `dns.lookup(…, { all: true })` answers. */
export interface ResolvedAddress {
  address: string;
  family: number;
}

/**
 * A `lookup` for an HTTP request that answers with addresses already checked,
 * so the socket connects to one of them and never asks DNS again (a second
 * answer could point somewhere private: DNS rebinding).
 */
export function pinnedLookup(addresses: readonly ResolvedAddress[]): LookupFunction {
  return (_hostname, lookupOptions, callback) => {
    if (lookupOptions.all) callback(null, [...addresses]);
    else callback(null, addresses[0]!.address, addresses[0]!.family);
  };
}
