/** `wharf server`: the control plane with the embedded SQLite store, answering every region. */
import { join } from 'node:path';
import type { Partition } from '../core/arn';
import { RegionPolicy } from '../core/regions';
import type { ControlContext } from '../control';
import { createHttpServer, type WharfHttpServer } from '../server/http-server';
import { regionalUpgrade } from '../server/regional-upgrade';
import { wharfApis, wharfQueryApis } from '../server/wharf-apis';
import { SqliteStore } from '../store/sqlite/sqlite-store';
import { migrateUnprefixedKeys } from '../store/regions';
import type { Store } from '../store/store';
import { createLogger, systemClock, type Logger } from '../lib';
import { loadOrCreateCredentials, type CredentialsFile } from './credentials';
import { RegionRuntimes, regionalHandlers } from './regions';

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
  /** WebSocket ping interval of the agent channel (ms). */
  pingIntervalMs?: number;
  /** How long a service task without a health check must run before it counts as healthy (ms; ECS: 40 s). */
  healthyAfterRunningMs?: number;
  /**
   * First two octets of the default VPC range of the first region (`10.100`); region i of
   * AWS_REGIONS gets the /16 with the second octet + i. Each subnet is a Docker network with that
   * range, so it must clash with no network of the hosts.
   */
  vpcBase?: string;
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
  const keyTable = new Map<string, { secret: string; isAgent: boolean }>();
  keyTable.set(credentials.user.accessKeyId, { secret: credentials.user.secretAccessKey, isAgent: false });
  for (const t of credentials.agentTokens) keyTable.set(t.accessKeyId, { secret: t.secretAccessKey, isAgent: true });
  const credentialLookup = { lookup: (id: string) => keyTable.get(id) };
  const regions = new RegionRuntimes({
    store,
    accountId: opts.accountId,
    policy,
    credentials: credentialLookup,
    log,
    agentTimeoutMs: opts.agentTimeoutMs,
    pingIntervalMs: opts.pingIntervalMs,
    healthyAfterRunningMs: opts.healthyAfterRunningMs,
    vpcBase: opts.vpcBase,
  });
  await regions.startUsed();
  const home = await regions.get(opts.region);
  const http = createHttpServer({
    apis: wharfApis({
      ecs: regionalHandlers(regions, home.ecs, (r) => r.ecs),
      secrets: regionalHandlers(regions, home.secrets, (r) => r.secrets),
    }),
    queryApis: wharfQueryApis({ ec2: regionalHandlers(regions, home.ec2, (r) => r.ec2) }),
    credentials: credentialLookup,
    accountId: opts.accountId,
    regions: policy,
    log,
    onUpgrade: regionalUpgrade(credentialLookup, policy, async (region) => (await regions.get(region)).gateway),
  });
  const { port } = await http.listen(opts.port, opts.host);
  const endpoint = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
  regions.setEndpoint(endpoint);
  log.info({ endpoint, dataDir: opts.dataDir, region: opts.region, regions: policy.describe() }, 'wharf server listening');
  return {
    endpoint,
    port,
    credentials,
    partition: home.ctx.partition,
    ctx: home.ctx,
    regions,
    http,
    store,
    async close() {
      await regions.close();
      await http.close();
      await store.close();
    },
  };
}
