/** `wharf server`: the control plane with the embedded SQLite store, answering every region. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startDiscoveryDns, type DnsSettings } from './dns';
import type { DnsListenAddress } from '../discovery';
import { Gauge, type Registry } from 'prom-client';
import type { Partition } from '../core/arn';
import { RegionPolicy } from '../core/regions';
import type { ControlContext, Principal } from '../control';
import { createHttpServer, type WharfHttpServer } from '../server/http-server';
import { staticFiles } from '../server/static-files';
import { regionalUpgrade } from '../server/regional-upgrade';
import { wharfApis, wharfQueryApis } from '../server/wharf-apis';
import { SqliteStore } from '../store/sqlite/sqlite-store';
import { migrateUnprefixedKeys } from '../store/regions';
import type { Store } from '../store/store';
import { createLogger, systemClock, type Logger } from '../lib';
import { loadOrCreateCredentials, type CredentialsFile } from './credentials';
import { RegionRuntimes, regionalHandlers } from './regions';
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
  /** The built web console served at /console (default dist/console of this checkout; false: none). */
  consoleDir?: string | false;
}

export interface RunningServer {
  endpoint: string;
  port: number;
  credentials: CredentialsFile;
  /** The default region's partition and context (tests and `wharf up` use the default region). */
  partition: Partition;
  ctx: ControlContext;
  /** Every region's runtime, brought up on demand. */
  regions: RegionRuntimes;
  http: WharfHttpServer;
  store: Store;
  /** The addresses the DNS server answers on (empty when off). */
  dns: DnsListenAddress[];
  /** The load balancer controller and its HAProxy (undefined when off or haproxy is missing). */
  loadBalancers?: RunningLoadBalancers;
  /** Stops everything; HAProxy keeps serving (detached) for the next start to adopt. */
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const log = opts.log ?? createLogger('wharf-server');
  const policy = new RegionPolicy(opts.region, opts.regions);
  const credentials = loadOrCreateCredentials(opts.dataDir);
  const store = SqliteStore.open({ path: join(opts.dataDir, 'wharf.db'), synchronous: opts.synchronous ?? 'FULL', compactKeep: 20_000 });
  // A data dir from before regions: its keys move under the region their ARNs name, once.
  const migrated = await migrateUnprefixedKeys(store, opts.region, systemClock.now());
  if (migrated.moved > 0) log.info(migrated, 'moved the data of a single-region data dir under its region');
  const keyTable = new Map<string, { secret: string; principal: Principal }>();
  keyTable.set(credentials.user.accessKeyId, { secret: credentials.user.secretAccessKey, principal: { kind: 'user', iamResource: 'root' } });
  for (const t of credentials.agentTokens) keyTable.set(t.accessKeyId, { secret: t.secretAccessKey, principal: { kind: 'agent-token', iamResource: 'role/wharf-agent' } });
  const credentialLookup = { lookup: (id: string) => keyTable.get(id) };
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
  });
  await regions.startUsed();
  const home = await regions.get(opts.region);
  const http = createHttpServer({
    apis: wharfApis({
      ecs: regionalHandlers(regions, home.ecs, (r) => r.ecs),
      secrets: regionalHandlers(regions, home.secrets, (r) => r.secrets),
      cloudMap: regionalHandlers(regions, home.cloudMap, (r) => r.cloudMap),
    }),
    queryApis: wharfQueryApis({ ec2: regionalHandlers(regions, home.ec2, (r) => r.ec2), elbv2: regionalHandlers(regions, home.elbv2, (r) => r.elbv2) }),
    credentials: credentialLookup,
    accountId: opts.accountId,
    regions: policy,
    log,
    staticFiles: opts.consoleDir === false ? undefined : staticFiles(opts.consoleDir ?? defaultConsoleDir()),
    onUpgrade: regionalUpgrade(credentialLookup, policy, async (region) => (await regions.get(region)).gateway),
  });
  capacityProviderGauges(http.metrics, regions);
  const { port } = await http.listen(opts.port, opts.host);
  const endpoint = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
  regions.setEndpoint(endpoint);
  log.info({ endpoint, dataDir: opts.dataDir, region: opts.region, regions: policy.describe() }, 'wharf server listening');
  const loadBalancers = startLoadBalancers({ dataDir: opts.dataDir, settings: opts.loadBalancers ?? { enabled: true }, regions, log });
  const dns = opts.dns ? await startDiscoveryDns(opts.dns, regions, opts.region, log, loadBalancers ? [loadBalancers.hostNames] : []) : undefined;
  return {
    endpoint,
    port,
    credentials,
    partition: home.ctx.partition,
    ctx: home.ctx,
    regions,
    http,
    store,
    dns: dns?.addresses ?? [],
    loadBalancers,
    async close() {
      await loadBalancers?.detach();
      await dns?.server.close();
      await regions.close();
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
function capacityProviderGauges(registry: Registry, regions: RegionRuntimes): void {
  const labelNames = ['region', 'capacity_provider', 'cluster'] as const;
  const fill = async (g: Gauge<(typeof labelNames)[number]>, pick: (r: { reservation: number; desired: number; instances: number }) => number) => {
    g.reset();
    for (const rt of await regions.running()) {
      for (const r of rt.capacityProviders.reconcile()) g.set({ region: rt.region, capacity_provider: r.capacityProvider, cluster: r.cluster }, pick(r));
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
