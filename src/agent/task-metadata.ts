/**
 * The task metadata endpoint v4 documents (`ECS_CONTAINER_METADATA_URI_V4`), as the ECS agent
 * serves them to a task's containers:
 *
 *   GET $ECS_CONTAINER_METADATA_URI_V4        the calling container
 *   GET $ECS_CONTAINER_METADATA_URI_V4/task   the task, with every container
 *
 * built from what the agent knows: the task as the control plane sent it and its runner's
 * snapshot. The field names are ECS's (PascalCase); fields the agent cannot know here (image
 * digests, pull timestamps, stats) are left out rather than invented. The `/stats` documents are
 * not served yet.
 */
import type { AgentTask } from '../api/agent/protocol';
import { LABELS } from '../api/agent/protocol';
import { taskDefinitionRefOf } from '../core/arn';
import type { TaskSnapshot } from './task-status';

export interface MetadataContext {
  task: AgentTask;
  snapshot: TaskSnapshot;
  availabilityZone?: string;
}

type Doc = Record<string, unknown>;

function networkMode(task: AgentTask): string {
  return task.taskDefinition.networkMode ?? (task.launchType === 'FARGATE' ? 'awsvpc' : 'bridge');
}

function containerDoc(m: MetadataContext, name: string): Doc | undefined {
  const def = m.task.taskDefinition.containerDefinitions?.find((d) => d.name === name);
  const snap = m.snapshot.containers.find((c) => c.name === name);
  if (!def || !snap) return undefined;
  const ref = taskDefinitionRefOf(m.task.taskDefinition.taskDefinitionArn ?? '');
  const mode = networkMode(m.task);
  const doc: Doc = {
    DockerId: snap.dockerId ?? '',
    Name: name,
    Image: def.image,
    Labels: {
      [LABELS.cluster]: m.task.clusterArn,
      [LABELS.containerName]: name,
      [LABELS.taskArn]: m.task.taskArn,
      [LABELS.family]: ref?.family ?? '',
      [LABELS.revision]: String(ref?.revision ?? ''),
    },
    DesiredStatus: m.snapshot.desiredStatus,
    KnownStatus: snap.status,
    Limits: { CPU: def.cpu ?? 0, ...(def.memory !== undefined ? { Memory: def.memory } : {}) },
    Type: 'NORMAL',
    Networks: [{ NetworkMode: mode, IPv4Addresses: m.snapshot.privateIpv4Address ? [m.snapshot.privateIpv4Address] : [] }],
    RestartCount: snap.restartCount,
  };
  if (snap.exitCode !== undefined) doc.ExitCode = snap.exitCode;
  if (def.healthCheck) doc.Health = { status: snap.health };
  if (def.logConfiguration?.logDriver) doc.LogDriver = def.logConfiguration.logDriver;
  return doc;
}

/** The calling container's document (undefined when the task has no such container). */
export function containerMetadata(m: MetadataContext, name: string): Doc | undefined {
  return containerDoc(m, name);
}

/** The task's document, with every container of the task. */
export function taskMetadata(m: MetadataContext): Doc {
  const td = m.task.taskDefinition;
  const ref = taskDefinitionRefOf(td.taskDefinitionArn ?? '');
  const cpu = Number(m.task.overrides?.cpu ?? td.cpu);
  const memory = Number(m.task.overrides?.memory ?? td.memory);
  const doc: Doc = {
    Cluster: m.task.clusterArn,
    TaskARN: m.task.taskArn,
    Family: ref?.family ?? td.family ?? '',
    Revision: String(ref?.revision ?? td.revision ?? ''),
    DesiredStatus: m.snapshot.desiredStatus,
    KnownStatus: m.snapshot.knownStatus,
    Limits: { ...(Number.isFinite(cpu) ? { CPU: cpu / 1024 } : {}), ...(Number.isFinite(memory) ? { Memory: memory } : {}) },
    LaunchType: m.task.launchType ?? 'EC2',
    Containers: m.snapshot.containers.map((c) => containerDoc(m, c.name)).filter((d): d is Doc => d !== undefined),
  };
  if (m.availabilityZone) doc.AvailabilityZone = m.availabilityZone;
  return doc;
}
