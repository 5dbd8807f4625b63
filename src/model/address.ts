/**
 * IPv4 address arithmetic for the lab's address plan: parse, format, CIDR containment, overlap,
 * host allocation. Addresses are unsigned 32-bit integers internally. Small on purpose: the lab is
 * IPv4 only (the article's failover mechanisms are ARP/GARP and IPv4 BGP).
 */

export interface Cidr {
  /** network address (host bits zero) */
  network: number;
  prefixLen: number;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpv4(s: string): boolean {
  return IPV4.test(s);
}

/** '10.0.0.1' → 167772161; throws on anything that is not a dotted quad without leading zeros. */
export function ipToInt(s: string): number {
  if (!isIpv4(s)) throw new Error(`not an IPv4 address: '${s}'`);
  return s.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function intToIp(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`not a 32-bit address: ${n}`);
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function maskOf(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

/** Parse 'a.b.c.d/len'. Strict: host bits must be zero (`10.0.0.1/24` is rejected, say `10.0.0.0/24`). */
export function parseCidr(s: string): Cidr {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s);
  if (!m || !isIpv4(m[1]!)) throw new Error(`not an IPv4 CIDR: '${s}' (expected e.g. 10.10.0.0/24)`);
  const prefixLen = Number(m[2]);
  if (prefixLen > 32) throw new Error(`prefix length ${prefixLen} > 32 in '${s}'`);
  const addr = ipToInt(m[1]!);
  const network = (addr & maskOf(prefixLen)) >>> 0;
  if (network !== addr) throw new Error(`host bits set in '${s}': the network address is ${intToIp(network)}/${prefixLen}`);
  return { network, prefixLen };
}

export function isCidr(s: string): boolean {
  try {
    parseCidr(s);
    return true;
  } catch {
    return false;
  }
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.network)}/${c.prefixLen}`;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefixLen);
}

export function lastAddress(c: Cidr): number {
  return c.network + size(c) - 1;
}

export function contains(c: Cidr, ip: string | number): boolean {
  const n = typeof ip === 'number' ? ip : ipToInt(ip);
  return n >= c.network && n <= lastAddress(c);
}

/** a lies entirely inside b */
export function within(a: Cidr, b: Cidr): boolean {
  return a.network >= b.network && lastAddress(a) <= lastAddress(b);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.network <= lastAddress(b) && b.network <= lastAddress(a);
}

/** Usable host addresses: all but network and broadcast, except /31 and /32 (RFC 3021). */
export function hostRange(c: Cidr): { first: number; last: number; count: number } {
  if (c.prefixLen >= 31) return { first: c.network, last: lastAddress(c), count: size(c) };
  return { first: c.network + 1, last: lastAddress(c) - 1, count: size(c) - 2 };
}

/**
 * The n-th usable host of a subnet (1-based: host(…, 1) is `.1` of a /24). Throws when the subnet
 * has fewer hosts, so an allocation that does not fit is an error, never a wrap-around.
 */
export function host(c: Cidr, n: number): string {
  const r = hostRange(c);
  if (!Number.isInteger(n) || n < 1 || n > r.count) {
    throw new RangeError(`host #${n} does not fit in ${formatCidr(c)} (${r.count} usable addresses)`);
  }
  return intToIp(r.first + n - 1);
}

/** Every address of a CIDR, in order (for pools: MetalLB hands out every address of a CIDR pool). */
export function addresses(c: Cidr, limit = 4096): string[] {
  const n = size(c);
  if (n > limit) throw new RangeError(`${formatCidr(c)} has ${n} addresses, more than the ${limit} a lab pool may list`);
  return Array.from({ length: n }, (_, i) => intToIp(c.network + i));
}

export function isNetworkOrBroadcast(c: Cidr, ip: string): boolean {
  if (c.prefixLen >= 31) return false;
  const n = ipToInt(ip);
  return n === c.network || n === lastAddress(c);
}
