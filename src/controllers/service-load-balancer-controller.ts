/**
 * Services' `loadBalancers`: registers each service task in its target groups once it is RUNNING,
 * deregisters the targets of tasks that stopped on their own, and ends the DEACTIVATING of tasks
 * told to stop once their targets drained (control/task-drain.ts). The plan is planTargets()
 * (service-targets.ts); this writes it through the store, as the ELBv2 API would, in the record
 * shapes of control/elbv2-records.ts (the load balancer controller then configures HAProxy and
 * writes back each target's health).
 *
 * Level-triggered, keyed by service (`cluster/name`): changes to the service, its tasks, its
 * targets, the target groups it names and their health records enqueue it; drain deadlines wake
 * it by the clock. Nothing is kept in memory but the queue, so a restart re-derives everything.
 */
import type { ServiceRecord, TaskRecord } from '../core/resources';
import { addServiceEvents, serviceEventText } from '../core/service-events';
import type { ControlContext } from '../control/context';
import { elbIdOf, targetChild, type TargetGroupRecord, type TargetHealthRecord, type TargetRecord } from '../control/elbv2-records';
import { finishDeactivation } from '../control/task-drain';
import { KeyedQueue, epochSeconds, uuid } from '../lib';
import { casUpdate, StoreConflictError, type TxnOp } from '../store/store';
import { keys } from '../core/resources';
import { planTargets, servicesUsingTargetGroup, targetGroupsOf, type OwnedTarget, type TargetEnv, type TargetsPlan } from './service-targets';

/** What the planners read of ELBv2 from the cache. */
export function targetEnv(ctx: ControlContext): TargetEnv {
  let byId: Map<string, TargetGroupRecord> | undefined;
  return {
    targetGroupById(id) {
      if (!byId) {
        byId = new Map();
        for (const e of ctx.state.elbTargetGroups.all()) {
          const tg = e.value as TargetGroupRecord;
          byId.set(elbIdOf(tg.TargetGroupArn), tg);
        }
      }
      return byId.get(id);
    },
    instanceTargetId: (t) => (t.wharf.instanceId ? (ctx.state.instances.get(t.wharf.instanceCluster ?? t.wharf.cluster, t.wharf.instanceId)?.value.ec2InstanceId ?? t.wharf.instanceId) : undefined),
    health: (tgId, id, port) => ctx.state.elbHealth.get(tgId, targetChild(id, port))?.value as TargetHealthRecord | undefined,
    target: (tgId, id, port) => ctx.state.elbTargets.get(tgId, targetChild(id, port))?.value as TargetRecord | undefined,
  };
}

/** `arn:…:task/<cluster>/<id>` -> [cluster, id]. */
function taskRef(arn: string): [string, string] | undefined {
  const m = /:task\/([^/]+)\/([^/]+)$/.exec(arn);
  return m ? [m[1]!, m[2]!] : undefined;
}

const keyOf = (cluster: string, name: string) => `${cluster}/${name}`;

export class ServiceLoadBalancerController {
  private readonly queue: KeyedQueue;
  private unsubscribe?: () => void;
  private readonly wakeTimers = new Map<string, { at: number; timer: { cancel(): void } }>();
  /** `service key|target group ARN` already reported missing by this process (one event each). */
  private readonly reportedMissing = new Set<string>();
  /** service key -> ids of its tasks in the cache (a pass reads only its own tasks). */
  private readonly tasksByService = new Map<string, Set<string>>();
  private stopped = false;

  constructor(private readonly ctx: ControlContext) {
    this.queue = new KeyedQueue((k) => this.reconcile(k).then(() => undefined), ctx.clock, {
      concurrency: 4,
      onError: (key, err) => {
        if (!(err instanceof StoreConflictError)) ctx.log.warn({ service: key, err }, 'service load balancer reconcile failed; will retry');
      },
    });
  }

  start(): void {
    const { state } = this.ctx;
    for (const e of state.tasks.all()) this.index(undefined, e.value);
    this.unsubscribe = state.subscribe((c) => {
      if (c.kind === 'tasks') {
        this.index(c.previous?.value as TaskRecord | undefined, c.current?.value as TaskRecord | undefined);
        // Only services with load balancers: a service without any pays nothing for its tasks.
        const t = (c.current?.value ?? c.previous?.value) as TaskRecord | undefined;
        const s = t?.wharf.serviceName ? state.services.get(c.parent, t.wharf.serviceName)?.value : undefined;
        if (s && targetGroupsOf(s).size > 0) this.add(keyOf(c.parent, s.serviceName));
      } else if (c.kind === 'services') {
        const s = (c.current?.value ?? c.previous?.value) as ServiceRecord | undefined;
        if (s && targetGroupsOf(s).size > 0) this.add(keyOf(c.parent, c.child));
      } else if (c.kind === 'elbhealth' || c.kind === 'elbtargetgroups') {
        const id = c.kind === 'elbhealth' ? c.parent : elbIdOf(((c.current?.value ?? c.previous?.value) as TargetGroupRecord).TargetGroupArn);
        for (const k of servicesUsingTargetGroup(state, id)) this.add(k);
      } else if (c.kind === 'elbtargets') {
        const arn = ((c.current?.value ?? c.previous?.value) as TargetRecord | undefined)?.ecsTaskArn;
        const ref = arn ? taskRef(arn) : undefined;
        const t = ref && state.tasks.get(ref[0], ref[1])?.value;
        if (t && t.wharf.serviceName) this.add(keyOf(t.wharf.cluster, t.wharf.serviceName));
      }
    });
    for (const e of state.services.all()) if (targetGroupsOf(e.value).size > 0) this.add(keyOf(e.value.wharf.cluster, e.value.serviceName));
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.queue.stop();
    for (const w of this.wakeTimers.values()) w.timer.cancel();
    this.wakeTimers.clear();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  private index(prev: TaskRecord | undefined, cur: TaskRecord | undefined): void {
    const before = prev?.wharf.serviceName ? keyOf(prev.wharf.cluster, prev.wharf.serviceName) : undefined;
    const after = cur?.wharf.serviceName ? keyOf(cur.wharf.cluster, cur.wharf.serviceName) : undefined;
    if (before && before !== after) this.tasksByService.get(before)?.delete(prev!.wharf.id);
    if (after) {
      let set = this.tasksByService.get(after);
      if (!set) this.tasksByService.set(after, (set = new Set()));
      set.add(cur!.wharf.id);
    }
  }

  private add(key: string): void {
    if (!this.stopped) this.queue.add(key);
  }

  private wake(key: string, at: number): void {
    const cur = this.wakeTimers.get(key);
    if (cur && cur.at <= at) return;
    cur?.timer.cancel();
    const timer = this.ctx.clock.setTimeout(() => {
      this.wakeTimers.delete(key);
      this.add(key);
    }, Math.max(0, at - this.ctx.clock.now()));
    this.wakeTimers.set(key, { at, timer });
  }

  /** The targets ECS registered for this service's tasks, and for tasks of its cluster that are gone. */
  private owned(cluster: string, name: string): OwnedTarget[] {
    const out: OwnedTarget[] = [];
    for (const [tgId, m] of this.ctx.state.elbTargets.byParent) {
      for (const [child, e] of m) {
        const r = e.value as TargetRecord;
        const ref = r.ecsTaskArn ? taskRef(r.ecsTaskArn) : undefined;
        if (!ref || ref[0] !== cluster) continue;
        const t = this.ctx.state.tasks.get(ref[0], ref[1])?.value;
        if (t && t.wharf.serviceName !== name) continue;
        out.push({ targetGroupId: tgId, key: `elbtargets/${tgId}/${child}`, revision: e.modRevision, record: r });
      }
    }
    return out;
  }

  async reconcile(key: string): Promise<TargetsPlan | undefined> {
    const i = key.indexOf('/');
    const cluster = key.slice(0, i);
    const name = key.slice(i + 1);
    const s = this.ctx.state.services.get(cluster, name)?.value;
    if (!s || targetGroupsOf(s).size === 0) return undefined;
    const tasks: TaskRecord[] = [];
    for (const id of this.tasksByService.get(key) ?? []) {
      const t = this.ctx.state.tasks.get(cluster, id)?.value;
      if (t && t.wharf.serviceName === name) tasks.push(t);
      else if (!t) this.tasksByService.get(key)!.delete(id);
    }
    const plan = planTargets(s, tasks, this.owned(cluster, name), targetEnv(this.ctx), this.ctx.clock.now());
    const ops: TxnOp[] = [
      ...plan.register.map((r): TxnOp => ({ op: 'put', key: r.key, value: r.record })),
      ...plan.deregister.map((d): TxnOp => ({ op: 'delete', key: d.key, expectedRevision: d.revision })),
    ];
    if (ops.length > 0) await this.ctx.state.waitFor(await this.ctx.store.txn(ops));
    for (const id of plan.finish) await finishDeactivation(this.ctx, cluster, id);

    const events: string[] = [];
    const count = (list: { targetGroupArn: string }[]) => {
      const m = new Map<string, number>();
      for (const x of list) if (x.targetGroupArn) m.set(x.targetGroupArn, (m.get(x.targetGroupArn) ?? 0) + 1);
      return m;
    };
    for (const [arn, n] of count(plan.register)) events.push(serviceEventText.registeredTargets(name, n, arn));
    for (const [arn, n] of count(plan.deregister)) events.push(serviceEventText.deregisteredTargets(name, n, arn));
    for (const arn of plan.missingGroups) {
      const k = `${key}|${arn}`;
      if (this.reportedMissing.has(k)) continue;
      this.reportedMissing.add(k);
      events.push(serviceEventText.targetGroupNotFound(name, arn));
    }
    if (events.length > 0) {
      const nowS = epochSeconds(this.ctx.clock.now());
      const { revision } = await casUpdate<ServiceRecord>(this.ctx.store, keys.service(cluster, name), (cur) => {
        if (!cur || cur.value.status === 'INACTIVE') return undefined;
        const next = addServiceEvents(cur.value.events, events, nowS, uuid);
        return next === cur.value.events ? undefined : { ...cur.value, events: next };
      });
      await this.ctx.state.waitFor(revision);
    }
    if (plan.wakeAt !== undefined) this.wake(key, plan.wakeAt);
    return plan;
  }
}
