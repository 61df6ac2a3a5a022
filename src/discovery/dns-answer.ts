/**
 * The answer to one DNS question, from a registry snapshot: a pure function (the randomness of
 * MULTIVALUE and WEIGHTED routing is passed in), so the rules are tested without sockets.
 *
 *   <service>.<namespace>               A / AAAA: the healthy instances' addresses (MULTIVALUE: up
 *                                       to 8, shuffled; WEIGHTED: one at random), TTL from the
 *                                       service's DnsConfig
 *                                       SRV: priority 1, weight 1, AWS_INSTANCE_PORT, target
 *                                       <instance-id>.<service>.<namespace>, whose A records go in
 *                                       the additional section
 *   <instance-id>.<service>.<namespace> A / AAAA of that instance, for services with an SRV
 *                                       record only (Cloud Map creates these names as SRV targets)
 *   <namespace>                         SOA; other types: no data
 *   any other name inside a namespace   NXDOMAIN, with the namespace's SOA (negative caching)
 *   a host name (load balancer)         A: its addresses
 *   anything else                       forward to the host's resolvers
 *
 * A name that exists but has no record of the asked type (a service without SRV, or without
 * healthy instances) answers NOERROR with no data, as an authoritative server does.
 */
import type { Answer, Question } from 'dns-packet';
import type { DiscoverySnapshot, DnsInstance, DnsService, DnsZone } from './registry-snapshot';

/** Route 53 answers a MULTIVALUE query with up to eight healthy records. */
export const MULTIVALUE_MAX = 8;

export const NOERROR = 0;
export const NXDOMAIN = 3;

export type DnsAnswer =
  | { kind: 'forward' }
  | { kind: 'answer'; rcode: typeof NOERROR | typeof NXDOMAIN; answers: Answer[]; authorities: Answer[]; additionals: Answer[] };

const HOST_TTL = 60;

function normalise(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** The namespace a name falls in: the longest zone name it ends with (first in the list wins a tie). */
function zoneOf(snapshot: DiscoverySnapshot, name: string): DnsZone | undefined {
  let best: DnsZone | undefined;
  for (const z of snapshot.zones) {
    if ((name === z.name || name.endsWith(`.${z.name}`)) && (!best || z.name.length > best.name.length)) best = z;
  }
  return best;
}

function soa(zone: DnsZone): Answer {
  return {
    type: 'SOA',
    name: zone.name,
    ttl: zone.soaTtl,
    data: { mname: `ns.${zone.name}`, rname: `hostmaster.${zone.name}`, serial: 1, refresh: 7200, retry: 900, expire: 1209600, minimum: zone.soaTtl },
  };
}

function shuffle<T>(items: T[], random: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** The instances a query answers with, per the service's routing policy. */
function pick(service: DnsService, having: (i: DnsInstance) => boolean, random: () => number): DnsInstance[] {
  const healthy = service.instances.filter((i) => i.healthy && having(i));
  if (service.routing === 'WEIGHTED') return healthy.length === 0 ? [] : [healthy[Math.floor(random() * healthy.length)]!];
  return shuffle(healthy, random).slice(0, MULTIVALUE_MAX);
}

function addressRecords(name: string, type: 'A' | 'AAAA', ttl: number, instances: DnsInstance[]): Answer[] {
  return instances.map((i) => ({ type, name, ttl, data: (type === 'A' ? i.ipv4 : i.ipv6)! }));
}

function noData(zone: DnsZone): DnsAnswer {
  return { kind: 'answer', rcode: NOERROR, answers: [], authorities: [soa(zone)], additionals: [] };
}

function answers(list: Answer[], additionals: Answer[] = []): DnsAnswer {
  return { kind: 'answer', rcode: NOERROR, answers: list, authorities: [], additionals };
}

function serviceAnswer(zone: DnsZone, service: DnsService, name: string, type: string, random: () => number): DnsAnswer {
  if (type === 'A' || type === 'AAAA') {
    const ttl = service.ttl[type];
    if (ttl === undefined) return noData(zone);
    const chosen = pick(service, (i) => (type === 'A' ? i.ipv4 : i.ipv6) !== undefined, random);
    return chosen.length === 0 ? noData(zone) : answers(addressRecords(name, type, ttl, chosen));
  }
  if (type === 'SRV') {
    const ttl = service.ttl.SRV;
    if (ttl === undefined) return noData(zone);
    const chosen = pick(service, (i) => i.port !== undefined, random);
    if (chosen.length === 0) return noData(zone);
    const srv: Answer[] = chosen.map((i) => ({ type: 'SRV', name, ttl, data: { priority: 1, weight: 1, port: i.port!, target: `${i.id.toLowerCase()}.${name}` } }));
    const extra: Answer[] = [];
    for (const i of chosen) {
      const target = `${i.id.toLowerCase()}.${name}`;
      if (i.ipv4) extra.push({ type: 'A', name: target, ttl: service.ttl.A ?? ttl, data: i.ipv4 });
      if (i.ipv6) extra.push({ type: 'AAAA', name: target, ttl: service.ttl.AAAA ?? ttl, data: i.ipv6 });
    }
    return answers(srv, extra);
  }
  return noData(zone);
}

/**
 * An SRV target, `<instance-id>.<service>.<namespace>`: the instance's own address. Cloud Map
 * creates these A/AAAA records only for a service with an SRV record (DnsRecord's SRV notes), so
 * in an A-only service such a name does not exist.
 */
function instanceAnswer(zone: DnsZone, name: string, type: string): DnsAnswer | undefined {
  for (const service of zone.services) {
    if (service.ttl.SRV === undefined) continue;
    const suffix = `.${service.name}.${zone.name}`;
    if (!name.endsWith(suffix)) continue;
    const id = name.slice(0, -suffix.length);
    const inst = service.instances.find((i) => i.id.toLowerCase() === id);
    if (!inst) continue;
    if (type === 'A' && inst.ipv4) return answers([{ type: 'A', name, ttl: service.ttl.A ?? service.ttl.SRV ?? zone.soaTtl, data: inst.ipv4 }]);
    if (type === 'AAAA' && inst.ipv6) return answers([{ type: 'AAAA', name, ttl: service.ttl.AAAA ?? service.ttl.SRV ?? zone.soaTtl, data: inst.ipv6 }]);
    return noData(zone);
  }
  return undefined;
}

export function answerQuestion(snapshot: DiscoverySnapshot, question: Question, random: () => number = Math.random): DnsAnswer {
  const name = normalise(question.name);
  const type = question.type;
  const host = snapshot.hosts.find((h) => normalise(h.name) === name);
  if (host) return type === 'A' ? answers(host.ipv4.map((ip) => ({ type: 'A', name, ttl: host.ttl ?? HOST_TTL, data: ip }))) : answers([]);
  const zone = zoneOf(snapshot, name);
  if (!zone) return { kind: 'forward' };
  if (name === zone.name) return type === 'SOA' ? answers([soa(zone)]) : noData(zone);
  const service = zone.services.find((s) => `${s.name}.${zone.name}` === name);
  if (service) return serviceAnswer(zone, service, name, type, random);
  const inst = instanceAnswer(zone, name, type);
  if (inst) return inst;
  // A name above a service (`b` of `a.b.<ns>`) exists as an empty non-terminal: no data.
  if (zone.services.some((s) => `${s.name}.${zone.name}`.endsWith(`.${name}`))) return noData(zone);
  return { kind: 'answer', rcode: NXDOMAIN, answers: [], authorities: [soa(zone)], additionals: [] };
}
