/**
 * IPv4 and IPv6 addresses and CIDR ranges as numbers, for IAM's IpAddress condition operators.
 * Pure string arithmetic (no node:net), so core/ can use it.
 *
 * An IPv4 address seen on a dual-stack socket (`::ffff:192.0.2.7`) is read as the IPv4 address
 * it carries, so `192.0.2.0/24` matches it as it matches a client on an IPv4 socket.
 */

export interface IpAddress {
  version: 4 | 6;
  value: bigint;
}

export interface IpRange {
  version: 4 | 6;
  /** The network address (host bits zero). */
  base: bigint;
  bits: number;
}

function parseIpv4(s: string): bigint | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let n = 0n;
  for (const part of m.slice(1)) {
    const v = Number(part);
    if (v > 255) return undefined;
    n = (n << 8n) | BigInt(v);
  }
  return n;
}

/** Eight 16-bit groups, `::` standing for a run of zero groups, the last two possibly dotted IPv4. */
function parseIpv6(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || s.split('::').length > 2) return undefined;
  let tail: bigint[] = [];
  let text = s;
  if (s.includes('.')) {
    // The last 32 bits written as dotted IPv4: `::ffff:192.0.2.7`, `64:ff9b::192.0.2.7`.
    const at = s.lastIndexOf(':');
    const v4 = parseIpv4(s.slice(at + 1));
    if (v4 === undefined) return undefined;
    tail = [v4 >> 16n, v4 & 0xffffn];
    text = s.slice(0, at + 1);
    if (!text.endsWith('::')) text = text.slice(0, -1);
  }
  const groups = (part: string): bigint[] | undefined => {
    if (part === '') return [];
    const out: bigint[] = [];
    for (const g of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(BigInt(`0x${g}`));
    }
    return out;
  };
  let all: bigint[];
  const halves = text.split('::');
  if (halves.length === 2) {
    const head = groups(halves[0]!);
    const rest = groups(halves[1]!);
    if (!head || !rest) return undefined;
    const zeros = 8 - head.length - rest.length - tail.length;
    if (zeros < 1) return undefined;
    all = [...head, ...Array<bigint>(zeros).fill(0n), ...rest, ...tail];
  } else {
    const only = groups(text);
    if (!only) return undefined;
    all = [...only, ...tail];
  }
  if (all.length !== 8) return undefined;
  return all.reduce((n, g) => (n << 16n) | g, 0n);
}

const MAPPED_V4 = 0xffffn << 32n;

/** An address in any usual notation, or undefined. IPv4-mapped IPv6 addresses read as IPv4. */
export function parseIpAddress(s: string): IpAddress | undefined {
  const v4 = parseIpv4(s);
  if (v4 !== undefined) return { version: 4, value: v4 };
  const v6 = parseIpv6(s);
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === MAPPED_V4 >> 32n) return { version: 4, value: v6 & 0xffffffffn };
  return { version: 6, value: v6 };
}

/**
 * A range as IAM writes it: `203.0.113.0/24`, `2001:db8::/32`, or one address (a /32 or /128).
 * Host bits set below the prefix are ignored, as IAM ignores them (`10.1.2.3/8` is `10.0.0.0/8`).
 */
export function parseIpRange(s: string): IpRange | undefined {
  const slash = s.indexOf('/');
  const addr = parseIpAddress(slash < 0 ? s : s.slice(0, slash));
  if (!addr) return undefined;
  const width = addr.version === 4 ? 32 : 128;
  let bits = width;
  if (slash >= 0) {
    const b = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b) || Number(b) > width) return undefined;
    bits = Number(b);
  }
  return { version: addr.version, base: addr.value & mask(width, bits), bits };
}

function mask(width: number, bits: number): bigint {
  return ((1n << BigInt(bits)) - 1n) << BigInt(width - bits);
}

/** Whether `address` lies in `range` (an IPv4 address never lies in an IPv6 range, nor the reverse). */
export function ipInRange(address: IpAddress, range: IpRange): boolean {
  if (address.version !== range.version) return false;
  const width = address.version === 4 ? 32 : 128;
  return (address.value & mask(width, range.bits)) === range.base;
}
