/**
 * planService(): one reconcile of one service, as a plain plan (STYLE.md "compute a plan, then
 * apply it"). It reads the service record, the service's tasks and the cluster's instances, and
 * answers what to launch, what to stop, and the service record as it should be afterwards
 * (deployments, rollout states, circuit breaker, throttling, events). Nothing here does I/O.
 *
 * Deployment lifecycle (ECS-REFERENCE 6.3, 6.5, 6.6):
 *
 *   PRIMARY IN_PROGRESS ──(only deployment, desired healthy tasks)──> PRIMARY COMPLETED
 *        │   └──(failed tasks >= threshold, circuit breaker on)──> FAILED: launches nothing
 *        │                 └──(rollback on, a COMPLETED one exists)──> new PRIMARY from it
 *        └──(UpdateService that changes the task set)──> ACTIVE ──(no tasks left)──> removed
 */
import type { ServiceDeploymentHistoryRecord, ServiceDeploymentRecord, ServiceRecord } from '../core/resources';
import { addServiceEvents, rolloutReason, serviceEventText } from '../core/service-events';
import { circuitBreakerThreshold } from '../core/service-math';
import { epochSeconds } from '../lib';
import { daemonActions } from './daemon-actions';
import { newestFirst, replicaActions, type ChooseSurplus } from './service-actions';
import { isLive, isPresent, judge, judgeStoppedTasks, type InstanceLookup, type InstanceView, type PlanOptions, type ServiceTaskView } from './service-task-view';

export interface PlanInput {
  service: ServiceRecord;
  /** Every task of the service the cache holds (any status). */
  tasks: readonly ServiceTaskView[];
  /**
   * Every container instance of the cluster; REPLICA plans only look instances up by id, so a
   * lookup will do for them (DAEMON plans need the list: a task per eligible instance).
   */
  instances: readonly InstanceView[] | InstanceLookup;
  /** Epoch ms. */
  now: number;
  options: PlanOptions;
  /** Which PRIMARY tasks go on scale-in (the scheduler's strategies); default newest first. */
  chooseSurplus?: ChooseSurplus;
  /** The store revision `tasks` were read at (see judgeStoppedTasks). */
  revision?: number;
}

export interface ServicePlan {
  /** REPLICA: tasks to place through the scheduler. */
  place: { deploymentId: string; count: number }[];
  /** DAEMON: one task of the deployment on each listed instance. */
  placeOn: { deploymentId: string; instanceId: string }[];
  stop: { taskId: string; reason: string }[];
  /** The service record after this step (events included). */
  service: ServiceRecord;
  /** Whether `service` differs from the input record. */
  changed: boolean;
  /** Epoch ms at which to reconcile again even if nothing changes. */
  wakeAt?: number;
}

function patchHistory(h: readonly ServiceDeploymentHistoryRecord[], id: string, patch: Partial<ServiceDeploymentHistoryRecord>): ServiceDeploymentHistoryRecord[] {
  return h.map((e) => (e.id === id ? { ...e, ...patch } : e));
}

export function planService(input: PlanInput): ServicePlan {
  const { now, options: o } = input;
  const nowS = epochSeconds(now);
  const orig = input.service;
  const s: ServiceRecord = { ...orig, wharf: { ...orig.wharf } };
  const name = s.serviceName;
  const events: string[] = [];
  const instances: InstanceLookup = Array.isArray(input.instances) ? new Map((input.instances as readonly InstanceView[]).map((i) => [i.id, i])) : (input.instances as InstanceLookup);
  const grace = (s.healthCheckGracePeriodSeconds ?? 0) * 1000;
  const empty: ServicePlan = { place: [], placeOn: [], stop: [], service: orig, changed: false };
  if (s.status === 'INACTIVE' || s.wharf.deployments.length === 0) return empty;

  // 1. Count newly stopped tasks against their deployments.
  let deployments = s.wharf.deployments.map((d) => judgeStoppedTasks(d, input.tasks, now, o, input.revision, instances));
  let primary = deployments[0]!;

  // 2. Circuit breaker.
  const cb = s.deploymentConfiguration.deploymentCircuitBreaker;
  const threshold = circuitBreakerThreshold(s.schedulingStrategy === 'DAEMON' ? primary.desiredCount : s.desiredCount);
  if (s.status === 'ACTIVE' && cb?.enable && primary.rolloutState === 'IN_PROGRESS' && primary.failedTasks >= threshold) {
    const failedId = primary.id;
    primary = { ...primary, rolloutState: 'FAILED', rolloutStateReason: rolloutReason.circuitBreakerFailed(), updatedAt: nowS };
    const failedTasks = primary.failedTasks;
    const target = s.wharf.lastCompleted;
    const revision = target && s.wharf.revisions.find((r) => r.id === target.revisionId);
    const historyId = primary.rollbackOf ?? failedId;
    if (cb.rollback && !primary.rollbackOf && target && revision && target.deploymentId !== failedId) {
      const rollback: ServiceDeploymentRecord = {
        id: o.newDeploymentId(),
        status: 'PRIMARY',
        revisionId: revision.id,
        taskDefinition: revision.taskDefinition,
        desiredCount: primary.desiredCount,
        failedTasks: 0,
        createdAt: nowS,
        updatedAt: nowS,
        rolloutState: 'IN_PROGRESS',
        rolloutStateReason: rolloutReason.rollingBack(target.deploymentId),
        judged: [],
        startFailures: 0,
        rollbackOf: failedId,
      };
      deployments = [rollback, { ...primary, status: 'ACTIVE' }, ...deployments.slice(1)];
      primary = rollback;
      s.taskDefinition = revision.taskDefinition;
      if (revision.networkConfiguration) s.networkConfiguration = revision.networkConfiguration;
      else delete s.networkConfiguration;
      s.loadBalancers = revision.loadBalancers;
      s.serviceRegistries = revision.serviceRegistries;
      s.wharf.history = patchHistory(s.wharf.history, historyId, {
        status: 'ROLLBACK_IN_PROGRESS',
        statusReason: rolloutReason.rollingBack(target.deploymentId),
        updatedAt: nowS,
        failedTasks,
        rollback: { reason: rolloutReason.circuitBreakerFailed(), startedAt: nowS, revisionId: revision.id },
      });
      const failedEntry = s.wharf.history.find((h) => h.id === historyId);
      s.wharf.history = [
        ...s.wharf.history,
        {
          id: rollback.id,
          status: 'IN_PROGRESS',
          statusReason: rolloutReason.rollingBack(target.deploymentId),
          targetRevisionId: revision.id,
          sourceRevisionIds: failedEntry ? [failedEntry.targetRevisionId] : [],
          deploymentConfiguration: s.deploymentConfiguration,
          createdAt: nowS,
          startedAt: nowS,
          updatedAt: nowS,
          circuitBreakerThreshold: threshold,
        },
      ];
      events.push(serviceEventText.rollingBack(name, failedId));
    } else {
      deployments = [primary, ...deployments.slice(1)];
      if (primary.rollbackOf) {
        s.wharf.history = patchHistory(s.wharf.history, failedId, { status: 'STOPPED', statusReason: rolloutReason.circuitBreakerFailed(), updatedAt: nowS, stoppedAt: nowS, finishedAt: nowS });
      }
      s.wharf.history = patchHistory(s.wharf.history, historyId, {
        status: primary.rollbackOf ? 'ROLLBACK_FAILED' : 'STOPPED',
        statusReason: rolloutReason.circuitBreakerFailed(),
        updatedAt: nowS,
        failedTasks,
        stoppedAt: nowS,
        finishedAt: nowS,
      });
      events.push(serviceEventText.deploymentFailed(name, failedId));
    }
  }

  // 3. What to start and stop.
  const live = input.tasks.filter(isLive).map((t) => judge(t, instances, now, grace, o));
  const present = input.tasks.filter((t) => isPresent(t, instances));
  const plan: ServicePlan = { place: [], placeOn: [], stop: [], service: s, changed: false };
  let converged: boolean;
  let stalled: boolean;
  let desired: number;
  let wakeAt: number | undefined;
  if (s.schedulingStrategy === 'DAEMON') {
    if (!Array.isArray(input.instances)) throw new Error('a DAEMON plan needs the list of the cluster’s instances');
    const a = daemonActions(s, primary, live, present, input.instances as readonly InstanceView[], now);
    plan.placeOn = a.placeOn.map((instanceId) => ({ deploymentId: primary.id, instanceId }));
    plan.stop = [...a.stop].map(([taskId, reason]) => ({ taskId, reason }));
    ({ converged, stalled, desired, wakeAt } = a);
    if (s.status === 'ACTIVE') s.desiredCount = desired;
  } else {
    const a = replicaActions(s, primary, live, now, input.chooseSurplus ?? newestFirst);
    if (a.start > 0) plan.place.push({ deploymentId: primary.id, count: a.start });
    plan.stop = [...a.stop].map(([taskId, reason]) => ({ taskId, reason }));
    ({ converged, stalled, desired, wakeAt } = a);
  }
  // A task replaced because a load balancer found it unhealthy says so, as ECS does.
  const judgedById = new Map(live.map((j) => [j.task.id, j]));
  for (const x of plan.stop) {
    const bad = judgedById.get(x.taskId)?.failedTarget;
    if (bad) events.push(serviceEventText.unhealthyTarget(name, bad.label, bad.port, bad.targetGroupArn, bad.description || 'Health checks failed'));
  }
  if (stalled) events.push(serviceEventText.stalledByConfiguration(name));
  if (primary.throttledUntil !== undefined && primary.throttledUntil > now && (orig.wharf.deployments[0]?.throttledUntil ?? 0) <= now) {
    events.push(serviceEventText.unableToConsistentlyStart(name));
  }

  // 4. Deployment bookkeeping: counts, removal of drained ones, completion.
  const stopping = new Set(plan.stop.map((x) => x.taskId));
  const stillThere = (d: ServiceDeploymentRecord) => present.some((t) => t.deploymentId === d.id);
  const liveIn = (id: string) => live.filter((j) => j.task.deploymentId === id && !stopping.has(j.task.id)).length;
  deployments = deployments.map((d, i) => {
    const want = i === 0 ? desired : liveIn(d.id);
    return d.desiredCount === want ? d : { ...d, desiredCount: want, updatedAt: nowS };
  });
  deployments = [deployments[0]!, ...deployments.slice(1).filter(stillThere)];
  primary = deployments[0]!;
  const settled = converged && deployments.length === 1 && plan.place.length + plan.placeOn.length + plan.stop.length === 0;
  if (settled && primary.rolloutState === 'IN_PROGRESS' && s.status === 'ACTIVE') {
    primary = { ...primary, rolloutState: 'COMPLETED', rolloutStateReason: rolloutReason.completed(primary.id), updatedAt: nowS };
    deployments[0] = primary;
    s.wharf.lastCompleted = { deploymentId: primary.id, revisionId: primary.revisionId };
    if (primary.rollbackOf) {
      s.wharf.history = patchHistory(s.wharf.history, primary.rollbackOf, { status: 'ROLLBACK_SUCCESSFUL', updatedAt: nowS, finishedAt: nowS });
    }
    s.wharf.history = patchHistory(s.wharf.history, primary.id, { status: 'SUCCESSFUL', statusReason: rolloutReason.completed(primary.id), updatedAt: nowS, finishedAt: nowS });
    events.push(serviceEventText.deploymentCompleted(name, primary.id));
  }
  const steady = settled && s.status === 'ACTIVE' && present.length === desired;
  if (steady && !s.wharf.steady) events.push(serviceEventText.steadyState(name));
  s.wharf.steady = steady;
  s.wharf.deployments = deployments;

  // 5. A deleted service becomes INACTIVE once nothing of it is left running.
  if (s.status === 'DRAINING' && plan.stop.length === 0 && present.every((t) => t.desiredStatus === 'STOPPED')) {
    s.status = 'INACTIVE';
    s.tags = [];
  }

  s.events = addServiceEvents(s.events, events, nowS, o.newEventId);
  plan.changed = JSON.stringify(s) !== JSON.stringify(orig);
  plan.service = plan.changed ? s : orig;
  if (wakeAt !== undefined && Number.isFinite(wakeAt)) plan.wakeAt = wakeAt;
  return plan;
}
