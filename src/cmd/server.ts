/** `wharf server`: the control plane with the embedded SQLite store, answering every region. */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { showDnsAddress, startDiscoveryDns, type DnsSettings, type RunningDiscoveryDns } from './dns';
import type { DnsListenAddress } from '../discovery';
import { Gauge, type Registry } from 'prom-client';
import type { Partition } from '../core/arn';
import { RegionPolicy } from '../core/regions';
import type { ControlContext, Principal } from '../control';
import { createHttpServer, type WharfHttpServer } from '../server/http-server';
import { staticFiles } from '../server/static-files';
import { regionalUpgrade } from '../server/regional-upgrade';
import { wharfApis, wharfQueryApis } from '../server/wharf-apis';
import type { Handler } from '../server/api-registry';
import { SqliteStore } from '../store/sqlite/sqlite-store';
import { EtcdStore, type Leadership } from '../store/etcd';
import { migrateUnprefixedKeys } from '../store/regions';
import type { Store } from '../store/store';
import { SessionTokens, createLogger, hostPort, systemClock, type Logger } from '../lib';
import { loadOrCreateCredentials, type CredentialsFile } from './credentials';
import { loadOrCreateSecretCipher, loadOrCreateSessionTokenKey, tightenDataDir } from './data-dir';
import { readTlsFiles, type TlsFiles } from './tls';
import { UserTable } from './users';
import { iamLookups, type IamLookups } from '../control/iam-resources';
import { stsHandlers } from '../control/sts-api';
import { AgentTokenTable } from './agent-tokens';
import { InstanceCredentialIndex } from '../control/instance-credentials';
import { placementCommitStats } from '../control/placement-batch';
import { reportCommitStats } from '../control/task-state-changes';
import { RegionRuntimes, regionalHandlers } from './regions';
import { ReplicaRegistry } from './replicas';
import { announcedEndpoint, parseAdvertiseUrl } from './advertise-url';
import { REPLICAS_HEADER } from '../api/agent/protocol';
import { scaleCommandRunner } from './scale-command';
import { startLoadBalancers, type LoadBalancerSettings, type RunningLoadBalancers } from './load-balancers';

export interface ServerOptions {
  host: string;
  port: number;
  dataDir: string;
  /** The default region: shown by `wharf up`, given to agents that name none. */
  region: string;
  /** The regions served (`--regions`); every AWS region when absent. */
  regions?: readonly string[];
  accountId: string;
  synchronous?: 'NORMAL' | 'FULL';
  log?: Logger;
  /** How long an instance may have no agent connection before agentConnected=false (ms). */
  agentTimeoutMs?: number;
  /** How long a Fargate pool host may have no agent connection before its tasks are stopped (ms). */
  poolHostLostMs?: number;
  /** WebSocket ping interval of the agent channel (ms). */
  pingIntervalMs?: number;
  /** How long a service task without a health check must run before it counts as healthy (ms; ECS: 40 s). */
  healthyAfterRunningMs?: number;
  /** Wharf's DNS server (service discovery): where it listens; absent = off (cmd/dns.ts). */
  dns?: DnsSettings;
  /** Run for a capacity provider's new desired instance count (cmd/scale-command.ts). */
  scaleCommand?: string;
  /**
   * First two octets of the default VPC range of the first region (`10.100`); region i of
   * AWS_REGIONS gets the /16 with the second octet + i. Each subnet is a Docker network with that
   * range, so it must clash with no network of the hosts.
   */
  vpcBase?: string;
  /** ELBv2 load balancers on HAProxy (cmd/load-balancers.ts); default on, with /usr/sbin/haproxy. */
  loadBalancers?: LoadBalancerSettings;
  /**
   * Where the state lives: absent = SQLite in the data dir (one server owns it); `etcd://h1:2379,
   * h2:2379[/prefix/]` = an etcd cluster shared by any number of replicas (distributed mode).
   */
  store?: string;
  /** Serve HTTPS and WSS with this PEM certificate and key (`--tls-cert`, `--tls-key`). */
  tls?: TlsFiles;
  /** The built web console served at /console (default dist/console of this checkout; false: none). */
  consoleDir?: string | false;
  /**
   * The URL agents and the other replicas are told to use (`--advertise-url`), when it is not the
   * --listen address: behind NAT, a proxy, or in another network namespace. Without it, a
   * wildcard --listen announces an address of this host (cmd/advertise-url.ts).
   */
  advertiseUrl?: string;
}

/** The parts of an `etcd://host:port,host:port[/prefix/]` store URL. */
export function parseEtcdUrl(url: string): { endpoints: string[]; prefix: string } {
  const m = /^etcd:\/\/([^/]+)(\/.*)?$/.exec(url);
  if (!m) throw new Error(`--store ${url}: expected etcd://host:port[,host:port...][/prefix/]`);
  const endpoints = m[1]!.split(',').map((h) => {
    if (!/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(h)) throw new Error(`--store ${url}: ${h} is not host:port`);
    return `http://${h}`;
  });
  const path = (m[2] ?? '/wharf/').slice(1);
  const prefix = path === '' ? 'wharf/' : path.endsWith('/') ? path : `${path}/`;
  return { endpoints, prefix };
}

async function openStore(opts: ServerOptions, replicaId: string, log: Logger): Promise<{ store: Store; leadership?: Leadership }> {
  if (opts.store === undefined || opts.store === '' || opts.store.startsWith('sqlite:')) {
    const path = opts.store?.startsWith('sqlite:') ? opts.store.slice('sqlite:'.length).replace(/^\/\//, '') : join(opts.dataDir, 'wharf.db');
    const store = SqliteStore.open({ path, synchronous: opts.synchronous ?? 'FULL', compactKeep: 20_000 });
    // A data dir from before regions: its keys move under the region their ARNs name, once.
    const migrated = await migrateUnprefixedKeys(store, opts.region, systemClock.now());
    if (migrated.moved > 0) log.info(migrated, 'moved the data of a single-region data dir under its region');
    return { store };
  }
  const { endpoints, prefix } = parseEtcdUrl(opts.store);
  const store = await EtcdStore.open({ endpoints, prefix, onWatchError: (err) => log.error({ err }, 'store watch callback failed') });
  const leadership = store.leadership({ id: replicaId, onError: (err) => log.warn({ err }, 'leadership') });
  // One structured line per change, at warn so that it shows at every usual level: the start and
  // end of each term, by this replica's clock, are what an operator (and the fault tests, which
  // check from them that no two terms overlap) reads to know who acted when.
  leadership.onChange((leading) => log.warn({ leading, replica: replicaId, at: Date.now(), fence: leadership.current()?.revision }, leading ? 'this replica leads' : 'this replica stopped leading'));
  log.info({ endpoints, prefix, replica: replicaId }, 'distributed mode: state in etcd; controllers run on the elected leader');
  return { store, leadership };
}

export interface RunningServer {
  /** The --listen address as a URL: what processes on this host use. */
  endpoint: string;
  /** What agents and the other replicas are told (--advertise-url, or a concrete address for a wildcard --listen). */
  advertisedEndpoint: string;
  port: number;
  credentials: CredentialsFile;
  /** The default region's partition and context (tests and `wharf up` use the default region). */
  partition: Partition;
  ctx: ControlContext;
  /** Every region's runtime, brought up on demand. */
  regions: RegionRuntimes;
  http: WharfHttpServer;
  store: Store;
  /** The addresses the DNS server answers on (empty when off; grows when a standby takes one over). */
  dns: DnsListenAddress[];
  /** Distributed mode: the DNS addresses another process (replica) holds, which this one waits for. */
  dnsStandingBy: DnsListenAddress[];
  /** The load balancer controller and its HAProxy (undefined when off or haproxy is missing). */
  loadBalancers?: RunningLoadBalancers;
  /** Stops everything; HAProxy keeps serving (detached) for the next start to adopt. */
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const log = opts.log ?? createLogger('wharf-server');
  const policy = new RegionPolicy(opts.region, opts.regions);
  // Read first: a bad file is told before anything starts.
  const tls = opts.tls ? readTlsFiles(opts.tls) : undefined;
  const advertiseUrl = opts.advertiseUrl !== undefined ? parseAdvertiseUrl(opts.advertiseUrl, tls !== undefined) : undefined;
  // The data dir is the server's alone (cmd/data-dir.ts); what an older build left wider is narrowed.
  const narrowed = tightenDataDir(opts.dataDir);
  if (narrowed > 0) log.info({ dataDir: opts.dataDir, narrowed }, 'made the data dir owner-only (0700 directories, 0600 files)');
  const credentials = loadOrCreateCredentials(opts.dataDir);
  const replicaId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const { store, leadership } = await openStore(opts, replicaId, log);
  // Distributed mode: the replicas know each other (presence of agents, endpoints for agents).
  const replicaRegistry = leadership ? new ReplicaRegistry({ id: replicaId, store, clock: systemClock, log }) : undefined;
  const keyTable = new Map<string, { secret: string; principal: Principal }>();
  keyTable.set(credentials.user.accessKeyId, { secret: credentials.user.secretAccessKey, principal: { kind: 'user', iamResource: 'root' } });
  // Agents: join tokens (agent-tokens.json, re-read when it changes) and the instance
  // credentials registration hands out (kept in the instance records of every region).
  const agentTokens = new AgentTokenTable(opts.dataDir, (tokens) => {
    const unbound = tokens.filter((t) => t.cluster === undefined).map((t) => t.accessKeyId);
    if (unbound.length > 0) log.warn({ tokens: unbound }, 'join tokens bound to no cluster (legacy) can register into any cluster: replace them with `wharf credentials --agent --cluster C` and --revoke these');
  });
  const instanceKeys = new InstanceCredentialIndex();
  // Users (`wharf credentials create`) come from users.json, re-read when it changes.
  const users = new UserTable(opts.dataDir, log);
  // Session credentials (STS GetSessionToken) are verified with the data dir's session-token.key.
  const sessionTokens = new SessionTokens(loadOrCreateSessionTokenKey(opts.dataDir));
  const credentialLookup = { lookup: (id: string) => keyTable.get(id) ?? instanceKeys.lookup(id) ?? agentTokens.lookup(id) ?? users.lookup(id) };
  const regions = new RegionRuntimes({
    store,
    accountId: opts.accountId,
    policy,
    credentials: credentialLookup,
    log,
    agentTimeoutMs: opts.agentTimeoutMs,
    poolHostLostMs: opts.poolHostLostMs,
    pingIntervalMs: opts.pingIntervalMs,
    healthyAfterRunningMs: opts.healthyAfterRunningMs,
    scale: opts.scaleCommand ? (region) => scaleCommandRunner(opts.scaleCommand!, region, log) : undefined,
    vpcBase: opts.vpcBase,
    leadership,
    replicas: replicaRegistry && { self: replicaId, alive: (r) => replicaRegistry.alive(r) },
    secretCipher: loadOrCreateSecretCipher(opts.dataDir),
  });
  // The IAM check reads each region's cache; only regions already up (a refused call must not
  // bring one up, which writes to the store).
  const lookupsByRegion = new Map<string, IamLookups>();
  regions.onUp((r) => lookupsByRegion.set(r.ctx.partition.region, iamLookups(r.ctx)));
  regions.onUp((r) => void instanceKeys.attach(r.ctx.state));
  await regions.startUsed();
  const home = await regions.get(opts.region);
  // Started once the server listens; /healthz reports on it (read when asked).
  let dns: RunningDiscoveryDns | undefined;
  const http = createHttpServer({
    apis: wharfApis({
      ecs: regionalHandlers(regions, home.ecs, (r) => r.ecs),
      secrets: regionalHandlers(regions, home.secrets, (r) => r.secrets),
      cloudMap: regionalHandlers(regions, home.cloudMap, (r) => r.cloudMap),
      logs: regionalHandlers(regions, home.logs, (r) => r.logs),
    }, (region) => lookupsByRegion.get(region)),
    queryApis: wharfQueryApis({
      ec2: regionalHandlers(regions, home.ec2, (r) => r.ec2),
      elbv2: regionalHandlers(regions, home.elbv2, (r) => r.elbv2),
      sts: stsHandlers(opts.accountId, (parentId, seconds) => sessionTokens.issue({ accessKeyId: parentId, secret: credentialLookup.lookup(parentId)!.secret }, seconds * 1000, Date.now())) as Record<string, Handler>,
    }),
    credentials: credentialLookup,
    sessions: sessionTokens,
    accountId: opts.accountId,
    regions: policy,
    log,
    tls,
    staticFiles: opts.consoleDir === false ? undefined : staticFiles(opts.consoleDir ?? defaultConsoleDir()),
    onUpgrade: regionalUpgrade(credentialLookup, policy, async (region) => (await regions.get(region)).gateway, opts.accountId),
    health: () => ({
      // Not healthy while etcd cannot be reached (a load balancer or `wharf status` then says so).
      ...(replicaRegistry?.storeUnreachable() ? { status: 'store unavailable', error: replicaRegistry.storeUnreachable() } : {}),
      replica: replicaId,
      leader: leadership ? leadership.current() !== undefined : true,
      // What `wharf status` needs to show the whole installation from this one replica.
      store: leadership ? 'etcd' : 'sqlite',
      ...(replicaRegistry ? { replicas: replicaRegistry.listed() } : {}),
      ...(dns ? { dns: { serving: dns.addresses.map(showDnsAddress), standingBy: dns.standingBy.map(showDnsAddress) } } : {}),
    }),
    // Agents learn every live replica from any answer, and move to another when theirs goes.
    ...(replicaRegistry ? { responseHeaders: () => ({ [REPLICAS_HEADER]: replicaRegistry.endpoints().join(',') }) } : {}),
  });
  placementCommitGauges(http.metrics);
  capacityProviderGauges(http.metrics, regions);
  const { port } = await http.listen(opts.port, opts.host);
  const endpoint = `${tls ? 'https' : 'http'}://${hostPort(opts.host, port)}`;
  // Agents on other hosts and the other replicas are told an address they can dial.
  const announced = announcedEndpoint({ scheme: tls ? 'https' : 'http', host: opts.host, port, advertiseUrl });
  if (announced.note) log[announced.warn ? 'warn' : 'info']({ listen: endpoint, advertised: announced.endpoint }, announced.note);
  regions.setEndpoint(announced.endpoint);
  await replicaRegistry?.start(announced.endpoint);
  log.info({ endpoint, advertised: announced.endpoint, dataDir: opts.dataDir, region: opts.region, regions: policy.describe() }, 'wharf server listening');
  const startLbs = () => startLoadBalancers({ dataDir: opts.dataDir, settings: opts.loadBalancers ?? { enabled: true }, regions, log });
  let loadBalancers: RunningLoadBalancers | undefined;
  if (!leadership) loadBalancers = startLbs();
  else {
    // One load balancer controller per installation, like the other controllers: the leader's.
    // A replica that stops leading leaves its HAProxy serving (as a restart does) until the
    // leader's reconciler has taken over the addresses.
    leadership.onChange((leading) => {
      if (leading && !loadBalancers) loadBalancers = startLbs();
      else if (!leading && loadBalancers) {
        const lbs = loadBalancers;
        loadBalancers = undefined;
        void lbs.detach();
      }
    });
    if (leadership.current()) loadBalancers = startLbs();
  }
  // Replicas on etcd share the DNS addresses: one holds each, the others stand by (cmd/dns.ts).
  const dnsSettings = opts.dns && leadership ? { ...opts.dns, standby: true } : opts.dns;
  dns = dnsSettings ? await startDiscoveryDns(dnsSettings, regions, opts.region, log, loadBalancers ? [loadBalancers.hostNames] : []) : undefined;
  return {
    endpoint,
    advertisedEndpoint: announced.endpoint,
    port,
    credentials,
    partition: home.ctx.partition,
    ctx: home.ctx,
    regions,
    http,
    store,
    dns: dns?.addresses ?? [],
    dnsStandingBy: dns?.standingBy ?? [],
    get loadBalancers() {
      return loadBalancers;
    },
    async close() {
      await loadBalancers?.detach();
      await dns?.close();
      await regions.close();
      await leadership?.close();
      await replicaRegistry?.stop();
      await http.close();
      await store.close();
    },
  };
}

/** dist/console of the checkout this runs from (src/cmd under tsx, dist/src/cmd when built). */
function defaultConsoleDir(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'dist', 'console');
}

/**
 * ECS's CapacityProviderReservation metric (and the group size managed scaling aims at) of every
 * Auto Scaling group capacity provider with managed scaling, per region, on /metrics (a scrape
 * runs a pass of the controllers, so the values are current).
 */
/** Group commits of placements (control/placement-batch.ts) and of task reports: how many each txn carried. */
function placementCommitGauges(registry: Registry): void {
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('wharf_placement_txns', 'Store transactions that committed placements (each may carry several callers)', () => placementCommitStats.txns);
  gauge('wharf_placement_calls', 'Placement callers (RunTask, StartTask, service launches) answered by those transactions', () => placementCommitStats.placements);
  gauge('wharf_placement_conflicts', 'Placement transactions refused by a conflict (the callers involved decided again)', () => placementCommitStats.conflicts);
  gauge('wharf_placement_largest_batch', 'The most callers one placement transaction carried', () => placementCommitStats.largestBatch);
  gauge('wharf_task_report_txns', "Store transactions that committed agents' task state reports", () => reportCommitStats.txns);
  gauge('wharf_task_reports', "Agents' task state reports those transactions committed", () => reportCommitStats.reports);
}

function capacityProviderGauges(registry: Registry, regions: RegionRuntimes): void {
  const labelNames = ['region', 'capacity_provider', 'cluster'] as const;
  const fill = async (g: Gauge<(typeof labelNames)[number]>, pick: (r: { reservation: number; desired: number; instances: number }) => number) => {
    g.reset();
    for (const rt of await regions.running()) {
      for (const r of rt.capacityProviders()?.reconcile() ?? []) g.set({ region: rt.region, capacity_provider: r.capacityProvider, cluster: r.cluster }, pick(r));
    }
  };
  new Gauge({
    name: 'wharf_capacity_provider_reservation',
    help: 'CapacityProviderReservation (percent): instances needed / instances in the group * 100',
    labelNames,
    registers: [registry],
    async collect() {
      await fill(this, (r) => r.reservation);
    },
  });
  new Gauge({
    name: 'wharf_capacity_provider_desired_instances',
    help: 'The group size managed scaling aims at (targetCapacity met)',
    labelNames,
    registers: [registry],
    async collect() {
      await fill(this, (r) => r.desired);
    },
  });
  new Gauge({
    name: 'wharf_capacity_provider_instances',
    help: 'Container instances in the capacity provider group',
    labelNames,
    registers: [registry],
    async collect() {
      await fill(this, (r) => r.instances);
    },
  });
}
