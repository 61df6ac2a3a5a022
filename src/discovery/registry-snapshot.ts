/**
 * What the DNS server answers from: a plain snapshot of the registries, built from the state
 * caches of the regions that are up. Every region's private DNS namespaces are answered (a task
 * resolves names with no region in them); when two regions hold a namespace of the same name,
 * the default region's wins (it comes first in the list).
 */
import type { CloudMapInstanceRecord, CloudMapServiceRecord, NamespaceRecord } from '../control/cloudmap-records';
import type { State } from '../state/state';

export interface DnsInstance {
  id: string;
  ipv4?: string;
  ipv6?: string;
  port?: number;
  healthy: boolean;
}

export interface DnsService {
  /** Lowercase; may hold dots. */
  name: string;
  routing: 'MULTIVALUE' | 'WEIGHTED';
  /** TTL (seconds) of each record type the service has. */
  ttl: Partial<Record<'A' | 'AAAA' | 'SRV' | 'CNAME', number>>;
  instances: DnsInstance[];
}

export interface DnsZone {
  /** Lowercase, without the trailing dot. */
  name: string;
  soaTtl: number;
  region: string;
  services: DnsService[];
}

/** A name outside the namespaces that resolves to fixed addresses (a load balancer's DNS name). */
export interface DnsHostName {
  name: string;
  ipv4: string[];
  ttl?: number;
}

/** Where names such as load balancers' come from; the load-balancer part plugs in here. */
export interface HostNameSource {
  hostNames(): DnsHostName[];
}

export interface DiscoverySnapshot {
  /** Namespaces, the default region's first. */
  zones: DnsZone[];
  hosts: DnsHostName[];
}

/** The DNS view of one region's Cloud Map records (private DNS namespaces only). */
export function zonesOf(region: string, state: State): DnsZone[] {
  const zones: DnsZone[] = [];
  for (const e of state.sdNamespaces.children('').values()) {
    const ns = e.value as NamespaceRecord;
    if (ns.Type !== 'DNS_PRIVATE') continue;
    const services: DnsService[] = [];
    for (const se of state.sdServices.children(ns.Id).values()) {
      const svc = se.value as CloudMapServiceRecord;
      if (!svc.DnsConfig) continue;
      const ttl: DnsService['ttl'] = {};
      for (const r of svc.DnsConfig.DnsRecords) ttl[r.Type] = r.TTL;
      const instances: DnsInstance[] = [];
      for (const ie of state.sdInstances.children(svc.Id).values()) {
        const inst = ie.value as CloudMapInstanceRecord;
        const port = inst.Attributes.AWS_INSTANCE_PORT;
        instances.push({ id: inst.Id, ipv4: inst.Attributes.AWS_INSTANCE_IPV4, ipv6: inst.Attributes.AWS_INSTANCE_IPV6, port: port ? Number(port) : undefined, healthy: inst.HealthStatus === 'HEALTHY' });
      }
      services.push({ name: svc.Name.toLowerCase(), routing: svc.DnsConfig.RoutingPolicy, ttl, instances });
    }
    zones.push({ name: ns.Name.toLowerCase(), soaTtl: ns.SoaTtl ?? 15, region, services });
  }
  return zones;
}

export function registrySnapshot(regions: { region: string; state: State }[], defaultRegion: string, hostSources: HostNameSource[] = []): DiscoverySnapshot {
  const ordered = [...regions].sort((a, b) => (a.region === defaultRegion ? -1 : b.region === defaultRegion ? 1 : a.region < b.region ? -1 : 1));
  return {
    zones: ordered.flatMap((r) => zonesOf(r.region, r.state)),
    hosts: hostSources.flatMap((s) => s.hostNames()),
  };
}
