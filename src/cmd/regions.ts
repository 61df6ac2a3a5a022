/**
 * One Wharf answers every AWS region, as AWS partitions them: each region has its own state (a
 * PrefixedStore view of the one store, `regions/<region>/`), its own cache, placement view,
 * controllers and agent gateway, and its own ARNs. Nothing crosses regions: a request is served by
 * the region of its SigV4 credential scope.
 *
 * Regions come up lazily: the default region and every region that holds data start with the
 * server (their services must be reconciled even if nobody calls), any other served region on
 * the first authenticated request for it. Bringing one up costs a snapshot of its (empty) part of
 * the store and four idle loops.
 */
import type { Partition } from '../core/arn';
import type { RegionPolicy } from '../core/regions';
import { ec2Handlers, ecsHandlers, elbv2Handlers, type ControlContext } from '../control';
import { cloudMapHandlers } from '../control/cloudmap';
import { ensureDefaultNetwork } from '../control/vpc';
import { defaultVpcCidr } from '../core/vpc';
import { sealPlaintextSecrets, secretsHandlers } from '../control/secrets';
import { logsHandlers } from '../control/logs';
import { sweepExpiredEvents } from '../control/logs-events';
import { authorizeAgentLogs } from '../control/logs-agent-authorization';
import { InstanceLivenessController } from '../controllers/instance-liveness-controller';
import { ClusterAgentConnections, PresencePublisher } from '../controllers/agent-presence';
import { ServiceController } from '../controllers/service-controller';
import { ServiceRegistryController } from '../controllers/service-registry-controller';
import { instanceHostAddress } from './host-address';
import { ServiceLoadBalancerController } from '../controllers/service-load-balancer-controller';
import { TaskReaperController } from '../controllers/task-reaper-controller';
import { CapacityProviderController, type ScaleRequest } from '../controllers/capacity-provider-controller';
import type { Handler } from '../server/api-registry';
import { createAgentGateway, type AgentGateway } from '../server/agent-gateway';
import type { Credentials } from '../server/request-identity';
import { PlacementView } from '../state/placement-view';
import { State } from '../state/state';
import { markRegionUsed, regionLogStore, regionStore, usedRegions } from '../store/regions';
import type { Store } from '../store/store';
import { FencedStore } from '../store/fenced-store';
import type { Leadership } from '../store/etcd/etcd-leadership';
import { coalescedRead, systemClock, type Logger, type SecretCipher } from '../lib';
import { WharfError } from '../core/errors';
import { StoreReadTimeoutError, isEtcdUnavailable, storeUnavailableMessage } from '../store/etcd/etcd-unavailable';

/** How long a request waits for the read of etcd's revision before it is answered 503. */
const STORE_READ_TIMEOUT_MS = 2000;

/** Everything one region runs. */
export interface RegionRuntime {
  region: string;
  ctx: ControlContext;
  gateway: AgentGateway;
  ecs: Record<string, Handler>;
  secrets: Record<string, Handler>;
  cloudMap: Record<string, Handler>;
  /** CloudWatch Logs (control/logs.ts), on the region's log part of the store. */
  logs: Record<string, Handler>;
  /** The capacity provider controller, while this replica runs controllers (see `leadership`). */
  capacityProviders(): CapacityProviderController | undefined;
  ec2: Record<string, Handler>;
  elbv2: Record<string, Handler>;
  close(): Promise<void>;
}

export interface RegionRuntimeOptions {
  store: Store;
  accountId: string;
  policy: RegionPolicy;
  credentials: Credentials;
  log: Logger;
  agentTimeoutMs?: number;
  /** How long a Fargate pool host may have no agent channel before its tasks are stopped (ms). */
  poolHostLostMs?: number;
  pingIntervalMs?: number;
  healthyAfterRunningMs?: number;
  /** Seals Secrets Manager values (the data dir's secrets.key), in every region. */
  secretCipher?: SecretCipher;
  /** Runs a capacity provider's scaling action (`--scale-command`), given its region. */
  scale?: (region: string) => (r: ScaleRequest) => Promise<void>;
  /** First two octets of the first region's default VPC range (core/vpc.ts DEFAULT_VPC_BASE). */
  vpcBase?: string;
  /**
   * Distributed mode: the controllers run only while this replica leads, and write through a
   * FencedStore so that a replica that lost the lead cannot change anything. Absent: one process
   * owns the store and always runs them.
   */
  leadership?: Leadership;
  /**
   * Distributed mode: this replica's id and whether another replica is alive. Each region then
   * publishes its agent sockets as presence records, and the liveness controller counts the live
   * replicas' records as open channels (controllers/agent-presence.ts).
   */
  replicas?: { self: string; alive(replica: string): boolean };
}

export class RegionRuntimes {
  private readonly started = new Map<string, Promise<RegionRuntime>>();
  /** The runtimes that are up, for synchronous lookups (an agent's logs call reads its own region). */
  private readonly up = new Map<string, RegionRuntime>();
  private closed = false;
  private endpoint?: string;
  private readonly upListeners = new Set<(r: RegionRuntime) => void>();
  /** Distributed mode: since when requests have found etcd unable to serve (undefined while it serves). */
  private storeFailingSince: number | undefined;

  constructor(private readonly o: RegionRuntimeOptions) {}

  /** The 503 a request gets while etcd cannot serve, saying so in Wharf's words (store/etcd/etcd-unavailable.ts). */
  private storeUnavailable(err: unknown): WharfError {
    const now = Date.now();
    this.storeFailingSince ??= now;
    return new WharfError('ServiceUnavailableException', storeUnavailableMessage(err, now - this.storeFailingSince));
  }

  /** Brings up the default region and every region that holds data. */
  async startUsed(): Promise<void> {
    const regions = new Set([this.o.policy.defaultRegion, ...(await usedRegions(this.o.store))]);
    for (const r of regions) {
      // A region that holds data but is no longer among --regions stays down (and unreachable);
      // its data is kept for a server that serves it again.
      if (this.o.policy.refusal(r) === undefined) await this.get(r);
      else this.o.log.warn({ region: r }, 'region holds data but is not served (--regions); its services are not reconciled');
    }
  }

  /** The runtime of a served region (the caller has checked the policy). */
  get(region: string): Promise<RegionRuntime> {
    let p = this.started.get(region);
    if (!p) {
      if (this.closed) return Promise.reject(new Error('the server is shutting down'));
      p = this.start(region);
      this.started.set(region, p);
      void p.then((r) => {
        this.up.set(region, r);
        for (const l of this.upListeners) l(r);
      }, () => undefined);
      // A failed start (the store refused) is retried by the next request, not cached.
      p.catch(() => this.started.delete(region));
    }
    return p;
  }

  /** The server's URL once it listens: every region's context knows it (DiscoverPollEndpoint). */
  setEndpoint(endpoint: string): void {
    this.endpoint = endpoint;
    for (const p of this.started.values()) void p.then((r) => void (r.ctx.endpoint = endpoint), () => undefined);
  }

  /**
   * Calls `listener` with every region already up and each one that comes up later (the load
   * balancer controller serves all regions); returns the unsubscribe.
   */
  onUp(listener: (r: RegionRuntime) => void): () => void {
    this.upListeners.add(listener);
    for (const p of this.started.values()) void p.then((r) => this.upListeners.has(listener) && listener(r), () => undefined);
    return () => this.upListeners.delete(listener);
  }

  /** The runtimes already up (for /metrics-like views and tests). */
  async running(): Promise<RegionRuntime[]> {
    return Promise.all(this.started.values());
  }

  private async start(region: string): Promise<RegionRuntime> {
    const { o } = this;
    const log = o.log.child({ region });
    await markRegionUsed(o.store, region, systemClock.now());
    // Distributed mode: every write of the region also puts its revision key, for the read barrier.
    const distributed = o.leadership !== undefined;
    const store = regionStore(o.store, region, { trackRevision: distributed });
    const state = new State(store);
    await state.start();
    const partition: Partition = { region, accountId: o.accountId };
    const ctx: ControlContext = { store, state, placement: new PlacementView(state), partition, clock: systemClock, log, vpcCidr: defaultVpcCidr(region, o.vpcBase) };
    if (this.endpoint) ctx.endpoint = this.endpoint;
    if (o.secretCipher) ctx.secretCipher = o.secretCipher;
    // Secrets written before values were sealed are sealed now, before anything reads them.
    const sealed = await sealPlaintextSecrets(ctx);
    if (sealed > 0) log.info({ sealed }, 'encrypted the secrets stored in the clear by an earlier version');
    // The region's default VPC exists from its first use on, as on AWS; made here, at start, so
    // that no request has to write it (a refused request changes nothing).
    await ensureDefaultNetwork(ctx);
    const gateway = createAgentGateway({ ctx, credentials: o.credentials, pingIntervalMs: o.pingIntervalMs });
    const presence = o.replicas && new PresencePublisher({ replica: o.replicas.self, store, connections: gateway.connections, clock: systemClock, log });
    const connections = o.replicas
      ? new ClusterAgentConnections({ replica: o.replicas.self, local: gateway.connections, state, replicaAlive: (r) => o.replicas!.alive(r), clock: systemClock })
      : gateway.connections;
    // Logs have their own part of the store (not cached); agents' calls are judged against the
    // state of the instance's own region, which may not be this one (awslogs-region).
    const logStore = regionLogStore(o.store, region);
    const logs = logsHandlers({ store: logStore, partition, clock: systemClock, log, agentCheck: (op, input, caller, logsRegion) => authorizeAgentLogs((r) => this.up.get(r)?.ctx, op, input, caller, logsRegion) });
    // Every controller of the region, started together; a new set per leadership term (they do
    // not restart once stopped).
    let controllers: { capacityProviders: CapacityProviderController; stop(): void } | undefined;
    const startControllers = (c: ControlContext) => {
      const liveness = new InstanceLivenessController({ state, store: c.store, clock: systemClock, log, connections, timeoutMs: o.agentTimeoutMs, poolHostLostMs: o.poolHostLostMs });
      const reaper = new TaskReaperController({ state, store: c.store, clock: systemClock, log });
      const services = new ServiceController({ ctx: c, healthyAfterRunningMs: o.healthyAfterRunningMs });
      const registries = new ServiceRegistryController(c, { instanceHostAddress: instanceHostAddress() });
      const serviceTargets = new ServiceLoadBalancerController(c);
      const capacityProviders = new CapacityProviderController({ ctx: c, scale: o.scale?.(region) });
      liveness.start();
      reaper.start();
      services.start();
      registries.start();
      serviceTargets.start();
      capacityProviders.start();
      // Retention: reads hide expired events at once; this frees their batches every 10 minutes.
      let sweep: { cancel(): void } | undefined;
      const sweepLater = () => {
        sweep = systemClock.setTimeout(() => {
          sweepExpiredEvents({ store: logStore, partition, clock: systemClock, log })
            .catch((err: unknown) => log.warn({ err }, 'log retention sweep failed'))
            .finally(() => sweep && sweepLater());
        }, 600_000);
      };
      sweepLater();
      controllers = {
        capacityProviders,
        stop() {
          sweep?.cancel();
          sweep = undefined;
          registries.stop();
          serviceTargets.stop();
          capacityProviders.stop();
          services.stop();
          reaper.stop();
          liveness.stop();
        },
      };
    };
    let unfollow: (() => void) | undefined;
    const { leadership } = o;
    if (!leadership) startControllers(ctx);
    else {
      // The controllers' writes carry the term's fence; the API's writes (any replica) do not.
      const fenced: ControlContext = { ...ctx, store: regionStore(new FencedStore(o.store, () => leadership.current()), region, { trackRevision: true }) };
      const follow = (leading: boolean) => {
        if (leading && !controllers) {
          log.info('this replica leads: controllers start');
          startControllers(fenced);
        } else if (!leading && controllers) {
          log.warn('this replica no longer leads: controllers stop');
          controllers.stop();
          controllers = undefined;
        }
      };
      unfollow = leadership.onChange(follow);
      follow(leadership.current() !== undefined);
    }
    log.info('region up');
    // Distributed mode: this replica's cache may not have seen a write another replica has
    // acknowledged yet. Before each request, read the region's revision key from etcd (a
    // linearizable read) and wait until the cache has applied it: then any replica answers any
    // request as of every write acknowledged before it arrived (Kubernetes' "consistent reads
    // from cache" does the same with etcd's revision).
    // Requests arriving together share one read (lib/coalesced-read.ts): an agent fleet's reports
    // would otherwise cost etcd a read each.
    const latest = coalescedRead(() => store.latestRevision());
    // Without etcd's quorum that read fails only after the client's retries (3-28 s seen): a
    // request answers at once that the store is unavailable (503, which SDKs retry), not late
    // with a ServerException.
    const barrier = async (): Promise<number> => {
      let timer: NodeJS.Timeout | undefined;
      try {
        const revision = await Promise.race([
          latest(),
          new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new StoreReadTimeoutError(STORE_READ_TIMEOUT_MS)), STORE_READ_TIMEOUT_MS))),
        ]);
        this.storeFailingSince = undefined;
        return revision;
      } catch (e) {
        throw this.storeUnavailable(e);
      } finally {
        clearTimeout(timer);
      }
    };
    // A write (or a read of the store itself) that etcd cannot serve is the same 503, not a
    // ServerException carrying the etcd client's words.
    const storeFailuresAs503 = async (h: Handler, args: Parameters<Handler>) => {
      try {
        return await h(...args);
      } catch (e) {
        throw isEtcdUnavailable(e) ? this.storeUnavailable(e) : e;
      }
    };
    const current = (table: Record<string, Handler>): Record<string, Handler> => {
      if (!distributed) return table;
      const out: Record<string, Handler> = {};
      for (const [op, h] of Object.entries(table)) {
        out[op] = async (...args: Parameters<Handler>) => {
          await state.waitFor(await barrier());
          return storeFailuresAs503(h, args);
        };
      }
      return out;
    };
    const storeOnly = (table: Record<string, Handler>): Record<string, Handler> =>
      distributed ? Object.fromEntries(Object.entries(table).map(([op, h]) => [op, (...args: Parameters<Handler>) => storeFailuresAs503(h, args)])) : table;
    return {
      region,
      ctx,
      gateway,
      ecs: current(ecsHandlers(ctx) as Record<string, Handler>),
      secrets: current(secretsHandlers(ctx) as Record<string, Handler>),
      cloudMap: current(cloudMapHandlers(ctx) as Record<string, Handler>),
      // Logs read the store itself, which is current on every replica: no read barrier needed.
      logs: storeOnly(logs as Record<string, Handler>),
      capacityProviders: () => controllers?.capacityProviders,
      ec2: current(ec2Handlers(ctx) as Record<string, Handler>),
      elbv2: current(elbv2Handlers(ctx) as Record<string, Handler>),
      async close() {
        unfollow?.();
        presence?.stop();
        if (connections instanceof ClusterAgentConnections) connections.stop();
        controllers?.stop();
        controllers = undefined;
        await gateway.close();
        state.stop();
        await store.close();
        await logStore.close();
      },
    };
  }

  /** Stops every region (the shared store is closed by its owner). */
  async close(): Promise<void> {
    this.closed = true;
    const all = await Promise.allSettled(this.started.values());
    for (const r of all) if (r.status === 'fulfilled') await r.value.close();
  }
}

/**
 * A handler table that serves each call from the caller's region. The operation names are those
 * the runtime of `sample` implements (every region implements the same ones).
 */
export function regionalHandlers(
  runtimes: RegionRuntimes,
  sample: Record<string, Handler>,
  pick: (r: RegionRuntime) => Record<string, Handler>,
): Record<string, Handler> {
  const out: Record<string, Handler> = {};
  for (const op of Object.keys(sample)) {
    out[op] = async (input, caller) => {
      const runtime = await runtimes.get(caller.region);
      return pick(runtime)[op]!(input, caller);
    };
  }
  return out;
}
