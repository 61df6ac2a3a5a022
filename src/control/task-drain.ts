/**
 * DEACTIVATING: a task that an ECS service registered in load balancer target groups leaves them
 * before it is told to stop, so the load balancer stops sending it new requests and lets the
 * ones in flight finish (ECS-REFERENCE 4.1, 6.8):
 *
 *   RUNNING ──requestStop──> DEACTIVATING ──(drained, or the deregistration delay is over)──>
 *     desiredStatus STOPPED, lastStatus STOPPING ──agent: SIGTERM, stopTimeout, SIGKILL──> STOPPED
 *
 * Entering DEACTIVATING is one transaction: the task record (lastStatus DEACTIVATING, the stop
 * asked for kept in `wharf.deactivating`, desiredStatus still RUNNING so the agent keeps it
 * running and placement keeps its resources and ports) and the deletion of its target records.
 * Leaving it is the service load balancer controller's (controllers/service-targets.ts): once no
 * health record of its targets is left (the load balancer controller deletes one when its target
 * has drained) or `until` has passed, finishDeactivation() asks for the stop. Everything is in
 * the store, so a control plane restarted mid-drain carries on.
 */
import { keys, type Deactivation, type ServiceRecord, type TaskRecord, type TaskTarget } from '../core/resources';
import { addServiceEvents, serviceEventText } from '../core/service-events';
import { epochSeconds, uuid } from '../lib';
import { StoreConflictError, casUpdate, type TxnOp } from '../store/store';
import { committed, type ControlContext } from './context';
import { elbIdOf, targetKeyOf, type TargetGroupRecord, type TargetRecord } from './elbv2-records';
import { taskKey } from './task-records';

/** ELB's default `deregistration_delay.timeout_seconds`. */
export const DEFAULT_DEREGISTRATION_DELAY_S = 300;

export function targetGroupById(ctx: ControlContext, id: string): TargetGroupRecord | undefined {
  for (const e of ctx.state.elbTargetGroups.all()) {
    const tg = e.value as TargetGroupRecord;
    if (elbIdOf(tg.TargetGroupArn) === id) return tg;
  }
  return undefined;
}

/** How long a target of the group drains at most (0 for a group that no longer exists). */
export function deregistrationDelayMs(tg: TargetGroupRecord | undefined): number {
  if (!tg) return 0;
  const v = Number(tg.Attributes?.['deregistration_delay.timeout_seconds'] ?? DEFAULT_DEREGISTRATION_DELAY_S);
  return (Number.isFinite(v) && v >= 0 ? v : DEFAULT_DEREGISTRATION_DELAY_S) * 1000;
}

export interface RegisteredTarget {
  targetGroupId: string;
  target: TaskTarget;
  key: string;
  revision: number;
}

/** The targets ECS registered for a task (TargetRecord.ecsTaskArn), as stored now. */
export function registeredTargetsOf(ctx: ControlContext, taskArn: string): RegisteredTarget[] {
  const out: RegisteredTarget[] = [];
  for (const [tgId, m] of ctx.state.elbTargets.byParent) {
    for (const e of m.values()) {
      const r = e.value as TargetRecord;
      if (r.ecsTaskArn !== taskArn) continue;
      const arn = targetGroupById(ctx, tgId)?.TargetGroupArn ?? '';
      out.push({ targetGroupId: tgId, target: { targetGroupArn: arn, id: r.Id, port: r.Port }, key: targetKeyOf(tgId, r.Id, r.Port), revision: e.modRevision });
    }
  }
  return out;
}

/**
 * The DEACTIVATING step of a stop, when the task has load balancer targets to leave: the task as
 * it becomes and the writes that deregister its targets. Undefined when it has none (it stops at
 * once, as before).
 */
export function deactivation(ctx: ControlContext, t: TaskRecord, why: { stopCode: string; reason: string }): { task: TaskRecord; ops: TxnOp[] } | undefined {
  if (t.lastStatus !== 'RUNNING' || t.desiredStatus !== 'RUNNING') return undefined;
  const registered = registeredTargetsOf(ctx, t.taskArn);
  if (registered.length === 0) return undefined;
  const now = ctx.clock.now();
  let delay = 0;
  for (const r of registered) delay = Math.max(delay, deregistrationDelayMs(targetGroupById(ctx, r.targetGroupId)));
  const d: Deactivation = { stopCode: why.stopCode, reason: why.reason, at: now, until: now + delay, targets: registered.map((r) => r.target) };
  const task: TaskRecord = {
    ...t,
    lastStatus: 'DEACTIVATING',
    stopCode: why.stopCode as TaskRecord['stopCode'],
    stoppedReason: why.reason,
    version: t.version + 1,
    wharf: { ...t.wharf, deactivating: d },
  };
  return { task, ops: registered.map((r) => ({ op: 'delete', key: r.key, expectedRevision: r.revision })) };
}

/**
 * Service events for tasks that began DEACTIVATING, in ECS's order: the targets each group lost,
 * then the draining, per deployment (ECS's task set).
 */
export function drainEvents(serviceName: string, tasks: readonly TaskRecord[]): string[] {
  const draining = tasks.filter((t) => t.wharf.deactivating);
  const byGroup = new Map<string, number>();
  const byDeployment = new Map<string | undefined, number>();
  for (const t of draining) {
    for (const x of t.wharf.deactivating!.targets) if (x.targetGroupArn) byGroup.set(x.targetGroupArn, (byGroup.get(x.targetGroupArn) ?? 0) + 1);
    byDeployment.set(t.startedBy, (byDeployment.get(t.startedBy) ?? 0) + 1);
  }
  return [
    ...[...byGroup].map(([arn, n]) => serviceEventText.deregisteredTargets(serviceName, n, arn)),
    ...[...byDeployment].map(([d, n]) => serviceEventText.beganDraining(serviceName, d, n)),
  ];
}

/** A task stopped outside the service scheduler (StopTask) that went DEACTIVATING: its service says so. */
export async function announceDrain(ctx: ControlContext, t: TaskRecord): Promise<void> {
  const name = t.wharf.serviceName;
  const events = name ? drainEvents(name, [t]) : [];
  if (!name || events.length === 0) return;
  const nowS = epochSeconds(ctx.clock.now());
  const { revision } = await casUpdate<ServiceRecord>(ctx.store, keys.service(t.wharf.cluster, name), (cur) => {
    if (!cur || cur.value.status === 'INACTIVE') return undefined;
    const next = addServiceEvents(cur.value.events, events, nowS, uuid);
    return next === cur.value.events ? undefined : { ...cur.value, events: next };
  });
  await committed(ctx, revision);
}

/**
 * The drain is over: the stop asked for at deactivation goes to the agent. Does nothing for a
 * task that is not DEACTIVATING (already finished, or stopped on its own meanwhile).
 */
export async function finishDeactivation(ctx: ControlContext, cluster: string, taskId: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const e = ctx.state.tasks.get(cluster, taskId);
    const t = e?.value;
    const d = t?.wharf.deactivating;
    if (!e || !t || !d || t.lastStatus !== 'DEACTIVATING' || t.desiredStatus !== 'RUNNING') return;
    const wharf = { ...t.wharf };
    delete wharf.deactivating;
    const next: TaskRecord = {
      ...t,
      desiredStatus: 'STOPPED',
      lastStatus: 'STOPPING',
      stopCode: d.stopCode as TaskRecord['stopCode'],
      stoppedReason: d.reason,
      stoppingAt: epochSeconds(ctx.clock.now()),
      version: t.version + 1,
      wharf,
    };
    try {
      await committed(ctx, await ctx.store.update(taskKey(t), next, e.modRevision));
      return;
    } catch (err) {
      if (!(err instanceof StoreConflictError) || attempt >= 50) throw err;
      await committed(ctx, await ctx.store.revision());
    }
  }
}
