/** The first host address of an IPv4 subnet (`172.17.0.0/16` -> `172.17.0.1`). */
export function firstHostAddress(subnet: string | undefined): string | undefined {
  const m = subnet ? /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(subnet) : null;
  if (!m) return undefined;
  const bits = Number(m[5]);
  if (bits > 30) return undefined;
  const n = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const first = ((n & mask) + 1) >>> 0;
  return [first >>> 24, (first >>> 16) & 255, (first >>> 8) & 255, first & 255].join('.');
}
