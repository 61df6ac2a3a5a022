/**
 * The URL a `wharf server` announces to agents and to the other replicas (the replica registry,
 * the x-wharf-replicas header, DiscoverPollEndpoint), which is not always the address it listens
 * on: `--listen 0.0.0.0:4100` accepts connections on every address of the host, but
 * http://0.0.0.0:4100 means "this machine" to whoever dials it, so an agent on another host that
 * learned it would dial itself.
 *
 *   --advertise-url given         that URL (as etcd's --advertise-client-urls)
 *   --listen on a wildcard        the host's address on the interface of its default route (as
 *   (0.0.0.0, ::)                 kube-apiserver picks its --advertise-address when bound to
 *                                 0.0.0.0), else its first other address; the log says which
 *   --listen on an address        that address (loopback included: a server on 127.0.0.1 is
 *                                 only for this host's agents)
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { hostPort } from '../lib';

/** Whether a --listen host accepts connections on every address of the host. */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '0:0:0:0:0:0:0:0';
}

/**
 * The --advertise-url flag, checked: an http(s) URL of a host and port, nothing else (agents add
 * their own paths). Returns it without a trailing slash.
 */
export function parseAdvertiseUrl(url: string, tls: boolean): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--advertise-url ${url}: not a URL (expected ${tls ? 'https' : 'http'}://HOST:PORT)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`--advertise-url ${url}: expected an http:// or https:// URL`);
  if (u.protocol === 'http:' && tls) throw new Error(`--advertise-url ${url}: this server serves HTTPS (--tls-cert), so agents must be told https://`);
  if (u.protocol === 'https:' && !tls) throw new Error(`--advertise-url ${url}: this server serves plain HTTP (no --tls-cert), so agents must be told http://`);
  if (u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
    throw new Error(`--advertise-url ${url}: expected ${u.protocol}//HOST:PORT with no path, query or credentials`);
  }
  if (isWildcardHost(u.hostname.replace(/^\[|\]$/g, ''))) throw new Error(`--advertise-url ${url}: ${u.hostname} is not an address anyone can dial; give this host's address or name`);
  return u.origin;
}

/** What the host looks like, for the choice of an address (read from the system by default). */
export interface HostNetwork {
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** /proc/net/route's text ('' when absent). */
  ipv4Routes: string;
  /** /proc/net/ipv6_route's text ('' when absent). */
  ipv6Routes: string;
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export function systemNetwork(): HostNetwork {
  return { interfaces: networkInterfaces(), ipv4Routes: readOr('/proc/net/route'), ipv6Routes: readOr('/proc/net/ipv6_route') };
}

/** The interfaces that carry a default route, the preferred (lowest metric) first. */
function defaultRouteInterfaces(net: HostNetwork, family: 4 | 6): string[] {
  const routes: { iface: string; metric: number }[] = [];
  if (family === 4) {
    for (const line of net.ipv4Routes.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // Iface Destination Gateway Flags RefCnt Use Metric Mask ...; flag 0x1 = up
      if (f.length >= 8 && f[1] === '00000000' && f[7] === '00000000' && (parseInt(f[3]!, 16) & 1) === 1) routes.push({ iface: f[0]!, metric: parseInt(f[6]!, 10) });
    }
  } else {
    for (const line of net.ipv6Routes.split('\n')) {
      const f = line.trim().split(/\s+/);
      // dest prefixlen src srcprefixlen nexthop metric refcnt use flags iface; flag 0x1 = up, 0x200 = reject
      if (f.length >= 10 && /^0{32}$/.test(f[0]!) && f[1] === '00' && f[9] !== 'lo' && (parseInt(f[8]!, 16) & 0x201) === 1) routes.push({ iface: f[9]!, metric: parseInt(f[5]!, 16) });
    }
  }
  return [...new Set(routes.sort((a, b) => a.metric - b.metric).map((r) => r.iface))];
}

/** Interfaces that only this host's containers reach: not an address to give to other hosts. */
const CONTAINER_INTERFACE = /^(docker\d+|br-[0-9a-f]+|veth.*|wharf.*|virbr\d+|cni\d+|flannel.*|cali.*)$/;

const usable = (a: NetworkInterfaceInfo, family: 4 | 6) =>
  !a.internal && (family === 4 ? a.family === 'IPv4' : a.family === 'IPv6' && !/^fe80:/i.test(a.address));

/**
 * A concrete address of this host for a server listening on a wildcard: the address of the
 * interface that carries the default route (IPv4 first: a '::' listener takes IPv4 too), else
 * the first address of an interface that is not a container bridge. Undefined when the host has
 * none but loopback.
 */
export function hostAddress(listenHost: string, net: HostNetwork = systemNetwork()): { address: string; iface: string; why: string } | undefined {
  const families: (4 | 6)[] = listenHost === '0.0.0.0' ? [4] : [4, 6];
  for (const family of families) {
    for (const iface of defaultRouteInterfaces(net, family)) {
      const a = (net.interfaces[iface] ?? []).find((x) => usable(x, family));
      if (a) return { address: a.address, iface, why: `the address of ${iface}, which carries this host's default route` };
    }
  }
  for (const family of families) {
    for (const [iface, addrs] of Object.entries(net.interfaces)) {
      if (CONTAINER_INTERFACE.test(iface)) continue;
      const a = (addrs ?? []).find((x) => usable(x, family));
      if (a) return { address: a.address, iface, why: `the first address of ${iface} (no default route has an address)` };
    }
  }
  return undefined;
}

/**
 * The endpoint this server announces, and (when it is not simply the --listen address) a line
 * for the log saying where it comes from.
 */
export function announcedEndpoint(o: { scheme: 'http' | 'https'; host: string; port: number; advertiseUrl?: string; network?: HostNetwork }): { endpoint: string; note?: string; warn?: boolean } {
  if (o.advertiseUrl !== undefined) return { endpoint: o.advertiseUrl, note: `announcing ${o.advertiseUrl} to agents and other replicas (--advertise-url)` };
  if (!isWildcardHost(o.host)) return { endpoint: `${o.scheme}://${hostPort(o.host, o.port)}` };
  const found = hostAddress(o.host, o.network);
  if (!found) {
    const endpoint = `${o.scheme}://127.0.0.1:${o.port}`;
    return { endpoint, warn: true, note: `listening on ${hostPort(o.host, o.port)}, but this host has no address but loopback: announcing ${endpoint}, which only this host's agents can use; give --advertise-url` };
  }
  const endpoint = `${o.scheme}://${hostPort(found.address, o.port)}`;
  return { endpoint, note: `listening on ${hostPort(o.host, o.port)}: announcing ${endpoint} to agents and other replicas (${found.why}; --advertise-url to choose another)` };
}
