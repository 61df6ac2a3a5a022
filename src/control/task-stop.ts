/** Requesting a task's stop (StopTask, the service scheduler, Spot interruptions). */
import { invalidParameter } from '../core/errors';
import type { TaskRecord } from '../core/resources';
import { isTerminal } from '../core/task-status';
import { epochSeconds } from '../lib';
import { StoreConflictError } from '../store/store';
import { committed, type ControlContext } from './context';
import { taskKey } from './task-records';

/**
 * Marks a task desired STOPPED with a reason, once (desiredStatus never moves back). A task that
 * was never placed has nothing to stop and goes straight to STOPPED. Returns the task as stored.
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
    if (t.desiredStatus === 'STOPPED' || isTerminal(t.lastStatus)) return t;
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
