/**
 * Tasks that wait for capacity, as ECS has them for Auto Scaling group capacity providers with
 * managed scaling: a RunTask task that no instance of the provider's group can take is created
 * unplaced, lastStatus PROVISIONING (no containerInstanceArn), and placed once an instance can
 * take it (CapacityProviderController retries on every pass and whenever an instance changes),
 * through the one placement path (`placeTasks` updating the waiting record). Managed scaling
 * counts such tasks. StopTask on a waiting task stops it at once: nothing runs yet.
 */
import { isFargateProvider } from '../core/capacity-provider-strategy';
import type { TaskRecord } from '../core/resources';
import { resolveResourceNeeds } from '../core/task-definition-resources';
import { STOPPED_TASK_RETENTION_MS } from '../core/task-status';
import { epochSeconds } from '../lib';
import { StoreConflictError } from '../store/store';
import { activeProvider, providerPlacement } from './capacity-providers';
import { committed, type ControlContext } from './context';
import { placeTasks } from './placement';
import { findTaskDefinition } from './task-definitions';
import { taskKey } from './task-records';

/** Whether tasks of this provider wait in PROVISIONING when its group has no room. */
export function waitsForCapacity(ctx: ControlContext, provider: string | undefined): boolean {
  if (!provider || isFargateProvider(provider)) return false;
  return activeProvider(ctx, provider)?.autoScalingGroupProvider.managedScaling?.status === 'ENABLED';
}

/** Whether a task is one waiting unplaced for capacity. */
export function isWaiting(t: TaskRecord): boolean {
  return t.wharf.waiting !== undefined && t.wharf.instanceId === undefined && t.lastStatus === 'PROVISIONING';
}

/** A new task record made to wait: PROVISIONING, unplaced, with its request's placement rules. */
export function asWaiting(t: TaskRecord, waiting: NonNullable<TaskRecord['wharf']['waiting']>): TaskRecord {
  return { ...t, lastStatus: 'PROVISIONING', wharf: { ...t.wharf, waiting } };
}

/**
 * Places a waiting task if an instance of its group can take it, or stops it when it is no
 * longer wanted. Returns whether it left the waiting state. Conflicts are left to the next try.
 */
export async function settleWaitingTask(ctx: ControlContext, taskCluster: string, taskId: string): Promise<boolean> {
  const e = ctx.state.tasks.get(taskCluster, taskId);
  if (!e || !isWaiting(e.value)) return false;
  const t = e.value;
  try {
    if (t.desiredStatus === 'STOPPED') {
      const now = ctx.clock.now();
      const nowS = epochSeconds(now);
      const stopped: TaskRecord = {
        ...t,
        lastStatus: 'STOPPED',
        stoppingAt: t.stoppingAt ?? nowS,
        stoppedAt: nowS,
        executionStoppedAt: nowS,
        containers: (t.containers ?? []).map((c) => ({ ...c, lastStatus: 'STOPPED' })),
        version: t.version + 1,
        wharf: { ...t.wharf, waiting: undefined, released: true, expiresAt: now + STOPPED_TASK_RETENTION_MS },
      };
      await committed(ctx, await ctx.store.update(taskKey(t), stopped, e.modRevision));
      return true;
    }
    const td = findTaskDefinition(ctx, t.taskDefinitionArn!);
    if (!td || !t.capacityProviderName) return false;
    const needs = resolveResourceNeeds(td, t.overrides);
    const where = providerPlacement(t.capacityProviderName);
    const awsvpc = (t.attachments ?? []).some((a) => a.type === 'ElasticNetworkInterface');
    const placed = await placeTasks(ctx, {
      cluster: taskCluster,
      capacity: where.capacity,
      needs,
      count: 1,
      group: t.group ?? `family:${td.family}`,
      constraints: t.wharf.waiting!.constraints,
      strategies: t.wharf.waiting!.strategies,
      requiredAttributes: [...(td.requiresAttributes ?? []).map((a) => ({ name: a.name, value: a.value })), ...where.requiredAttributes],
      makeTask: () => ({ ...t, lastStatus: awsvpc ? 'PROVISIONING' : 'PENDING', version: t.version + 1, wharf: { ...t.wharf, waiting: undefined } }),
      existingRevision: () => e.modRevision,
    });
    return placed.tasks.length > 0;
  } catch (err) {
    if (err instanceof StoreConflictError) return false;
    throw err;
  }
}
