/**
 * Task definition volumes -> Docker sources (ECS-REFERENCE 3.10):
 *   host.sourcePath            bind mount of that host path (Docker creates it if missing)
 *   host empty / nothing set   a Docker volume living as long as the task
 *   dockerVolume scope task    a Docker volume created for the task, removed at cleanup
 *   dockerVolume scope shared  the named volume, created only when autoprovision is set
 *   EFS / FSx / S3 Files / configuredAtLaunch: not available on a Wharf host; the task fails.
 */
import type { Volume } from '../core/shapes/ecs';
import { LABELS, type AgentTask } from '../api/agent/protocol';
import type { ContainerRuntime } from './runtime/container-runtime';

function taskVolumeName(taskId: string, volume: string): string {
  return `wharf-${taskId}-${volume.replace(/[^a-zA-Z0-9_.-]/g, '')}`;
}

/** True for volumes whose Docker volume belongs to the task (removed with it). */
function isTaskScoped(v: Volume): boolean {
  if (v.host?.sourcePath) return false;
  if (v.dockerVolumeConfiguration) return (v.dockerVolumeConfiguration.scope ?? 'task') === 'task';
  return !v.efsVolumeConfiguration && !v.fsxWindowsFileServerVolumeConfiguration && !v.s3filesVolumeConfiguration && !v.configuredAtLaunch;
}

/** Creates what the task's volumes need; returns the Docker source of each, by volume name. */
export async function prepareVolumes(rt: ContainerRuntime, task: AgentTask, taskId: string): Promise<Record<string, string>> {
  const sources: Record<string, string> = {};
  for (const v of task.taskDefinition.volumes ?? []) {
    const name = v.name ?? '';
    if (v.host?.sourcePath) {
      sources[name] = v.host.sourcePath;
      continue;
    }
    if (v.efsVolumeConfiguration || v.fsxWindowsFileServerVolumeConfiguration || v.s3filesVolumeConfiguration || v.configuredAtLaunch) {
      throw new Error(`volume ${name}: EFS, FSx, S3 Files and launch-time volumes are not available on Wharf hosts`);
    }
    const dvc = v.dockerVolumeConfiguration;
    if (dvc && dvc.scope === 'shared') {
      if (!(await rt.volumeExists(name))) {
        if (!dvc.autoprovision) throw new Error(`shared volume ${name} does not exist and autoprovision is false`);
        await rt.ensureVolume(name, { driver: dvc.driver, driverOpts: dvc.driverOpts, labels: dvc.labels });
      }
      sources[name] = name;
      continue;
    }
    const volName = taskVolumeName(taskId, name);
    await rt.ensureVolume(volName, {
      driver: dvc?.driver,
      driverOpts: dvc?.driverOpts,
      labels: { ...(dvc?.labels ?? {}), [LABELS.taskArn]: task.taskArn },
    });
    sources[name] = volName;
  }
  return sources;
}

export async function removeTaskVolumes(rt: ContainerRuntime, task: AgentTask, taskId: string): Promise<void> {
  for (const v of task.taskDefinition.volumes ?? []) {
    if (isTaskScoped(v)) await rt.removeVolume(taskVolumeName(taskId, v.name ?? ''));
  }
}
