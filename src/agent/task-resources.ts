/**
 * What a task needs before its containers: the parent cgroup that makes task-level cpu/memory a
 * hard limit for the whole task (or, where the engine cannot, a per-container fallback), its
 * volumes, and for awsvpc the pause container that owns the task's network namespace on a
 * Wharf-managed bridge network (ECS-REFERENCE 9.4).
 */
import { LABELS, type AgentTask } from '../api/agent/protocol';
import type { ContainerRuntime } from './runtime/container-runtime';
import type { ContainerRun } from './container-run';
import { containerLabels, taskLimits } from './container-spec';
import { prepareVolumes } from './task-volumes';

export const PAUSE_CONTAINER_NAME = '~internal~ecs~pause';

export interface TaskResources {
  cgroupParent?: string;
  /** Task memory to put on each container that has none, when no task cgroup is possible. */
  fallbackMemoryMiB?: number;
  /** Why the whole-task cgroup could not be made. */
  unsupportedReason?: string;
  volumeSources: Record<string, string>;
}

export async function prepareTaskResources(rt: ContainerRuntime, task: AgentTask, taskId: string): Promise<TaskResources> {
  const out: TaskResources = { volumeSources: {} };
  const limits = taskLimits(task.taskDefinition, task.overrides);
  if (limits.cpuUnits !== undefined || limits.memoryMiB !== undefined) {
    const cg = await rt.createTaskCgroup(taskId, limits);
    out.cgroupParent = cg.cgroupParent;
    if (!cg.cgroupParent) {
      // Weaker than a task cgroup: each container alone is capped at the task's memory, but
      // together they may exceed it; CPU stays shares-only.
      out.fallbackMemoryMiB = limits.memoryMiB;
      out.unsupportedReason = cg.unsupportedReason;
    }
  }
  out.volumeSources = await prepareVolumes(rt, task, taskId);
  return out;
}

/** Creates (unless adopted) and starts the pause container; returns the task's IP address. */
export async function startPauseContainer(
  rt: ContainerRuntime,
  o: { task: AgentTask; pause: ContainerRun; containerInstanceArn: string; image: string; network: string; cgroupParent?: string },
): Promise<string> {
  const { pause } = o;
  await rt.ensureNetwork(o.network, { 'io.wharf.network': 'awsvpc' });
  if (!pause.dockerId) {
    await rt.pullImage(o.image, { behaviour: 'prefer-cached' });
    pause.dockerId = await rt.createContainer({
      name: pause.dockerName,
      image: o.image,
      labels: { ...containerLabels(o.task, o.containerInstanceArn, PAUSE_CONTAINER_NAME), [LABELS.pause]: 'true' },
      // Shareable IPC so that ipcMode `task` containers can join it.
      host: { networkMode: o.network, cpuShares: 2, cgroupParent: o.cgroupParent, ipcMode: 'shareable' },
    });
    pause.known = 'CREATED';
  }
  await rt.startContainer(pause.dockerId);
  pause.everStarted = true;
  pause.known = 'RUNNING';
  const st = await rt.inspectContainer(pause.dockerId);
  const ip = st?.ipAddresses[o.network] ?? Object.values(st?.ipAddresses ?? {})[0];
  if (!ip) throw new Error(`pause container got no address on network ${o.network}`);
  return ip;
}
