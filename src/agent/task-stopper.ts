/**
 * The stop half of a TaskRunner, the counterpart of task-starter.ts: on each pass while the task
 * is desired STOPPED, `advanceStop` stops every container that nothing still running depends on
 * (so dependents go first and the awsvpc pause container last), and `removeTask` takes away what
 * a STOPPED task left on the host once its cleanup wait is over.
 *
 * Like the starter it works through the runner's StopHost and changes only ContainerRun records;
 * the task status it leads to is the runner's to derive.
 */
import type { AgentTask } from '../api/agent/protocol';
import type { Logger } from '../lib/logger';
import type { ContainerRuntime } from './runtime/container-runtime';
import type { ContainerRun } from './container-run';
import { dependentsOf } from './container-dependencies';
import { removeTaskVolumes } from './task-volumes';
import { removeUnusedTaskNetworks } from './task-resources';

/** What the stop half may read and do on its runner. */
export interface StopHost {
  readonly task: AgentTask;
  readonly taskArn: string;
  readonly taskId: string;
  readonly containers: readonly ContainerRun[];
  readonly networkMode: string;
  /** The task's parent cgroup (its id, or the pool's when its pause container came from there). */
  readonly cgroupId: string;
  readonly options: { runtime: ContainerRuntime; logger?: Logger; defaultStopTimeoutSec: number };
  markStopped(c: ContainerRun, exitCode: number | undefined, reason: string | undefined): void;
  /** Run another pass (a stop the engine finished or refused). */
  kick(): void;
}

/** Issues the stops this pass allows; each one that ends, or fails (to be retried), wakes the runner. */
export async function advanceStop(h: StopHost): Promise<void> {
  const { runtime, logger, defaultStopTimeoutSec } = h.options;
  // A container may stop once nothing still running depends on it; the pause container last.
  for (const c of h.containers) {
    if (c.known === 'STOPPED') continue;
    if (!c.dockerId || !c.everStarted) {
      // Never ran: nothing to stop.
      h.markStopped(c, undefined, c.reason);
      continue;
    }
    if (c.stopIssued) continue;
    if (dependentsOf(c, h.containers).some((x) => x.known !== 'STOPPED')) continue;
    c.stopIssued = true;
    const timeoutSec = c.def.stopTimeout ?? defaultStopTimeoutSec;
    const id = c.dockerId;
    void runtime
      .stopContainer(id, { timeoutSec })
      .catch((err) => {
        logger?.warn({ taskArn: h.taskArn, container: c.name, err }, 'stop failed; will retry');
        c.stopIssued = false;
      })
      .finally(() => h.kick());
  }
}

/** Removes a stopped task's containers, task-scoped volumes and cgroup. */
export async function removeTask(h: StopHost): Promise<void> {
  const { runtime } = h.options;
  for (const c of [...h.containers].reverse()) if (c.dockerId) await runtime.removeContainer(c.dockerId);
  await removeTaskVolumes(runtime, h.task, h.taskId);
  await runtime.removeTaskCgroup(h.cgroupId);
  // Its subnet network goes with the last task on it (the engine's events usually did this
  // already; this does not depend on them).
  if (h.networkMode === 'awsvpc') await removeUnusedTaskNetworks(runtime);
}
