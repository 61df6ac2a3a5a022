/** Requesting a task's stop (StopTask, the service scheduler, Spot interruptions). */
import { invalidParameter } from '../core/errors';
import type { TaskRecord } from '../core/resources';
import { isTerminal } from '../core/task-status';
import { epochSeconds } from '../lib';
import { StoreConflictError } from '../store/store';
import { committed, type ControlContext } from './context';
import { deactivation } from './task-drain';
import { taskKey } from './task-records';

/**
 * Marks a task desired STOPPED with a reason, once (desiredStatus never moves back). A task that
 * was never placed has nothing to stop and goes straight to STOPPED. A RUNNING task an ECS service
 * registered in load balancer target groups goes DEACTIVATING instead: deregistered now, told to
 * stop once drained (task-drain.ts). Returns the task as stored.
 */
export async function requestStop(
  ctx: ControlContext,
  clusterName: string,
  taskId: string,
  why: { stopCode: string; reason: string },
): Promise<TaskRecord> {
  for (let attempt = 0; ; attempt++) {
    const e = ctx.state.tasks.get(clusterName, taskId);
    if (!e) throw invalidParameter('The referenced task was not found.');
    const t = e.value;
    // DEACTIVATING: its stop is already under way (the targets drain first).
    if (t.desiredStatus === 'STOPPED' || isTerminal(t.lastStatus) || t.lastStatus === 'DEACTIVATING') return t;
    const drain = deactivation(ctx, t, why);
    if (drain) {
      try {
        await committed(ctx, await ctx.store.txn([{ op: 'update', key: taskKey(t), value: drain.task, expectedRevision: e.modRevision }, ...drain.ops]));
        return drain.task;
      } catch (err) {
        if (!(err instanceof StoreConflictError) || attempt >= 50) throw err;
        await committed(ctx, await ctx.store.revision());
        continue;
      }
    }
    const now = epochSeconds(ctx.clock.now());
    const next: TaskRecord = {
      ...t,
      desiredStatus: 'STOPPED',
      stopCode: why.stopCode as TaskRecord['stopCode'],
      stoppedReason: why.reason,
      stoppingAt: now,
      version: t.version + 1,
    };
    try {
      const rev = await ctx.store.update(taskKey(t), next, e.modRevision);
      await committed(ctx, rev);
      return next;
    } catch (err) {
      if (!(err instanceof StoreConflictError) || attempt >= 50) throw err;
      await committed(ctx, await ctx.store.revision());
    }
  }
}
