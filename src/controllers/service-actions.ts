/**
 * The REPLICA step of a service reconcile, pure: given the judged live tasks, how many tasks the
 * PRIMARY deployment starts and which tasks stop, inside the rolling-update bounds
 * (ECS-REFERENCE 6.4):
 *
 *   L = ceil(desired x min%)  tasks RUNNING and healthy must remain, across all deployments
 *   U = floor(desired x max%) tasks RUNNING or PENDING at most, across all deployments
 *
 * One step:
 *   1. start  min(desired - good PRIMARY tasks, U - live tasks)  new PRIMARY tasks
 *   2. stop   every task that must go and is not healthy (old deployments' pending tasks, tasks
 *             on lost instances): they do not count toward L anyway; an old deployment's task
 *             RUNNING and still settling (not healthy yet, not failing) is kept until it is one
 *             or the other
 *   3. stop   PRIMARY tasks failing their health checks, then healthy tasks that must go (older
 *             deployments first, then tasks on DRAINING instances, then PRIMARY surplus) while
 *             healthy + failing - stopped >= L: a failing task is replaced start-first and goes
 *             once its replacement is healthy (ECS: "start replacement tasks first and maintain
 *             minimumHealthyPercent tasks until the replacement tasks become healthy"); when
 *             maximumPercent leaves no room to start one, failing tasks go one at a time
 * A task with scale-in protection (UpdateTaskProtection) is skipped by 2 and 3 unless it must go
 * anyway: scale-in and deployments wait for its protection to end (judge() wakes the loop then).
 * and the next step runs when tasks change or a task becomes healthy by time.
 *
 * Worked example, desired 4, min 50%, max 100% (L 2, U 4), 4 old healthy tasks:
 *   step 1: start min(4, 4 - 4) = 0; stop 4 - 2 = 2 old           -> 2 old live
 *   step 2: start min(4, 4 - 2) = 2; stop nothing (healthy 2 = L)  -> 2 old + 2 new pending
 *   step 3 (new ones healthy): healthy 4, stop 2 old; then start 2 -> 4 new; COMPLETED
 */
import { deploymentBounds } from '../core/service-math';
import type { ServiceDeploymentRecord, ServiceRecord } from '../core/resources';
import { HEALTH_CHECK_STOP_REASON, lostInstanceStopReason, scalingReason, type Judged, type ServiceTaskView } from './service-task-view';

export interface StepActions {
  start: number;
  stop: Map<string, string>;
  /** The step cannot make progress because of minimumHealthyPercent / maximumPercent. */
  stalled: boolean;
  /** The PRIMARY deployment holds exactly desiredCount healthy tasks and nothing else is live. */
  converged: boolean;
  /** Epoch ms when something changes by time alone. */
  wakeAt?: number;
  desired: number;
}

export type ChooseSurplus = (candidates: readonly ServiceTaskView[], count: number) => string[];

/** Without the scheduler's choice: tasks not yet healthy first, then the newest. */
export const newestFirst: ChooseSurplus = (c, n) => [...c].sort((a, b) => b.createdAt - a.createdAt).slice(0, n).map((t) => t.id);

export function replicaActions(
  s: ServiceRecord,
  primary: ServiceDeploymentRecord,
  live: readonly Judged[],
  now: number,
  chooseSurplus: ChooseSurplus,
): StepActions {
  const deleting = s.status !== 'ACTIVE';
  const desired = deleting ? 0 : s.desiredCount;
  const { minHealthy: L, maxRunning: U } = deploymentBounds(desired, s.deploymentConfiguration.minimumHealthyPercent!, s.deploymentConfiguration.maximumPercent!);
  const pFailed = primary.rolloutState === 'FAILED';
  const throttled = (primary.throttledUntil ?? 0) > now;
  const inP = (j: Judged) => j.task.deploymentId === primary.id;
  const pGood = live.filter((j) => inP(j) && !j.mustGo);
  const pBad = live.filter((j) => inP(j) && j.mustGo);
  const old = live.filter((j) => !inP(j));
  const stop = new Map<string, string>();
  const scaling = scalingReason(primary.id);
  const stopOne = (j: Judged) =>
    stop.set(j.task.id, j.failedHealth ? (j.healthReason ?? HEALTH_CHECK_STOP_REASON) : j.placement === 'lost' ? lostInstanceStopReason(j.task.instanceId) : scaling);
  let wakeAt: number | undefined;
  for (const j of live) if (j.changesAt !== undefined) wakeAt = Math.min(wakeAt ?? Infinity, j.changesAt);

  if (deleting) {
    for (const j of live) stopOne(j);
    return { start: 0, stop, stalled: false, converged: false, wakeAt, desired };
  }

  const need = Math.max(0, desired - pGood.length);
  const canStart = Math.max(0, U - live.length);
  const start = pFailed || throttled ? 0 : Math.min(need, canStart);
  if (throttled && need > 0) wakeAt = Math.min(wakeAt ?? Infinity, primary.throttledUntil!);

  // Scale-in protection: a protected task is neither scaled in nor replaced by a deployment; one
  // that must go anyway (failed health, lost or draining instance) still goes.
  const replaceable = (j: Judged) => !j.protected || j.mustGo;
  // A PRIMARY task failing its health checks (container or load balancer) is replaced start-first:
  // it keeps counting toward L until replacements are healthy, then goes from the budget below.
  const failing = (j: Judged) => inP(j) && j.failedHealth && j.placement === 'ok';
  // A task RUNNING but not healthy yet (its first 40 s, or its health checks still settling) of an
  // older deployment or on a DRAINING instance stays: it is not failing, and stopping it at once
  // would take the service below minimumHealthyPercent (or to no running task at all when the new
  // deployment cannot place its own). It goes through the budget below once healthy (the draining
  // doc: "the scheduler can't remove existing tasks until the replacement tasks are considered
  // healthy"), or here once it fails. Tasks on lost instances go at once.
  const settling = (j: Judged) => j.task.lastStatus === 'RUNNING' && j.placement !== 'lost' && !j.failedHealth;
  for (const j of pBad) if (!j.healthy && !failing(j) && !settling(j)) stopOne(j);
  if (!pFailed) for (const j of old) if (!j.healthy && !settling(j) && replaceable(j)) stopOne(j);

  const surplusCount = Math.max(0, pGood.length - desired);
  const unprotected = pGood.filter((j) => !j.protected).map((j) => j.task);
  const surplus = new Set(surplusCount > 0 && unprotected.length > 0 ? chooseSurplus(unprotected, Math.min(surplusCount, unprotected.length)) : []);
  const pSurplus = pGood.filter((j) => surplus.has(j.task.id));
  for (const j of pSurplus) if (!j.healthy) stopOne(j);

  let budget = live.filter((j) => j.healthy || failing(j)).length - L;
  // Older deployments first: the deployment list is newest first, unknown ids are the oldest.
  const age = new Map(s.wharf.deployments.map((d, i) => [d.id, i]));
  const rank = (j: Judged) => age.get(j.task.deploymentId ?? '') ?? Number.MAX_SAFE_INTEGER;
  const healthyCandidates = [
    ...pBad.filter(failing),
    ...(pFailed ? [] : old.filter((j) => j.healthy && replaceable(j)).sort((a, b) => rank(b) - rank(a) || a.task.createdAt - b.task.createdAt)),
    ...pBad.filter((j) => j.healthy),
    ...pSurplus.filter((j) => j.healthy),
  ];
  for (const j of healthyCandidates) {
    if (budget <= 0) break;
    stopOne(j);
    budget--;
  }
  // No room to start a replacement (maximumPercent) and none warming up: failing tasks go one
  // at a time to make room, even below L (ECS: "stops the unhealthy tasks one-by-one").
  const failingLeft = pBad.filter((j) => failing(j) && !stop.has(j.task.id));
  const warming = live.some((j) => !j.healthy && !j.mustGo);
  if (failingLeft.length > 0 && start === 0 && canStart === 0 && !warming && ![...stop.keys()].some((id) => pBad.some((j) => failing(j) && j.task.id === id))) {
    stopOne(failingLeft[0]!);
  }

  const workLeft = need > 0 || old.length > 0 || pBad.length > 0 || surplusCount > 0;
  const warmingUp = live.some((j) => !j.healthy && !j.mustGo);
  // Waiting for protected tasks is not the deployment configuration's fault: no stall event.
  const waitingForProtection = live.some((j) => j.protected && !j.mustGo && (!inP(j) || pSurplus.length < surplusCount));
  const stalled = workLeft && start === 0 && stop.size === 0 && !throttled && !pFailed && !warmingUp && canStart === 0 && !waitingForProtection;
  const converged = !workLeft && pGood.length === desired && pGood.every((j) => j.healthy);
  return { start, stop, stalled, converged, wakeAt, desired };
}
