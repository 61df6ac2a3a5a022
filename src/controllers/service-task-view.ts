/**
 * What the service planners see of tasks and instances, and the judgements they share: is a task
 * live, healthy, lost, failed; which stopped tasks count against a deployment (circuit breaker,
 * restart throttling). Pure functions of their inputs and `now`.
 *
 * Health of a live task, for minimumHealthyPercent (ECS-REFERENCE 6.4, 6.7):
 *
 *   PENDING ──> RUNNING ──(no health check, no load balancer: healthyAfterRunningMs, ECS 40 s)──> healthy
 *                  │
 *                  └──(container health check and/or load balancers)── HEALTHY and its target
 *                       `healthy` in every target group ──> healthy
 *                     └ UNHEALTHY, or a target `unhealthy`, after the grace period ──> failed: replaced
 *
 * A DEACTIVATING task (its targets draining before its stop, control/task-drain.ts) is no longer
 * live: it counts neither as healthy nor as pending, but it is still present.
 *
 * A task on a DRAINING instance is still healthy (it really runs) but must move; a task whose
 * instance is gone, INACTIVE or has lost its agent is not healthy and must be replaced.
 */
import type { ServiceDeploymentRecord } from '../core/resources';
import type { TaskRecord, ContainerInstanceRecord } from '../core/resources';
import { throttleDelayMs, type ThrottleConfig } from '../core/service-math';
import { STOP, isTerminal } from '../core/task-status';

export interface ServiceTaskView {
  id: string;
  /** The deployment that launched it (task.startedBy). */
  deploymentId?: string;
  instanceId?: string;
  lastStatus: string;
  desiredStatus: string;
  /** Epoch ms. */
  createdAt: number;
  startedAt?: number;
  stoppedAt?: number;
  stopCode?: string;
  stoppedReason?: string;
  healthStatus?: string;
  /** Its task definition has an essential container with a health check. */
  hasHealthCheck: boolean;
  /** Store revision of the task record's last write (the cache's modRevision), when known. */
  revision?: number;
  /** Task scale-in protection: epoch ms until which it is protected (UpdateTaskProtection). */
  protectedUntil?: number;
  /** Its deployment's load balancers (target groups that exist): its target's health in each. */
  targets?: TargetHealthView[];
}

export interface TargetHealthView {
  targetGroupArn: string;
  /** `(task <id>)` for ip targets, `(instance <ec2 id>)` for instance targets (service events). */
  label: string;
  port: number;
  /** The health record's state; undefined while the target is not registered or not yet seen. */
  state?: string;
  /** The health record's description (event text), e.g. `Health checks failed`. */
  description?: string;
}

export interface InstanceView {
  id: string;
  status: string;
  agentConnected: boolean;
  /** DAEMON only: the instance satisfies the service's constraints and required attributes. */
  eligible?: boolean;
}

export interface PlanOptions {
  /** Without a health check a RUNNING task counts as healthy this long after it started (ECS: 40 s). */
  healthyAfterRunningMs: number;
  throttle: ThrottleConfig;
  newDeploymentId: () => string;
  newEventId: () => string;
}

export const HEALTH_CHECK_STOP_REASON = 'Task failed container health checks';
/**
 * Wharf's own (ECS leaves a disconnected agent's tasks alone): the service replaced a task whose
 * container instance is gone, deregistered, or whose agent stayed disconnected past the timeout.
 */
export const lostInstanceStopReason = (instanceId: string | undefined): string =>
  `Task replaced by the service scheduler: its container instance${instanceId ? ` ${instanceId}` : ''} is lost (deregistered, or its agent disconnected for longer than the agent timeout)`;
export const elbHealthStopReason = (targetGroupArn: string) => `Task failed ELB health checks in (target-group ${targetGroupArn})`;
/** Stopped for failing container or load balancer health checks (circuit breaker stage 2). */
export const isHealthStopReason = (r: string | undefined) => r === HEALTH_CHECK_STOP_REASON || (r?.startsWith('Task failed ELB health checks in ') ?? false);
export const scalingReason = (deploymentId: string) => STOP.serviceScheduler.reason.replace('%s', deploymentId);

const sec = (s: number | undefined) => (s === undefined ? undefined : Math.round(s * 1000));

/** The planner's view of a task record. */
export function taskView(t: TaskRecord, hasHealthCheck: boolean, revision?: number): ServiceTaskView {
  const v: ServiceTaskView = {
    id: t.wharf.id,
    deploymentId: t.startedBy,
    instanceId: t.wharf.instanceId,
    lastStatus: t.lastStatus,
    desiredStatus: t.desiredStatus,
    createdAt: sec(t.createdAt) ?? 0,
    startedAt: sec(t.startedAt),
    stoppedAt: sec(t.stoppedAt),
    stopCode: t.stopCode,
    stoppedReason: t.stoppedReason,
    healthStatus: t.healthStatus,
    hasHealthCheck,
  };
  if (revision !== undefined) v.revision = revision;
  if (t.wharf.protectedUntil !== undefined) v.protectedUntil = t.wharf.protectedUntil;
  return v;
}

/**
 * The instances a plan looks tasks' instances up in. A Map of every instance of the cluster is
 * one; the controller gives REPLICA plans a lookup into its cache instead, so that planning a
 * service costs its own tasks, not the cluster's instance count (1,000 services on 1,000
 * instances would otherwise build a million views per round).
 */
export interface InstanceLookup {
  get(id: string): InstanceView | undefined;
}

export function instanceView(i: ContainerInstanceRecord, eligible?: boolean): InstanceView {
  const v: InstanceView = { id: i.wharf.id, status: i.status, agentConnected: i.agentConnected ?? false };
  if (eligible !== undefined) v.eligible = eligible;
  return v;
}

/** Desired RUNNING and not yet stopped. */
export const isLive = (t: ServiceTaskView) => t.desiredStatus === 'RUNNING' && !isTerminal(t.lastStatus) && t.lastStatus !== 'DEACTIVATING';

export type Placement = 'ok' | 'draining' | 'lost';

/** Where a task stands because of its instance. */
export function placementOf(t: ServiceTaskView, instances: InstanceLookup): Placement {
  if (t.instanceId === undefined) return 'ok';
  const i = instances.get(t.instanceId);
  if (!i || i.status === 'INACTIVE' || i.status === 'DEREGISTERING' || !i.agentConnected) return 'lost';
  if (i.status === 'DRAINING') return 'draining';
  return 'ok';
}

export interface Judged {
  task: ServiceTaskView;
  placement: Placement;
  healthy: boolean;
  /** UNHEALTHY past the grace period: to be replaced. */
  failedHealth: boolean;
  /** With failedHealth: the stop reason, and the unhealthy target when a load balancer judged it. */
  healthReason?: string;
  failedTarget?: TargetHealthView;
  /** Must be replaced (instance draining or lost, or failed health). */
  mustGo: boolean;
  /**
   * Scale-in protection holds now: neither scale-in nor a deployment stops it (a task that must
   * go because it failed or lost its instance still goes).
   */
  protected: boolean;
  /** Epoch ms at which the judgement may change by time alone (healthy, grace over). */
  changesAt?: number;
}

export function judge(t: ServiceTaskView, instances: InstanceLookup, now: number, graceMs: number, o: PlanOptions): Judged {
  const placement = placementOf(t, instances);
  let healthy = false;
  let failedHealth = false;
  let healthReason: string | undefined;
  let failedTarget: TargetHealthView | undefined;
  let changesAt: number | undefined;
  const isProtected = t.protectedUntil !== undefined && t.protectedUntil > now;
  const targets = t.targets ?? [];
  if (t.lastStatus === 'RUNNING' && placement !== 'lost') {
    const started = t.startedAt ?? t.createdAt;
    if (t.hasHealthCheck || targets.length > 0) {
      // Healthy only when every check passes; failures count once the grace period is over.
      healthy = (!t.hasHealthCheck || t.healthStatus === 'HEALTHY') && targets.every((x) => x.state === 'healthy');
      const badTarget = targets.find((x) => x.state === 'unhealthy');
      const badContainer = t.hasHealthCheck && t.healthStatus === 'UNHEALTHY';
      if (badContainer || badTarget) {
        if (started + graceMs <= now) {
          failedHealth = true;
          healthReason = badContainer ? HEALTH_CHECK_STOP_REASON : elbHealthStopReason(badTarget!.targetGroupArn);
          if (!badContainer) failedTarget = badTarget;
        } else changesAt = started + graceMs;
      }
    } else if (started + o.healthyAfterRunningMs <= now) {
      healthy = true;
    } else {
      changesAt = started + o.healthyAfterRunningMs;
    }
  }
  // Protection ends by time alone: wake then, so a waiting scale-in or deployment goes on.
  if (isProtected) changesAt = Math.min(changesAt ?? Infinity, t.protectedUntil!);
  const j: Judged = { task: t, placement, healthy, failedHealth, mustGo: placement !== 'ok' || failedHealth, protected: isProtected, changesAt };
  if (healthReason) j.healthReason = healthReason;
  if (failedTarget) j.failedTarget = failedTarget;
  return j;
}

/** Still occupies the service: not STOPPED, and not a task given up on a lost instance. */
export function isPresent(t: ServiceTaskView, instances: InstanceLookup): boolean {
  if (isTerminal(t.lastStatus)) return false;
  return !(t.desiredStatus === 'STOPPED' && placementOf(t, instances) === 'lost');
}

const MAX_JUDGED = 1000;

/** Stopped by a forced deregistration of its instance rather than by anything of its own. */
function isOrphaned(t: ServiceTaskView, instances: InstanceLookup | undefined): boolean {
  if (!instances || t.stopCode !== undefined || t.instanceId === undefined) return false;
  const i = instances.get(t.instanceId);
  return !i || i.status === 'INACTIVE';
}

/**
 * Folds the deployment's newly stopped tasks into its counters. A stopped task counts as failed
 * (circuit breaker) when it never reached RUNNING on its own (stage 1), was stopped for failing
 * its health checks, or exited on its own after starting but before it was ever healthy (stage
 * 2). A task that never reached RUNNING also feeds restart throttling; a task of the deployment
 * RUNNING after the newest such failure resets the throttle. Returns the same object when
 * nothing changed.
 *
 * "Newly" stopped: not judged before. With `revision` (the store revision the tasks were read
 * at) a deployment remembers a watermark, so a deployment with thousands of stopped tasks never
 * judges one twice; `judged` only keeps the newest ids for records rewritten after they stopped.
 * Without the watermark, ids pushed out of a capped list would be judged again on every pass:
 * failedTasks would grow without end and every pass would rewrite the service.
 *
 * A task orphaned by a forced deregistration (recorded STOPPED with no stop code, its instance
 * INACTIVE or gone) failed at nothing: like a task the scheduler stopped, it is replaced but
 * counts neither toward the circuit breaker nor toward restart throttling, however young it was.
 */
export function judgeStoppedTasks(
  d: ServiceDeploymentRecord,
  tasks: readonly ServiceTaskView[],
  now: number,
  o: PlanOptions,
  revision?: number,
  instances?: InstanceLookup,
): ServiceDeploymentRecord {
  const mine = tasks.filter((t) => t.deploymentId === d.id);
  const known = new Set(mine.map((t) => t.id));
  const judged = d.judged.filter((id) => known.has(id));
  const seen = new Set(judged);
  const mark = d.judgedRevision ?? 0;
  let { failedTasks, startFailures, throttledUntil, lastStartFailureAt } = d;
  let changed = judged.length !== d.judged.length;
  const fresh = mine
    .filter((t) => isTerminal(t.lastStatus) && !seen.has(t.id) && (t.revision === undefined || t.revision > mark))
    .sort((a, b) => (a.stoppedAt ?? 0) - (b.stoppedAt ?? 0));
  for (const t of fresh) {
    judged.push(t.id);
    changed = true;
    // A task stopped with its lost Fargate host (TerminationNotice) failed at nothing either.
    const byScheduler = t.stopCode === 'ServiceSchedulerInitiated' || t.stopCode === 'UserInitiated' || t.stopCode === 'TerminationNotice' || isOrphaned(t, instances);
    const neverRan = t.startedAt === undefined;
    const healthFailure = isHealthStopReason(t.stoppedReason);
    const everHealthy = t.hasHealthCheck
      ? t.healthStatus === 'HEALTHY'
      : t.startedAt !== undefined && (t.stoppedAt ?? now) - t.startedAt >= o.healthyAfterRunningMs;
    const failed = healthFailure || (!byScheduler && (neverRan || !everHealthy));
    if (failed) failedTasks++;
    if (failed && neverRan) {
      startFailures++;
      lastStartFailureAt = t.stoppedAt ?? now;
      const delay = throttleDelayMs(startFailures, o.throttle);
      throttledUntil = delay > 0 ? now + delay : undefined;
    }
  }
  if (startFailures > 0 && lastStartFailureAt !== undefined && mine.some((t) => t.startedAt !== undefined && t.startedAt >= lastStartFailureAt!)) {
    startFailures = 0;
    throttledUntil = undefined;
    changed = true;
  }
  if (!changed) return d;
  const out: ServiceDeploymentRecord = { ...d, judged: judged.slice(-MAX_JUDGED), failedTasks, startFailures };
  // The watermark only moves with a change, so a pass that judges nothing rewrites nothing.
  if (revision !== undefined && revision > mark) out.judgedRevision = revision;
  if (throttledUntil !== undefined) out.throttledUntil = throttledUntil;
  else delete out.throttledUntil;
  if (lastStartFailureAt !== undefined) out.lastStartFailureAt = lastStartFailureAt;
  return out;
}
