/**
 * Managed scaling of Auto Scaling group capacity providers. Wharf has no Auto Scaling groups, so
 * it does what ECS does up to the group: on every pass it computes, for each ACTIVE provider with
 * managedScaling ENABLED, the CapacityProviderReservation metric and the group size that meets
 * targetCapacity (core/capacity-provider-scaling.ts), publishes them (`readings()`, which
 * `wharf server` exposes on /metrics), and, when the desired size changes, hands it to
 * `scale` (`wharf server --scale-command`), never twice at once for one provider.
 *
 * Inputs, re-read on every pass (level-triggered; a pass every intervalMs):
 *   - the group: the container instances of the provider's cluster (the cluster that has it)
 *     that carry `wharf.capacity-provider=<name>`, ACTIVE or DRAINING;
 *   - busy instances: those with tasks placed on them;
 *   - waiting tasks: what services launching through the provider want and do not have (their
 *     desired count minus their tasks still wanted, the provider's share of that by the split).
 * With managedTerminationProtection ENABLED the desired size never drops below the busy
 * instances, and the scale request names the instances that hold tasks (protected) and those
 * that may be removed.
 *
 * Scale-out is asked for at once; scale-in only once the desired size has stayed below the
 * group's for SCALE_IN_AFTER_MS (15 minutes), as ECS's target tracking policy scales in only
 * after its low alarm has seen 15 one-minute data points: short RunTask jobs do not make
 * instances come and go. The reading (and /metrics) shows the lower size meanwhile.
 *
 * It also places the RunTask tasks waiting unplaced in PROVISIONING for an instance of their
 * provider's group (control/capacity-waiting.ts): on every pass and whenever an instance or a
 * waiting task changes; those tasks count as waiting for managed scaling too.
 */
import { CAPACITY_PROVIDER_ATTRIBUTE } from '../control/capacity-providers';
import { isWaiting, settleWaitingTask } from '../control/capacity-waiting';
import { tasksOfService } from '../control/service-records';
import { findTaskDefinition } from '../control/task-definitions';
import type { ControlContext } from '../control/context';
import { managedScaling, type Needs, type ScalingResult } from '../core/capacity-provider-scaling';
import { countByProvider, splitTasks } from '../core/capacity-provider-strategy';
import { readResources } from '../core/instance-resources';
import type { CapacityProviderRecord } from '../core/resources';
import { resolveResourceNeeds } from '../core/task-definition-resources';
import { isTerminal } from '../core/task-status';

export interface CapacityProviderReading extends ScalingResult {
  capacityProvider: string;
  cluster: string;
  /** N: instances in the group now. */
  instances: number;
}

export interface ScaleRequest extends CapacityProviderReading {
  autoScalingGroupArn: string;
  /** Container instance ARNs that hold tasks (kept when managedTerminationProtection is ENABLED). */
  protectedInstances: string[];
  /** Container instance ARNs a scale-in may remove. */
  removableInstances: string[];
  /** managedScaling.instanceWarmupPeriod: how long instances a scale-out asked for get to join. */
  instanceWarmupSeconds: number;
}

/** How long the desired size must stay below the group's before a scale-in is asked for. */
export const SCALE_IN_AFTER_MS = 15 * 60_000;

export interface CapacityProviderControllerDeps {
  ctx: ControlContext;
  intervalMs?: number;
  /** Default SCALE_IN_AFTER_MS. */
  scaleInAfterMs?: number;
  /** Runs the scaling action for a new desired size (resolves when it is done). */
  scale?: (r: ScaleRequest) => Promise<void>;
}

export class CapacityProviderController {
  private timer?: { cancel(): void };
  private stopped = false;
  private readonly current = new Map<string, CapacityProviderReading>();
  /** Last desired size handed to `scale`, by provider. */
  private readonly requested = new Map<string, number>();
  private readonly running = new Set<string>();
  /** The last scale-out handed to `scale`, by provider: when, and the size it asked for. */
  private readonly scaledOut = new Map<string, { at: number; desired: number }>();
  /** Since when the desired size has been below the group's, by provider. */
  private readonly lowSince = new Map<string, number>();
  /** Tasks waiting unplaced for capacity: `<cluster>/<task id>`. */
  private readonly waitingTasks = new Set<string>();
  private unsubscribe?: () => void;
  private settling?: Promise<void>;
  private settleAgain = false;

  constructor(private readonly deps: CapacityProviderControllerDeps) {}

  start(): void {
    const { ctx } = this.deps;
    for (const e of ctx.state.tasks.all()) if (isWaiting(e.value)) this.waitingTasks.add(`${e.value.wharf.cluster}/${e.value.wharf.id}`);
    this.unsubscribe = ctx.state.subscribe((c) => {
      if (c.kind === 'tasks') {
        const key = `${c.parent}/${c.child}`;
        const t = c.current?.value as Parameters<typeof isWaiting>[0] | undefined;
        if (t && isWaiting(t)) {
          this.waitingTasks.add(key);
          this.settleSoon();
        } else this.waitingTasks.delete(key);
      } else if ((c.kind === 'instances' || c.kind === 'usage') && this.waitingTasks.size > 0) this.settleSoon();
    });
    const tick = () => {
      if (this.stopped) return;
      try {
        this.reconcile();
      } catch (err) {
        ctx.log.error({ err }, 'capacity provider scaling failed');
      }
      this.settleSoon();
      if (!this.stopped) this.timer = ctx.clock.setTimeout(tick, this.deps.intervalMs ?? 15_000);
    };
    this.timer = ctx.clock.setTimeout(tick, 0);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.unsubscribe?.();
  }

  /** Tries to place (or stop) every waiting task, one pass at a time. */
  settleSoon(): Promise<void> {
    if (this.settling) {
      this.settleAgain = true;
      return this.settling;
    }
    this.settling = (async () => {
      do {
        this.settleAgain = false;
        for (const key of [...this.waitingTasks]) {
          if (this.stopped) return;
          const i = key.indexOf('/');
          try {
            await settleWaitingTask(this.deps.ctx, key.slice(0, i), key.slice(i + 1));
          } catch (err) {
            this.deps.ctx.log.error({ err, task: key }, 'placing a task waiting for capacity failed');
          }
        }
      } while (this.settleAgain && !this.stopped);
    })().finally(() => (this.settling = undefined));
    return this.settling;
  }

  /** The latest reading of every provider with managed scaling. */
  readings(): CapacityProviderReading[] {
    return [...this.current.values()];
  }

  /** One pass over every provider; returns the readings. */
  reconcile(): CapacityProviderReading[] {
    const { ctx } = this.deps;
    const seen = new Set<string>();
    for (const e of ctx.state.capacityProviders.all()) {
      const p = e.value;
      const ms = p.autoScalingGroupProvider.managedScaling;
      if (p.status !== 'ACTIVE' || ms?.status !== 'ENABLED') continue;
      const cluster = [...ctx.state.clusters.all()].map((c) => c.value).find((c) => c.status === 'ACTIVE' && (c.capacityProviders ?? []).includes(p.name));
      if (!cluster) continue;
      seen.add(p.name);
      const { reading, request } = this.measure(p, cluster.clusterName);
      const before = this.current.get(p.name);
      this.current.set(p.name, reading);
      if (!before || before.reservation !== reading.reservation || before.desired !== reading.desired) {
        ctx.log.info({ capacityProvider: p.name, cluster: reading.cluster, reservation: reading.reservation, instances: reading.instances, needed: reading.needed, desired: reading.desired }, 'CapacityProviderReservation');
      }
      this.maybeScale(request);
    }
    for (const name of [...this.current.keys()]) if (!seen.has(name)) this.current.delete(name);
    return this.readings();
  }

  private measure(p: CapacityProviderRecord, cluster: string): { reading: CapacityProviderReading; request: ScaleRequest } {
    const { ctx } = this.deps;
    const group = [...ctx.state.instances.children(cluster).values()]
      .map((e) => e.value)
      .filter((ci) => (ci.status === 'ACTIVE' || ci.status === 'DRAINING') && ci.attributes?.some((a) => a.name === CAPACITY_PROVIDER_ATTRIBUTE && a.value === p.name));
    const busy = group.filter((ci) => (ctx.state.tasksByInstance.get(ci.wharf.id)?.size ?? 0) > 0);
    let size: Needs | undefined;
    for (const ci of group) {
      const r = readResources(ci.registeredResources);
      if (!size || r.memory > size.memory) size = { cpu: r.cpu, memory: r.memory };
    }
    const ms = p.autoScalingGroupProvider.managedScaling!;
    const protection = p.autoScalingGroupProvider.managedTerminationProtection === 'ENABLED';
    const result = managedScaling({
      instances: group.length,
      busyInstances: busy.length,
      provisioning: this.waiting(p.name, cluster),
      instanceSize: size,
      settings: {
        targetCapacity: ms.targetCapacity ?? 100,
        minimumScalingStepSize: ms.minimumScalingStepSize ?? 1,
        maximumScalingStepSize: ms.maximumScalingStepSize ?? 10000,
        terminationProtection: protection,
      },
    });
    const reading: CapacityProviderReading = { capacityProvider: p.name, cluster, instances: group.length, ...result };
    const busyArns = new Set(busy.map((ci) => ci.containerInstanceArn));
    return {
      reading,
      request: {
        ...reading,
        autoScalingGroupArn: p.autoScalingGroupProvider.autoScalingGroupArn,
        protectedInstances: protection ? [...busyArns] : [],
        removableInstances: group.map((ci) => ci.containerInstanceArn).filter((a) => !protection || !busyArns.has(a)),
        instanceWarmupSeconds: ms.instanceWarmupPeriod ?? 300,
      },
    };
  }

  /** What services launching through the provider want and do not have, task by task. */
  private waiting(provider: string, cluster: string): Needs[] {
    const { ctx } = this.deps;
    const out: Needs[] = [];
    for (const key of this.waitingTasks) {
      const i = key.indexOf('/');
      const t = key.slice(0, i) === cluster ? ctx.state.tasks.get(cluster, key.slice(i + 1))?.value : undefined;
      const td = t?.capacityProviderName === provider && t.desiredStatus === 'RUNNING' ? findTaskDefinition(ctx, t.taskDefinitionArn!) : undefined;
      if (!td) continue;
      const needs = resolveResourceNeeds(td, t!.overrides);
      out.push({ cpu: needs.cpu, memory: needs.memory });
    }
    for (const e of ctx.state.services.children(cluster).values()) {
      const s = e.value;
      const strategy = s.capacityProviderStrategy ?? [];
      if (s.status !== 'ACTIVE' || !strategy.some((x) => x.capacityProvider === provider)) continue;
      const wanted = tasksOfService(ctx, s).filter((t) => t.desiredStatus === 'RUNNING' && !isTerminal(t.lastStatus));
      const missing = s.desiredCount - wanted.length;
      if (missing <= 0) continue;
      const have = countByProvider(wanted.map((t) => t.capacityProviderName ?? ''));
      const mine = splitTasks(strategy, missing, have).filter((n) => n === provider).length;
      const td = findTaskDefinition(ctx, s.wharf.deployments[0]?.taskDefinition ?? s.taskDefinition);
      if (!td) continue;
      const needs = resolveResourceNeeds(td);
      for (let i = 0; i < mine; i++) out.push({ cpu: needs.cpu, memory: needs.memory });
    }
    return out;
  }

  private maybeScale(r: ScaleRequest): void {
    const { scale, ctx } = this.deps;
    if (!scale) return;
    const now = ctx.clock.now();
    // Kept on every pass, whatever else holds the request back, so a dip that ended is forgotten.
    const lowFor = r.desired < r.instances ? now - (this.lowSince.get(r.capacityProvider) ?? now) : undefined;
    if (lowFor === undefined) this.lowSince.delete(r.capacityProvider);
    else if (!this.lowSince.has(r.capacityProvider)) this.lowSince.set(r.capacityProvider, now);
    if (this.running.has(r.capacityProvider) || this.requested.get(r.capacityProvider) === r.desired) return;
    // ECS's instanceWarmupPeriod: while the instances of the last scale-out are still joining
    // (within the period), a larger size is not asked for; they would be counted twice.
    const last = this.scaledOut.get(r.capacityProvider);
    if (last && r.desired > last.desired && r.instances < last.desired && now - last.at < r.instanceWarmupSeconds * 1000) return;
    if (lowFor !== undefined && lowFor < (this.deps.scaleInAfterMs ?? SCALE_IN_AFTER_MS)) return;
    if (r.desired > r.instances) this.scaledOut.set(r.capacityProvider, { at: now, desired: r.desired });
    this.running.add(r.capacityProvider);
    this.requested.set(r.capacityProvider, r.desired);
    scale(r)
      .catch((err) => {
        // Asked again on the next pass.
        this.requested.delete(r.capacityProvider);
        ctx.log.error({ err, capacityProvider: r.capacityProvider, desired: r.desired }, 'scale command failed');
      })
      .finally(() => this.running.delete(r.capacityProvider));
  }
}
