/**
 * What a TaskRunner writes down of its task in the agent's data dir (kept beside the task by
 * agent-state-store.ts), and how the runner of the next run of the agent reads it back
 * (TaskRunner.adopt): which containers it created, which stopped and how, and whether the task
 * is being stopped. With it a restarted agent tells a container removed behind its back (reported
 * stopped, never made again) from one it never created (made now).
 */
import type { ContainerRun } from './container-run';
import { markStopped } from './container-run';
import { VANISHED_REASON } from './task-status';

/** How a container the agent holds STOPPED ended, as it was reported. */
export interface StoppedContainer {
  exitCode?: number;
  reason?: string;
  /** Epoch ms. */
  finishedAt?: number;
  everStarted?: boolean;
  failedToStart?: boolean;
}

/** One container of a task as its runner last wrote it down (by container name). */
export interface ContainerProgress {
  /** Set once the engine has created it, and written before it is started. */
  dockerId?: string;
  dockerName?: string;
  /** It is STOPPED (created or not): it never runs again. */
  stopped?: StoppedContainer;
}

/**
 * What a task's runner has done on this host. Tasks accepted by an agent that kept none have none
 * (`undefined`): their containers are adopted by label only, as before.
 */
export interface TaskProgress {
  containers: Record<string, ContainerProgress>;
  /** The task is desired STOPPED; the agent's own stop code and reason, when it stopped it. */
  stopping?: { stopCode?: string; reason?: string };
  /** The task's parent cgroup when it is not the task's id (its pause container came from the pool). */
  cgroupId?: string;
}

/** The runner's state as it is written down. */
export function progressOf(r: {
  containers: readonly ContainerRun[];
  desired: 'RUNNING' | 'STOPPED';
  stopCode?: string;
  stoppedReason?: string;
  cgroupId: string;
  taskId: string;
}): TaskProgress {
  const p: TaskProgress = { containers: {} };
  for (const c of r.containers) {
    if (!c.dockerId && c.known !== 'STOPPED') continue;
    p.containers[c.name] = {
      dockerId: c.dockerId,
      dockerName: c.dockerId ? c.dockerName : undefined,
      stopped: c.known === 'STOPPED' ? { exitCode: c.exitCode, reason: c.reason, finishedAt: c.finishedAt, everStarted: c.everStarted, failedToStart: c.failedToStart } : undefined,
    };
  }
  if (r.desired === 'STOPPED') p.stopping = { stopCode: r.stopCode, reason: r.stoppedReason };
  if (r.cgroupId !== r.taskId) p.cgroupId = r.cgroupId;
  return p;
}

/** A container written down as STOPPED by an earlier run of the agent: it stays as it was reported. */
export function restoreStopped(c: ContainerRun, s: StoppedContainer): void {
  c.known = 'STOPPED';
  c.exitCode = s.exitCode;
  c.reason = s.reason;
  c.finishedAt = s.finishedAt;
  c.everStarted = s.everStarted ?? c.dockerId !== undefined;
  c.failedToStart = s.failedToStart ?? false;
  c.bindings = [];
}

/**
 * The containers written down that the engine did not give back (none of `containers` adopted
 * has a docker id): one written down STOPPED is restored so; one written down as created is gone
 * (ContainerVanishedError) and STOPPED. Returns the vanished ones, and whether any of them had
 * been created (the task is then an adopted one, whose early statuses are not replayed).
 */
export function restoreUnadopted(containers: readonly ContainerRun[], restored: TaskProgress, now: number): { vanished: ContainerRun[]; created: boolean } {
  const vanished: ContainerRun[] = [];
  let created = false;
  for (const c of containers) {
    const record = restored.containers[c.name];
    if (!record || c.dockerId) continue;
    c.dockerId = record.dockerId;
    if (record.dockerName) c.dockerName = record.dockerName;
    if (record.dockerId) created = true;
    if (record.stopped) {
      restoreStopped(c, record.stopped);
    } else if (record.dockerId) {
      markStopped(c, undefined, VANISHED_REASON, now);
      vanished.push(c);
    }
  }
  return { vanished, created };
}
