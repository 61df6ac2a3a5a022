/**
 * Wharf's DNS server: UDP and TCP on each address it is given, answering for Cloud Map's private
 * DNS namespaces and the host names added to it (dns-answer.ts) and forwarding everything else
 * (dns-forwarder.ts). It reads the registry through `snapshot()` on every question, so a
 * registration is answered as soon as the control plane has committed it.
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import net from 'node:net';
import * as packet from 'dns-packet';
import type { Logger } from '../lib';
import { answerQuestion } from './dns-answer';
import { forwardQuery, type Upstream } from './dns-forwarder';
import type { DiscoverySnapshot } from './registry-snapshot';

export interface DnsListenAddress {
  host: string;
  port: number;
}

export interface DnsServerOptions {
  snapshot: () => DiscoverySnapshot | Promise<DiscoverySnapshot>;
  /** Where other names go (the host's resolvers); none: they get SERVFAIL. */
  upstreams: Upstream[];
  log: Logger;
  random?: () => number;
  forwardTimeoutMs?: number;
}

const FORMERR = 1;
const SERVFAIL = 2;
const NOTIMP = 4;
/** RCODE 16 (BADVERS) is split: 0 in the header, 1 in the OPT record's upper bits (RFC 6891). */
const BADVERS_HIGH = 1;
/** A DNS message over UDP without EDNS is at most 512 bytes (RFC 1035). */
const UDP_PLAIN_MAX = 512;
/**
 * The UDP payload size Wharf's OPT records advertise, and the most it sends to a client that
 * offers more: 1232 bytes fits an unfragmented datagram on any path (DNS Flag Day 2020).
 */
export const EDNS_PAYLOAD_SIZE = 1232;
const TCP_IDLE_MS = 10_000;

type OptRecord = { type: 'OPT'; name: string; udpPayloadSize?: number; ednsVersion?: number; extendedRcode?: number; flags?: number; options?: unknown[] };

export class DnsServer {
  private readonly udp: dgram.Socket[] = [];
  private readonly tcp: net.Server[] = [];
  private readonly conns = new Set<net.Socket>();

  constructor(private readonly o: DnsServerOptions) {}

  /** Listens on UDP and TCP at one address (port 0: a free port, the same for both). */
  async listen(addr: DnsListenAddress): Promise<DnsListenAddress> {
    // Port 0: the port free for UDP may be taken for TCP; another free UDP port is tried then.
    for (let tries = 1; ; tries++) {
      try {
        return await this.listenOnce(addr);
      } catch (e) {
        if (addr.port !== 0 || tries >= 10 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      }
    }
  }

  private async listenOnce(addr: DnsListenAddress): Promise<DnsListenAddress> {
    const sock = dgram.createSocket(isIPv6(addr.host) ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(addr.port, addr.host, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    const port = sock.address().port;
    sock.on('error', (e) => this.o.log.warn({ err: e }, 'dns udp socket error'));
    sock.on('message', (msg, rinfo) => {
      void this.handle(msg, 'udp').then((res) => res && sock.send(res, rinfo.port, rinfo.address));
    });
    const server = net.createServer((c) => this.serveTcp(c));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, addr.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      sock.close();
      throw e;
    }
    this.udp.push(sock);
    this.tcp.push(server);
    return { host: addr.host, port };
  }

  async close(): Promise<void> {
    for (const s of this.udp) s.close();
    for (const c of this.conns) c.destroy();
    await Promise.all(this.tcp.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.udp.length = 0;
    this.tcp.length = 0;
  }

  /** TCP: each message is preceded by its length in two bytes; a connection may carry several. */
  private serveTcp(c: net.Socket): void {
    this.conns.add(c);
    c.setTimeout(TCP_IDLE_MS, () => c.destroy());
    c.on('close', () => this.conns.delete(c));
    c.on('error', () => c.destroy());
    let buf = Buffer.alloc(0);
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        void this.handle(msg, 'tcp').then((res) => {
          if (!res || c.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(res.length);
          c.write(Buffer.concat([len, res]));
        });
      }
    });
  }

  /** The answer to one message, encoded; undefined to drop it (not a DNS query at all). */
  async handle(msg: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    if (msg.length < 12) return undefined;
    let query: packet.DecodedPacket;
    try {
      query = packet.decode(msg);
    } catch {
      return this.errorReply(msg, FORMERR);
    }
    if (query.type !== 'query') return undefined;
    const opt = optOf(query);
    const q = query.questions ?? [];
    const reply = (rcode: number, a?: { answers: packet.Answer[]; authorities: packet.Answer[]; additionals: packet.Answer[] }, extendedRcode = 0): Buffer => {
      const out: packet.Packet = {
        type: 'response',
        id: query.id,
        flags: (a ? packet.AUTHORITATIVE_ANSWER : 0) | (query.flag_rd ? packet.RECURSION_DESIRED : 0) | packet.RECURSION_AVAILABLE | rcode,
        questions: q,
        answers: a?.answers ?? [],
        authorities: a?.authorities ?? [],
        // A query with an OPT record gets one back (RFC 6891 6.1.1), with its DO bit (RFC 3225).
        additionals: [...(a?.additionals ?? []), ...(opt ? [replyOpt(opt, extendedRcode)] : [])],
      };
      return transport === 'udp' ? fitDatagram(out, udpLimit(opt)) : packet.encode(out);
    };
    if ((query as { opcode?: string }).opcode !== 'QUERY') return reply(NOTIMP);
    if (opt && (opt.ednsVersion ?? 0) > 0) return reply(0, undefined, BADVERS_HIGH);
    if (q.length !== 1) return reply(FORMERR);
    try {
      const a = answerQuestion(await this.o.snapshot(), q[0]!, this.o.random);
      if (a.kind === 'forward') {
        const fwd = await forwardQuery(msg, this.o.upstreams, transport, this.o.forwardTimeoutMs ?? 2000);
        return fwd ?? reply(SERVFAIL);
      }
      return reply(a.rcode, a);
    } catch (e) {
      this.o.log.warn({ err: e, question: q[0] }, 'dns question failed');
      return reply(SERVFAIL);
    }
  }

  /** A header-only reply to a message that cannot be decoded. */
  private errorReply(msg: Buffer, rcode: number): Buffer {
    const out = Buffer.alloc(12);
    msg.copy(out, 0, 0, 2);
    const rd = msg.readUInt16BE(2) & packet.RECURSION_DESIRED;
    out.writeUInt16BE(0x8000 | rd | packet.RECURSION_AVAILABLE | rcode, 2);
    return out;
  }
}

function optOf(query: packet.DecodedPacket): OptRecord | undefined {
  return (query.additionals ?? []).find((r) => r.type === 'OPT') as OptRecord | undefined;
}

/** Wharf's OPT record in a reply: EDNS version 0, its payload size, the query's DO bit. */
function replyOpt(queryOpt: OptRecord, extendedRcode: number): packet.Answer {
  const opt: OptRecord = { type: 'OPT', name: '.', udpPayloadSize: EDNS_PAYLOAD_SIZE, extendedRcode, ednsVersion: 0, flags: (queryOpt.flags ?? 0) & packet.DNSSEC_OK, options: [] };
  return opt as unknown as packet.Answer;
}

/** The datagram size a client accepts: its EDNS payload size (at most Wharf's own), else 512. */
function udpLimit(opt: OptRecord | undefined): number {
  return Math.max(UDP_PLAIN_MAX, Math.min(opt?.udpPayloadSize ?? UDP_PLAIN_MAX, EDNS_PAYLOAD_SIZE));
}

/**
 * A reply as large as fits the client's datagram. dns-packet writes every name in full (no
 * compression), so 8 SRV answers with their targets' addresses can take 1 KB. Additional records
 * (the SRV targets' addresses, which the client can ask for) go first, from the end; then answers,
 * from the end, and only then is TC set, so a client that does not retry over TCP still gets
 * every answer that fits (MULTIVALUE answers are shuffled, so the ones left out differ each time).
 * The OPT record always stays.
 *
 *   big.corp.local SRV, 8 instances with 32-character ids, no EDNS (512 bytes): 32 bytes of
 *   header and question, 81 per SRV, 63 per A: 1184 bytes; without the 8 A 680, without 3 SRV
 *   437: 5 SRV are sent, with TC.
 */
export function fitDatagram(reply: packet.Packet, limit: number): Buffer {
  let buf = packet.encode(reply);
  if (buf.length <= limit) return buf;
  const opt = (reply.additionals ?? []).filter((r) => r.type === 'OPT');
  const extra = (reply.additionals ?? []).filter((r) => r.type !== 'OPT');
  while (extra.length > 0) {
    extra.pop();
    buf = packet.encode({ ...reply, additionals: [...extra, ...opt] });
    if (buf.length <= limit) return buf;
  }
  const answers = [...(reply.answers ?? [])];
  const truncated = { ...reply, flags: (reply.flags ?? 0) | packet.TRUNCATED_RESPONSE, additionals: opt };
  while (answers.length > 0) {
    answers.pop();
    buf = packet.encode({ ...truncated, answers });
    if (buf.length <= limit) return buf;
  }
  return packet.encode({ ...truncated, answers: [], authorities: [] });
}
