/**
 * Questions outside Wharf's namespaces go, unchanged, to the host's resolvers (the nameservers of
 * /etc/resolv.conf), and their answers come back unchanged: Wharf's DNS server is the only
 * resolver a task needs. A question that came over TCP is forwarded over TCP (its answer may be
 * larger than a datagram); one over UDP over UDP (a truncated answer makes the client retry
 * with TCP, which is then forwarded over TCP).
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import net from 'node:net';

export interface Upstream {
  host: string;
  port: number;
}

/**
 * The nameservers of a resolv.conf text, without those that are this server itself (`self`):
 * a host whose resolv.conf names Wharf's own address must not forward to itself in a loop.
 */
export function resolvConfUpstreams(text: string, self: Upstream[] = []): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const host = m[1]!.replace(/%.*$/, '');
    if (self.some((s) => s.port === 53 && (s.host === host || s.host === '0.0.0.0' || s.host === '::'))) continue;
    out.push({ host, port: 53 });
  }
  return out;
}

function viaUdp(query: Buffer, up: Upstream, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(isIPv6(up.host) ? 'udp6' : 'udp4');
    const id = query.readUInt16BE(0);
    const timer = setTimeout(() => done(new Error(`no answer from ${up.host}:${up.port} within ${timeoutMs} ms`)), timeoutMs);
    function done(err: Error | undefined, msg?: Buffer) {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(msg!);
    }
    sock.on('error', (e) => done(e));
    // Only an answer to this question (same id) from the upstream is taken.
    sock.on('message', (msg, rinfo) => {
      if (msg.length >= 2 && msg.readUInt16BE(0) === id && rinfo.port === up.port) done(undefined, msg);
    });
    sock.send(query, up.port, up.host);
  });
}

function viaTcp(query: Buffer, up: Upstream, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(up.port, up.host);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error(`no answer from ${up.host}:${up.port} within ${timeoutMs} ms`)), timeoutMs);
    function done(err: Error | undefined, msg?: Buffer) {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(msg!);
    }
    sock.on('error', (e) => done(e));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(undefined, buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
    sock.on('end', () => done(new Error(`${up.host}:${up.port} closed the connection without an answer`)));
  });
}

/** The first answer of the upstreams, tried in order; undefined when none answers. */
export async function forwardQuery(query: Buffer, upstreams: Upstream[], transport: 'udp' | 'tcp', timeoutMs: number): Promise<Buffer | undefined> {
  for (const up of upstreams) {
    try {
      return transport === 'udp' ? await viaUdp(query, up, timeoutMs) : await viaTcp(query, up, timeoutMs);
    } catch {
      // The next upstream, as a stub resolver does.
    }
  }
  return undefined;
}
