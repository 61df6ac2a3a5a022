/**
 * LoadBalancerController: the stored ELBv2 records of every region -> one running HAProxy, and
 * HAProxy's view of the targets -> the stored health records. One per `wharf server` process
 * (one HAProxy serves every region; each load balancer has its own address, 10.99.<region>.N).
 *
 * Level-triggered, one pass at a time: a pass re-reads every region's records, builds the desired
 * state (load-balancer-desired-state.ts, pure), puts every load balancer's address on Wharf's
 * interface, applies the state to HAProxy, takes addresses no load balancer has any more off the
 * interface, then compares HAProxy's health with the stored records (load-balancer-health.ts,
 * pure) and writes only the changes. Passes run every `intervalMs` (drains end, health moves)
 * and soon after any change of an elb* record or of a container instance (coalesced: changes that
 * arrive while a pass runs give one more pass, not one each).
 *
 *   change ----> schedule (debounce) --+
 *   tick (1 s) ------------------------+--> pass: records -> desired -> addresses -> HAProxy
 *                                                 -> health -> store
 */
import fs from 'node:fs';
import type { ControlContext } from '../control/context';
import {
  allLoadBalancers,
  allTargetGroups,
  elbIdOf,
  healthKey,
  healthOf,
  listenersOf,
  rulesOf,
  targetChild,
  targetsOf,
  type ListenerRecord,
  type RuleRecord,
  type TargetGroupRecord,
  type TargetHealthRecord,
  type TargetRecord,
} from '../control/elbv2-records';
import type { ContainerInstanceRecord } from '../core/resources';
import type { Clock, Logger } from '../lib';
import { generateConfig } from '../loadbalancer/haproxy-config';
import type { DesiredState } from '../loadbalancer/model';
import type { ApplyResult, TargetHealthDescription } from '../loadbalancer/reconciler';
import type { StateKind } from '../state/state';
import { certificateProblem, desiredStateOf, type DesiredStateResult, type RegionElbRecords } from './load-balancer-desired-state';
import { planTargetHealth, type ObservedHealth } from './load-balancer-health';

/** The data plane as the controller drives it (loadbalancer/reconciler.ts). */
export interface LoadBalancerDataPlane {
  apply(desired: DesiredState): Promise<ApplyResult>;
  health(): Promise<Map<string, TargetHealthDescription[]>>;
}

/** Where load balancers' addresses live on this host (cmd/elb-interface.ts). */
export interface LoadBalancerAddresses {
  /** Makes sure each address is on the interface (before HAProxy binds it). */
  add(addresses: string[]): Promise<void>;
  /** Takes every address this data dir put there and `keep` does not name off the interface. */
  retain(keep: string[]): Promise<void>;
}

export interface LoadBalancerControllerOptions {
  dataPlane: LoadBalancerDataPlane;
  addresses: LoadBalancerAddresses;
  clock: Clock;
  log: Logger;
  /**
   * The host address instance targets are reached on: where the agent publishes bridge-mode host
   * ports (it publishes on every address, 0.0.0.0) and HAProxy, on the host, can connect.
   */
  instanceHostAddress: string;
  intervalMs?: number;
  /** How long a change waits for more changes before its pass starts (ms). */
  debounceMs?: number;
}

const WATCHED: ReadonlySet<StateKind> = new Set(['elbloadbalancers', 'elbtargetgroups', 'elblisteners', 'elbrules', 'elbtargets', 'instances']);

/** Paths only for validating a configuration (generateConfig writes nothing). */
const VALIDATION_PATHS = { runtimeSocket: '/nonexistent/runtime.sock', serverStateFile: '/nonexistent/server-state' };

/** One region's records, read from its state cache. */
export function readRegionRecords(ctx: ControlContext): RegionElbRecords {
  const loadBalancers = allLoadBalancers(ctx);
  const listeners = new Map<string, ListenerRecord[]>();
  const rules = new Map<string, RuleRecord[]>();
  for (const lb of loadBalancers) {
    const ls = listenersOf(ctx, elbIdOf(lb.LoadBalancerArn));
    listeners.set(elbIdOf(lb.LoadBalancerArn), ls);
    for (const l of ls) rules.set(elbIdOf(l.ListenerArn), rulesOf(ctx, elbIdOf(l.ListenerArn)));
  }
  const targetGroups = allTargetGroups(ctx);
  const targets = new Map<string, TargetRecord[]>();
  for (const tg of targetGroups) targets.set(elbIdOf(tg.TargetGroupArn), targetsOf(ctx, elbIdOf(tg.TargetGroupArn)));
  return { region: ctx.partition.region, loadBalancers, listeners, rules, targetGroups, targets };
}

/**
 * The container instance an instance target names: by its EC2 instance id (what ELB registers),
 * or by its container instance id (Wharf's hosts are not EC2 instances and may have none).
 */
export function findTargetInstance(ctx: ControlContext, id: string): ContainerInstanceRecord | undefined {
  for (const e of ctx.state.instances.all()) {
    const ci = e.value;
    if (ci.status === 'INACTIVE') continue;
    if (ci.ec2InstanceId === id || ci.containerInstanceArn?.endsWith(`/${id}`)) return ci;
  }
  return undefined;
}

function hasInstanceGroups(ctx: ControlContext): boolean {
  for (const e of ctx.state.elbTargetGroups.all()) if ((e.value as TargetGroupRecord).TargetType === 'instance') return true;
  return false;
}

export class LoadBalancerController {
  private readonly regions = new Map<string, { ctx: ControlContext; unsubscribe: () => void }>();
  private timer: { cancel(): void } | undefined;
  private debounce: { cancel(): void } | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Last rejection reason per listener ARN (one listener left out) or load balancer ARN (all of it), so a lasting problem is logged once. */
  private rejected = new Map<string, string>();
  /** Per target group: data-plane key -> registered target, remembered for draining targets. */
  private known = new Map<string, Map<string, { Id: string; Port: number }>>();
  /** Passes done (tests and /metrics-like views wait on it). */
  passes = 0;
  lastResult: DesiredStateResult | undefined;

  constructor(private readonly o: LoadBalancerControllerOptions) {}

  start(): void {
    this.stopped = false;
    this.tick();
  }

  /** Serves a region's records from now on (regions come up lazily). */
  addRegion(ctx: ControlContext): void {
    if (this.regions.has(ctx.partition.region)) return;
    const unsubscribe = ctx.state.subscribe((c) => {
      if (!WATCHED.has(c.kind)) return;
      // Instances change with every placement: they matter only to instance target groups.
      if (c.kind === 'instances' && !hasInstanceGroups(ctx)) return;
      this.schedule();
    });
    this.regions.set(ctx.partition.region, { ctx, unsubscribe });
    this.schedule();
  }

  /** Stops the loop and waits for a pass in progress (HAProxy itself is the caller's). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.debounce?.cancel();
    for (const r of this.regions.values()) r.unsubscribe();
    this.regions.clear();
    await this.running;
  }

  /**
   * The DNS names of every region's load balancers -> their addresses (discovery's HostNameSource):
   * the DNSName and, as on ELB, `dualstack.<DNSName>` (the name Route 53 aliases and the console use).
   */
  hostNames(): { name: string; ipv4: string[]; ttl: number }[] {
    const out: { name: string; ipv4: string[]; ttl: number }[] = [];
    for (const { ctx } of this.regions.values()) {
      for (const lb of allLoadBalancers(ctx)) {
        if (!lb.DNSName || !lb.address) continue;
        const name = lb.DNSName.toLowerCase();
        out.push({ name, ipv4: [lb.address], ttl: 60 }, { name: `dualstack.${name}`, ipv4: [lb.address], ttl: 60 });
      }
    }
    return out;
  }

  private tick(): void {
    if (this.stopped) return;
    this.timer = this.o.clock.setTimeout(() => {
      void this.runPass().finally(() => this.tick());
    }, this.o.intervalMs ?? 1000);
  }

  private schedule(): void {
    if (this.stopped || this.debounce) return;
    this.debounce = this.o.clock.setTimeout(() => {
      this.debounce = undefined;
      void this.runPass();
    }, this.o.debounceMs ?? 20);
  }

  /** One pass now, or one more right after the pass in progress. Never throws. */
  runPass(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.pass();
        } catch (e) {
          this.o.log.warn({ err: (e as Error).message }, 'load balancer pass failed; will retry');
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    const regions = [...this.regions.values()].map((r) => r.ctx);
    const result = desiredStateOf({
      regions: regions.map(readRegionRecords),
      instanceAddress: (region, id) => {
        const ctx = this.regions.get(region)?.ctx;
        return ctx && findTargetInstance(ctx, id) ? this.o.instanceHostAddress : undefined;
      },
      validate: (d) => void generateConfig(d, new Map(), VALIDATION_PATHS),
      certificateProblem: (file) =>
        certificateProblem(file, (f) => {
          try {
            return fs.readFileSync(f, 'utf8');
          } catch {
            return undefined;
          }
        }),
    });
    this.logRejections(result);
    const addresses = [...new Set(result.desired.loadBalancers.map((lb) => lb.address))];
    await this.o.addresses.add(addresses);
    await this.o.dataPlane.apply(result.desired);
    await this.o.addresses.retain(addresses);
    this.lastResult = result;
    const health = await this.o.dataPlane.health();
    for (const ctx of regions) await this.writeHealth(ctx, result, health);
    this.passes++;
  }

  private logRejections(result: DesiredStateResult): void {
    const now = new Map(result.rejected.map((r) => [r.listenerArn ?? r.loadBalancerArn, r.reason]));
    for (const r of result.rejected) {
      if (this.rejected.get(r.listenerArn ?? r.loadBalancerArn) === r.reason) continue;
      if (r.listenerArn) this.o.log.error({ region: r.region, loadBalancerArn: r.loadBalancerArn, listenerArn: r.listenerArn, reason: r.reason }, 'listener left out of the data plane: its records cannot be served (the other listeners are)');
      else this.o.log.error({ region: r.region, loadBalancerArn: r.loadBalancerArn, reason: r.reason }, 'load balancer left out of the data plane: its records cannot be served');
    }
    for (const arn of this.rejected.keys()) if (!now.has(arn)) this.o.log.info(arn.includes(':listener/') ? { listenerArn: arn } : { loadBalancerArn: arn }, arn.includes(':listener/') ? 'listener served again' : 'load balancer served again');
    this.rejected = now;
  }

  /** Observed health of one group, in the records' terms (instance id and host port). */
  private observed(groupId: string, result: DesiredStateResult, health: Map<string, TargetHealthDescription[]>): ObservedHealth[] | undefined {
    const list = health.get(groupId);
    if (!list || !result.groupRegion.has(groupId)) return undefined;
    const known = this.known.get(groupId) ?? new Map<string, { Id: string; Port: number }>();
    for (const [k, v] of result.registered.get(groupId) ?? []) known.set(k, v);
    const out: ObservedHealth[] = [];
    const seen = new Set<string>();
    for (const d of list) {
      const key = `${d.target.id}:${d.target.port}`;
      const t = known.get(key) ?? { Id: d.target.id, Port: d.target.port };
      out.push({ Id: t.Id, Port: t.Port, health: d.health });
      seen.add(key);
    }
    for (const k of [...known.keys()]) if (!seen.has(k)) known.delete(k);
    this.known.set(groupId, known);
    return out;
  }

  private async writeHealth(ctx: ControlContext, result: DesiredStateResult, health: Map<string, TargetHealthDescription[]>): Promise<void> {
    const now = this.o.clock.now();
    const groups = new Set<string>();
    for (const tg of allTargetGroups(ctx)) {
      const id = elbIdOf(tg.TargetGroupArn);
      groups.add(id);
      const observed = result.groupRegion.get(id) === ctx.partition.region ? this.observed(id, result, health) : undefined;
      const plan = planTargetHealth(targetsOf(ctx, id), observed, healthOf(ctx, id), now, { intervalSeconds: tg.HealthCheckIntervalSeconds, unhealthyThreshold: tg.UnhealthyThresholdCount });
      for (const rec of plan.put) await this.putHealth(ctx, id, rec);
      for (const t of plan.delete) await this.deleteHealth(ctx, id, t.Id, t.Port);
    }
    // Records of target groups that are gone.
    for (const [parent, children] of ctx.state.elbHealth.byParent) {
      if (groups.has(parent)) continue;
      for (const e of [...children.values()]) {
        const rec = e.value as TargetHealthRecord;
        await this.deleteHealth(ctx, parent, rec.Id, rec.Port);
      }
    }
  }

  private async putHealth(ctx: ControlContext, groupId: string, rec: TargetHealthRecord): Promise<void> {
    const have = ctx.state.elbHealth.get(groupId, targetChild(rec.Id, rec.Port));
    try {
      if (have) await ctx.store.update(healthKey(groupId, rec.Id, rec.Port), rec, have.modRevision);
      else await ctx.store.create(healthKey(groupId, rec.Id, rec.Port), rec);
    } catch (e) {
      // A racing writer (or a store hiccup): the next pass compares again.
      this.o.log.debug({ targetGroup: groupId, target: `${rec.Id}:${rec.Port}`, err: (e as Error).message }, 'target health not written; next pass');
    }
  }

  private async deleteHealth(ctx: ControlContext, groupId: string, id: string, port: number): Promise<void> {
    const have = ctx.state.elbHealth.get(groupId, targetChild(id, port));
    if (!have) return;
    try {
      await ctx.store.delete(healthKey(groupId, id, port), have.modRevision);
    } catch (e) {
      this.o.log.debug({ targetGroup: groupId, target: `${id}:${port}`, err: (e as Error).message }, 'target health not deleted; next pass');
    }
  }
}

