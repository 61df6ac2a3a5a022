/** Building task records from a task definition, and their wire form. */
import { arn, taskArn, type Partition } from '../core/arn';
import { FARGATE_PLATFORM_FAMILY, FARGATE_PLATFORM_VERSION } from '../core/fargate-pool';
import { keys, type ClusterRecord, type Reservation, type TaskDefinitionRecord, type TaskRecord } from '../core/resources';
import type { Attachment, Container, Tag, Task, TaskOverride } from '../core/shapes/ecs';
import { effectiveNetworkMode } from '../core/task-definition';
import type { ResourceNeeds } from '../core/task-definition-resources';
import { epochSeconds, hexId, uuid } from '../lib';

export interface NewTaskParams {
  partition: Partition;
  cluster: ClusterRecord;
  td: TaskDefinitionRecord;
  needs: ResourceNeeds;
  overrides?: TaskOverride;
  launchType: 'EC2' | 'FARGATE' | 'EXTERNAL';
  group: string;
  startedBy?: string;
  tags: Tag[];
  now: number;
  clientToken?: string;
  serviceName?: string;
  /** Subnets / security groups of an awsvpc task (control/task-network.ts resolveNetwork). */
  awsvpc?: { subnets: string[]; securityGroups: string[]; assignPublicIp?: string };
  enableExecuteCommand?: boolean;
}

/** A new task, not yet placed: the caller sets the instance and reservation when it places it. */
export function newTaskRecord(p: NewTaskParams): TaskRecord {
  const id = hexId();
  const tArn = taskArn(p.partition, p.cluster.clusterName, id);
  const awsvpc = effectiveNetworkMode(p.td) === 'awsvpc';
  const containers: Container[] = p.needs.containers.map((c) => {
    const def = p.td.containerDefinitions!.find((d) => d.name === c.name)!;
    const out: Container = {
      containerArn: arn(p.partition, 'container', `${p.cluster.clusterName}/${id}/${uuid()}`),
      taskArn: tArn,
      name: c.name,
      image: def.image,
      lastStatus: 'PENDING',
      networkInterfaces: [],
      healthStatus: 'UNKNOWN',
      cpu: String(c.cpu),
    };
    if (c.memory !== undefined) out.memory = String(c.memory);
    if (c.memoryReservation !== undefined) out.memoryReservation = String(c.memoryReservation);
    return out;
  });
  const attachments: Attachment[] = [];
  if (awsvpc) {
    attachments.push({
      id: uuid(),
      type: 'ElasticNetworkInterface',
      status: 'PRECREATED',
      details: [{ name: 'subnetId', value: p.awsvpc?.subnets[0] ?? 'wharf-default' }],
    });
  }
  const overrides: TaskOverride = { containerOverrides: [], inferenceAcceleratorOverrides: [], ...(p.overrides ?? {}) };
  const t: TaskRecord = {
    taskArn: tArn,
    clusterArn: p.cluster.clusterArn,
    taskDefinitionArn: p.td.taskDefinitionArn,
    attachments,
    attributes: [],
    containers,
    overrides,
    lastStatus: awsvpc ? 'PROVISIONING' : 'PENDING',
    desiredStatus: 'RUNNING',
    launchType: p.launchType,
    group: p.group,
    createdAt: epochSeconds(p.now),
    version: 1,
    connectivity: undefined,
    healthStatus: 'UNKNOWN',
    enableExecuteCommand: p.enableExecuteCommand ?? false,
    tags: p.tags,
    wharf: { id, cluster: p.cluster.clusterName, clientToken: p.clientToken, serviceName: p.serviceName },
  };
  if (p.startedBy !== undefined) t.startedBy = p.startedBy;
  if (awsvpc && p.awsvpc) {
    t.wharf.securityGroups = p.awsvpc.securityGroups;
    if (p.awsvpc.assignPublicIp === 'ENABLED') t.wharf.assignPublicIp = true;
  }
  const cpu = p.overrides?.cpu ?? p.td.cpu;
  const memory = p.overrides?.memory ?? p.td.memory;
  if (cpu !== undefined) t.cpu = cpu;
  if (memory !== undefined) t.memory = memory;
  if (p.td.ephemeralStorage) t.ephemeralStorage = p.td.ephemeralStorage;
  if (p.launchType === 'FARGATE') {
    t.platformVersion = FARGATE_PLATFORM_VERSION;
    t.platformFamily = FARGATE_PLATFORM_FAMILY;
    // Fargate gives every task 20 GiB when the definition asks for nothing else.
    t.ephemeralStorage = p.overrides?.ephemeralStorage ?? p.td.ephemeralStorage ?? { sizeInGiB: 20 };
    // Fargate's DescribeTasks names the task's storage under both fields.
    t.fargateEphemeralStorage = { sizeInGiB: t.ephemeralStorage.sizeInGiB };
  }
  return t;
}

/**
 * The ENI attachment once the agent reports the task's address: ATTACHED, with the details ECS
 * shows (subnetId, networkInterfaceId, macAddress, privateDnsName, privateIPv4Address), and for
 * assignPublicIp ENABLED the host address its ports are published on (the containers'
 * networkBindings say which port is which).
 */
export function attachedEni(t: TaskRecord, ip: string, mac?: string): Attachment[] {
  const region = t.taskArn.split(':')[3] ?? '';
  const domain = region === 'us-east-1' ? 'ec2.internal' : `${region}.compute.internal`;
  const published = t.wharf.assignPublicIp ? (t.containers ?? []).flatMap((c) => c.networkBindings ?? []).find((b) => b.bindIP)?.bindIP : undefined;
  return (t.attachments ?? []).map((a) => {
    if (a.type !== 'ElasticNetworkInterface') return a;
    const keep = (a.details ?? []).filter((d) => d.name === 'subnetId');
    const prior = (a.details ?? []).find((d) => d.name === 'macAddress')?.value;
    const details = [
      ...keep,
      { name: 'networkInterfaceId', value: `eni-${t.wharf.id.slice(0, 17)}` },
      ...(mac ?? prior ? [{ name: 'macAddress', value: (mac ?? prior)! }] : []),
      { name: 'privateDnsName', value: `ip-${ip.replace(/\./g, '-')}.${domain}` },
      { name: 'privateIPv4Address', value: ip },
      ...(published ? [{ name: 'publicIPv4Address', value: published }] : []),
    ];
    return { ...a, status: 'ATTACHED', details };
  });
}

/** The attachments with the ENI's subnet set (placement picks it by the host's zone). */
export function withEniSubnet(attachments: Attachment[], subnetId: string): Attachment[] {
  return attachments.map((a) =>
    a.type === 'ElasticNetworkInterface'
      ? { ...a, details: [...(a.details ?? []).filter((d) => d.name !== 'subnetId'), { name: 'subnetId', value: subnetId }] }
      : a,
  );
}

export function reservationOf(needs: ResourceNeeds, hostPorts?: { tcp: number[]; udp: number[] }, gpuIds: string[] = []): Reservation {
  return {
    cpu: needs.cpu,
    memory: needs.memory,
    ports: hostPorts?.tcp ?? needs.portsTcp,
    portsUdp: hostPorts?.udp ?? needs.portsUdp,
    gpuIds,
  };
}

export function taskKey(t: TaskRecord): string {
  return keys.task(t.wharf.cluster, t.wharf.id);
}

/** The wire form: without Wharf's bookkeeping, tags only when asked for. */
/**
 * desiredStatus as ECS shows it: a DEACTIVATING task was asked to stop (STOPPED), though the
 * stored record keeps RUNNING, which is what its agent is told until the drain is over.
 */
export const wireDesiredStatus = (t: TaskRecord): string => (t.lastStatus === 'DEACTIVATING' ? 'STOPPED' : t.desiredStatus);

export function taskToWire(t: TaskRecord, includeTags = false): Task {
  const { wharf: _w, tags, ...rest } = t;
  const out: Task = rest;
  if (t.lastStatus === 'DEACTIVATING') out.desiredStatus = 'STOPPED';
  if (includeTags) out.tags = tags ?? [];
  return out;
}
