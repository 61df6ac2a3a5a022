/**
 * Where `wharf server` runs its DNS server (service discovery, src/discovery/) and what it
 * forwards to. By default it answers on 127.0.0.1:53 (the host) and on the Docker bridge
 * gateway's address, port 53 (docker0, e.g. 172.17.0.1: what containers reach the host by, so
 * tasks can use it as their resolver). Port 53 needs root or CAP_NET_BIND_SERVICE: a default
 * address that cannot be bound is a warning, an address given with --dns that cannot be bound
 * stops the server. Names outside Wharf's namespaces go to the nameservers of /etc/resolv.conf
 * (except Wharf's own addresses, which would loop).
 */
import { readFileSync } from 'node:fs';
import { DnsServer, registrySnapshot, type DnsListenAddress, type HostNameSource } from '../discovery';
import { resolvConfUpstreams, type Upstream } from '../discovery/dns-forwarder';
import type { Logger } from '../lib';
import { dockerBridgeAddress } from './host-address';
import type { RegionRuntimes } from './regions';

// Where tests and main.ts have always found it.
export { dockerBridgeAddress };

export interface DnsSettings {
  listen: DnsListenAddress[];
  /** Whether the addresses were asked for (--dns): then failing to bind one is fatal. */
  required: boolean;
  /** Where other names go; default: /etc/resolv.conf's nameservers. */
  upstreams?: Upstream[];
}

/** `--dns`: `off`, or comma-separated ADDR:PORT (IPv6 as [ADDR]:PORT); absent: the defaults. */
export function parseDnsFlag(value: string | undefined): DnsSettings | undefined {
  if (value === 'off') return undefined;
  if (value === undefined) {
    const bridge = dockerBridgeAddress();
    return { listen: [{ host: '127.0.0.1', port: 53 }, ...(bridge ? [{ host: bridge, port: 53 }] : [])], required: false };
  }
  const listen = value.split(',').map((part) => {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+)):(\d{1,5})$/.exec(part.trim());
    const port = m ? Number(m[3]) : NaN;
    if (!m || port > 65535) throw new Error(`--dns wants off or ADDR:PORT[,ADDR:PORT...], not '${part}'`);
    return { host: (m[1] ?? m[2])!, port };
  });
  return { listen, required: true };
}

export async function startDiscoveryDns(
  settings: DnsSettings,
  regions: RegionRuntimes,
  defaultRegion: string,
  log: Logger,
  hostSources: HostNameSource[] = [],
): Promise<{ server: DnsServer; addresses: DnsListenAddress[] }> {
  let resolvConf = '';
  try {
    resolvConf = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    // No resolv.conf: other names get SERVFAIL.
  }
  const server = new DnsServer({
    snapshot: async () => registrySnapshot((await regions.running()).map((r) => ({ region: r.region, state: r.ctx.state })), defaultRegion, hostSources),
    upstreams: settings.upstreams ?? resolvConfUpstreams(resolvConf, settings.listen),
    log: log.child({ component: 'dns' }),
  });
  const addresses: DnsListenAddress[] = [];
  for (const addr of settings.listen) {
    try {
      addresses.push(await server.listen(addr));
    } catch (e) {
      if (settings.required) {
        await server.close();
        throw new Error(`the DNS server cannot listen on ${addr.host}:${addr.port}: ${(e as Error).message}`);
      }
      log.warn({ err: e, address: `${addr.host}:${addr.port}` }, 'the DNS server cannot listen here (--dns to choose, --dns off to disable)');
    }
  }
  if (addresses.length > 0) log.info({ dns: addresses.map((a) => `${a.host}:${a.port}`) }, 'service discovery DNS listening');
  return { server, addresses };
}
