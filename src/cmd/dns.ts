/**
 * Where `wharf server` runs its DNS server (service discovery, src/discovery/) and what it
 * forwards to. By default it answers on 127.0.0.1:53 (the host) and on the Docker bridge
 * gateway's address, port 53 (docker0, e.g. 172.17.0.1: what containers reach the host by, so
 * tasks can use it as their resolver). Port 53 needs root or CAP_NET_BIND_SERVICE: a default
 * address that cannot be bound is a warning, an address given with --dns that cannot be bound
 * stops the server. Names outside Wharf's namespaces go to the nameservers of /etc/resolv.conf
 * (except Wharf's own addresses, which would loop).
 *
 * Distributed mode (`--store etcd://...`): several replicas on one host are asked for the same
 * addresses, and only one process can hold each. A replica that finds an address in use
 * (EADDRINUSE) stands by instead of failing, and tries again every STANDBY_RETRY_MS, so that it
 * takes the address over within about half a second of the holder's death. Any replica answers
 * from its cache of the shared state, so the answers do not depend on which one holds the
 * address. A single server (SQLite) keeps failing at start: there an address in use is another
 * program, not a sibling that may die.
 */
import { readFileSync } from 'node:fs';
import { DnsServer, registrySnapshot, type DnsListenAddress, type HostNameSource } from '../discovery';
import { resolvConfUpstreams, type Upstream } from '../discovery/dns-forwarder';
import { hostPort, type Logger } from '../lib';
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
  /** Distributed mode: an address in use is waited for, not an error (see the header). */
  standby?: boolean;
}

/** How often a standing-by replica tries an address another process holds. */
export const STANDBY_RETRY_MS = 300;

export interface RunningDiscoveryDns {
  server: DnsServer;
  /** The addresses this process answers on (grows when a standing-by replica takes one over). */
  addresses: DnsListenAddress[];
  /** The addresses another process holds and this one waits for (standby only). */
  standingBy: DnsListenAddress[];
  close(): Promise<void>;
}

const inUse = (e: unknown) => (e as NodeJS.ErrnoException).code === 'EADDRINUSE';
/** How logs, /healthz and `wharf status` show a DNS address. */
export const showDnsAddress = (a: DnsListenAddress) => hostPort(a.host, a.port);

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

/**
 * What `wharf up` says once at start when its tasks get no resolver of Wharf's: its DNS does not
 * answer on the Docker bridge gateway, port 53 (where containers reach the host; e.g. `--dns
 * 127.0.0.1:5335` only, or port 53 not bindable without root) and no --task-dns names one. Tasks
 * then use the host's resolvers and do not find Cloud Map or load balancer names. Nothing when
 * they do resolve through Wharf, or when --dns off or --task-dns off turned that off on purpose.
 */
export function taskDnsWarning(o: { bridge: string | undefined; serving: DnsListenAddress[]; taskDns: string[] | undefined; dnsFlag: string | undefined; taskDnsFlag: string | undefined }): string | undefined {
  if (o.dnsFlag === 'off' || o.taskDnsFlag === 'off' || (o.taskDns?.length ?? 0) > 0) return undefined;
  const gateway = `${o.bridge ?? '<Docker bridge gateway>'}:53`;
  const where = o.serving.length > 0 ? `answers on ${o.serving.map(showDnsAddress).join(', ')} only` : 'is not listening';
  const flag = [...o.serving.map(showDnsAddress), gateway].join(',');
  return (
    `tasks will not resolve Cloud Map (service discovery) names or load balancer DNS names: Wharf's DNS ${where}, not on ${gateway}, where containers reach it. ` +
    `Add it with --dns ${flag} (port 53 needs root or CAP_NET_BIND_SERVICE), or name a resolver that forwards to Wharf's DNS with --task-dns ADDR.`
  );
}

export async function startDiscoveryDns(
  settings: DnsSettings,
  regions: RegionRuntimes,
  defaultRegion: string,
  log: Logger,
  hostSources: HostNameSource[] = [],
): Promise<RunningDiscoveryDns> {
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
  const standingBy: DnsListenAddress[] = [];
  for (const addr of settings.listen) {
    try {
      addresses.push(await server.listen(addr));
    } catch (e) {
      if (settings.standby && inUse(e)) {
        standingBy.push(addr);
        log.warn({ address: showDnsAddress(addr) }, 'the DNS address is held by another process (another replica?): standing by to take it over');
        continue;
      }
      if (settings.required) {
        await server.close();
        throw new Error(`the DNS server cannot listen on ${addr.host}:${addr.port}: ${(e as Error).message}`);
      }
      log.warn({ err: e, address: `${addr.host}:${addr.port}` }, 'the DNS server cannot listen here (--dns to choose, --dns off to disable)');
    }
  }
  if (addresses.length > 0) log.info({ dns: addresses.map(showDnsAddress) }, 'service discovery DNS listening');
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  // One try of every waited-for address per round; the next round is armed when this one ends,
  // so tries never overlap.
  const retry = async () => {
    for (const addr of [...standingBy]) {
      if (closed) return;
      try {
        const got = await server.listen(addr);
        // Closed while binding: what was just bound goes too.
        if (closed) return void (await server.close());
        standingBy.splice(standingBy.indexOf(addr), 1);
        addresses.push(got);
        log.warn({ address: showDnsAddress(got) }, 'took over the DNS address: this replica answers on it now');
      } catch (e) {
        if (!inUse(e)) log.debug({ err: e, address: showDnsAddress(addr) }, 'the DNS address cannot be bound yet');
      }
    }
    if (!closed && standingBy.length > 0) timer = setTimeout(() => void retry(), STANDBY_RETRY_MS);
  };
  if (standingBy.length > 0) timer = setTimeout(() => void retry(), STANDBY_RETRY_MS);
  return {
    server,
    addresses,
    standingBy,
    async close() {
      closed = true;
      clearTimeout(timer);
      await server.close();
    },
  };
}
