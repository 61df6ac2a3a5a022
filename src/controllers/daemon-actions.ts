/**
 * The DAEMON step of a service reconcile, pure (ECS-REFERENCE 6.11): exactly one task of the
 * PRIMARY deployment on every ACTIVE, connected instance that satisfies the service's
 * constraints; desiredCount is the number of such instances.
 *
 *   instance ACTIVE, eligible, connected  -> one PRIMARY task: start it once the instance holds
 *                                            no other task of the service (or max% allows more)
 *   instance DRAINING / INACTIVE / gone   -> its daemon task stops, nothing replaces it
 *   instance no longer meets constraints  -> its daemon task stops
 *   instance ACTIVE but agent disconnected -> left alone: nothing can be started or stopped there
 *
 * Replacing an older deployment's task honours minimumHealthyPercent (default 0: stop first,
 * then start), across the eligible instances.
 */
import { deploymentBounds } from '../core/service-math';
import type { ServiceDeploymentRecord, ServiceRecord } from '../core/resources';
import type { StepActions } from './service-actions';
import { HEALTH_CHECK_STOP_REASON, scalingReason, type InstanceView, type Judged, type ServiceTaskView } from './service-task-view';

export interface DaemonActions extends Omit<StepActions, 'start'> {
  placeOn: string[];
}

export function daemonActions(
  s: ServiceRecord,
  primary: ServiceDeploymentRecord,
  live: readonly Judged[],
  present: readonly ServiceTaskView[],
  instances: readonly InstanceView[],
  now: number,
): DaemonActions {
  const deleting = s.status !== 'ACTIVE';
  const eligible = instances.filter((i) => i.status === 'ACTIVE' && i.agentConnected && i.eligible === true);
  const eligibleIds = new Set(eligible.map((i) => i.id));
  const byId = new Map(instances.map((i) => [i.id, i]));
  const desired = deleting ? 0 : eligible.length;
  const { minHealthy: L, maxRunning: U } = deploymentBounds(desired, s.deploymentConfiguration.minimumHealthyPercent!, s.deploymentConfiguration.maximumPercent!);
  const pFailed = primary.rolloutState === 'FAILED';
  const throttled = (primary.throttledUntil ?? 0) > now;
  const stop = new Map<string, string>();
  const scaling = scalingReason(primary.id);
  const stopOne = (j: Judged) => stop.set(j.task.id, j.failedHealth ? (j.healthReason ?? HEALTH_CHECK_STOP_REASON) : scaling);
  const placeOn: string[] = [];
  let wakeAt: number | undefined;
  for (const j of live) if (j.changesAt !== undefined) wakeAt = Math.min(wakeAt ?? Infinity, j.changesAt);

  const liveOn = new Map<string, Judged[]>();
  for (const j of live) {
    const id = j.task.instanceId ?? '';
    if (deleting) {
      stopOne(j);
      continue;
    }
    if (!eligibleIds.has(id)) {
      const inst = byId.get(id);
      const disconnectedButActive = inst && inst.status === 'ACTIVE' && !inst.agentConnected;
      if (!disconnectedButActive) stopOne(j);
      continue;
    }
    let l = liveOn.get(id);
    if (!l) liveOn.set(id, (l = []));
    l.push(j);
  }
  const presentOn = new Map<string, number>();
  for (const t of present) if (t.instanceId) presentOn.set(t.instanceId, (presentOn.get(t.instanceId) ?? 0) + 1);

  let liveCount = [...liveOn.values()].reduce((n, l) => n + l.length, 0);
  let budget = [...liveOn.values()].flat().filter((j) => j.healthy).length - L;
  let converged = !deleting && stop.size === 0;
  let stalled = false;
  for (const inst of deleting ? [] : eligible) {
    const here = liveOn.get(inst.id) ?? [];
    const mine = here
      .filter((j) => j.task.deploymentId === primary.id && !j.failedHealth)
      .sort((a, b) => Number(b.healthy) - Number(a.healthy) || a.task.createdAt - b.task.createdAt);
    const keep = mine[0];
    for (const j of mine.slice(1)) stopOne(j);
    const others = here.filter((j) => j !== keep && !mine.includes(j));
    for (const j of others) {
      if (!j.healthy || keep?.healthy) stopOne(j);
      else if (budget > 0) {
        stopOne(j);
        budget--;
      }
    }
    if (!keep || !keep.healthy || here.length > 1) converged = false;
    if (keep || pFailed) continue;
    if (throttled) {
      wakeAt = Math.min(wakeAt ?? Infinity, primary.throttledUntil!);
      continue;
    }
    const occupied = (presentOn.get(inst.id) ?? 0) > 0;
    if (!occupied || liveCount < U) {
      placeOn.push(inst.id);
      liveCount++;
    } else if (others.every((j) => !stop.has(j.task.id)) && others.length > 0 && !others.some((j) => !j.healthy)) {
      stalled = true;
    }
  }
  if (placeOn.length > 0 || stop.size > 0) converged = false;
  return { placeOn, stop, stalled, converged, wakeAt, desired };
}
