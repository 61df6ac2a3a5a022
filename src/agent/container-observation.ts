/**
 * The observing half of a TaskRunner's pass: re-read every created container of the task from the
 * engine and bring each ContainerRun up to date (running, health, bindings, the pause
 * container's address, exits), answering an exit with the container's restart policy where it
 * asks for one. It decides nothing about the task: an essential container found STOPPED is the
 * runner's to act on after this returns.
 *
 * It is handed the runner's ObserveHost and changes only the ContainerRun records, plus the task
 * address through `observedAddress`, so the runner stays the only writer of the task's status.
 */
import type { Clock } from '../lib/clock';
import type { Logger } from '../lib/logger';
import type { ContainerRuntime } from './runtime/container-runtime';
import { bindFromPause, bindingsOf, markStopped, restartWanted, type ContainerRun, type ObservedExit } from './container-run';
import { OOM_REASON } from './task-status';

/** What observing may read and do on its runner. */
export interface ObserveHost {
  readonly taskArn: string;
  readonly containers: readonly ContainerRun[];
  readonly networkMode: string;
  readonly desired: 'RUNNING' | 'STOPPED';
  readonly options: { runtime: ContainerRuntime; clock: Clock; logger?: Logger };
  /** The awsvpc pause container's address as the engine reports it; undefined keeps the one known. */
  observedAddress(ip: string | undefined, mac: string | undefined): void;
  /** Go on shipping a restarted container's output (awslogs). */
  followLogs(c: ContainerRun): void;
  /** Make sure a container held STOPPED does not run (see stopFor). */
  keepStopped(c: ContainerRun): void;
}

interface Exit {
  c: ContainerRun;
  exit: ObservedExit;
  reason?: string;
}

/**
 * Re-reads every created container from the engine. Exits of containers that had been running
 * are collected first and settled together, so that the restart policy is decided against the
 * whole pass (see settleExits).
 */
export async function observeContainers(h: ObserveHost): Promise<void> {
  const { runtime, clock } = h.options;
  const exits: Exit[] = [];
  await Promise.all(
    h.containers.map(async (c) => {
      if (!c.dockerId || c.known === 'STOPPED') return;
      const st = await runtime.inspectContainer(c.dockerId);
      if (!st) {
        markStopped(c, undefined, 'CannotInspectContainerError: container no longer exists', clock.now());
        return;
      }
      if (st.startedAt !== undefined || st.running) c.everStarted = true;
      c.engine = { createdAt: st.createdAt, startedAt: st.startedAt, imageId: st.imageId, ipAddresses: st.ipAddresses };
      c.health = !c.def.healthCheck || !st.health ? 'UNKNOWN' : st.health === 'healthy' ? 'HEALTHY' : st.health === 'unhealthy' ? 'UNHEALTHY' : 'UNKNOWN';
      if (st.running) {
        c.known = 'RUNNING';
        c.bindings = bindingsOf(c, st.ports, h.networkMode);
        if (c.internal && h.networkMode === 'awsvpc') {
          h.observedAddress(Object.values(st.ipAddresses)[0], Object.values(st.macAddresses ?? {})[0]);
        }
      } else if (st.status === 'exited' || st.status === 'dead') {
        const reason = st.oomKilled ? OOM_REASON : st.error ? `CannotStartContainerError: ${st.error}` : undefined;
        if (!c.everStarted) {
          c.failedToStart = true;
          c.finishedAt = st.finishedAt;
          markStopped(c, st.exitCode, reason, clock.now());
          return;
        }
        exits.push({ c, exit: { exitCode: st.exitCode, startedAt: st.startedAt, finishedAt: st.finishedAt }, reason });
      }
    }),
  );
  bindFromPause(h.containers, h.networkMode);
  await settleExits(h, exits);
}

/**
 * Each exit either restarts the same container (its restart policy says so, the task is still
 * desired RUNNING and the agent did not stop it) or is handled as any exit: the container is
 * STOPPED, and an essential one then takes the task down in the runner's step(). A restart is not
 * taken when an essential container stopped for good in the same pass: the task is going down anyway.
 */
async function settleExits(h: ObserveHost, exits: Exit[]): Promise<void> {
  const now = h.options.clock.now();
  const restarts: Exit[] = [];
  for (const x of exits) {
    if (h.desired === 'RUNNING' && !x.c.stopIssued && restartWanted(x.c, x.exit, now)) restarts.push(x);
    else stopFor(h, x);
  }
  const taskEnding = h.containers.some((c) => c.essential && c.known === 'STOPPED');
  for (const x of restarts) {
    if (taskEnding || h.desired !== 'RUNNING') stopFor(h, x);
    else await restart(h, x);
  }
}

/**
 * The container is STOPPED for good. Unless the runner stopped it, a stop goes to the engine too:
 * a no-op for an exited container, but `docker restart` exits and starts a container again in one
 * go, and its start can come between the exit and this look at it, which then saw only the exit.
 * (A start that comes later is the Agent's to undo: TaskRunner.containerStarted.)
 */
function stopFor(h: ObserveHost, x: Exit): void {
  x.c.finishedAt = x.exit.finishedAt;
  markStopped(x.c, x.exit.exitCode, x.reason, h.options.clock.now());
  if (!x.c.stopIssued) h.keepStopped(x.c);
}

/**
 * Starts the exited container again (docker start on the same container: same id, name,
 * filesystem and task). It stays RUNNING throughout, so the task is not stopped; only its
 * bindings are re-read, since ephemeral host ports are allocated anew on each start.
 */
async function restart(h: ObserveHost, x: Exit): Promise<void> {
  const { runtime, clock, logger } = h.options;
  const c = x.c;
  try {
    await runtime.startContainer(c.dockerId!);
  } catch (err) {
    logger?.warn({ taskArn: h.taskArn, container: c.name, err }, 'restart by restart policy failed');
    c.reason ??= x.reason ?? `CannotStartContainerError: restart failed: ${(err as Error).message}`.slice(0, 1024);
    stopFor(h, x);
    return;
  }
  c.restartCount++;
  c.lastStartAt = clock.now();
  c.known = 'RUNNING';
  h.followLogs(c);
  logger?.info({ taskArn: h.taskArn, container: c.name, exitCode: x.exit.exitCode, restartCount: c.restartCount }, 'container restarted by its restart policy');
  const st = await runtime.inspectContainer(c.dockerId!);
  c.bindings = st?.running ? bindingsOf(c, st.ports, h.networkMode) : [];
}
