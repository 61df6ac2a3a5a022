/**
 * `wharf logs`: the output of one container of a task, found by its ECS labels, so it works from
 * any process that can reach the engine (the agent, or the CLI on the same host).
 */
import type { Readable } from 'node:stream';
import { LABELS } from '../api/agent/protocol';
import type { ContainerRuntime, LogOptions } from './runtime/container-runtime';

export async function streamTaskLogs(
  runtime: ContainerRuntime,
  target: { taskArn: string; containerName: string },
  opts: LogOptions = {},
): Promise<Readable> {
  const found = await runtime.listContainers({ [LABELS.taskArn]: target.taskArn, [LABELS.containerName]: target.containerName });
  if (found.length === 0) throw new Error(`no container ${target.containerName} of task ${target.taskArn} on this host`);
  return runtime.logs(found[0]!.id, opts);
}
