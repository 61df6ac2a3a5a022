/**
 * Copy-on-write changes to one SnapshotInstance: what placing (or stopping) a task does to the
 * instance's remaining resources and task counts. The engine uses it for the tentative state of
 * instances already chosen earlier in the same call; InMemoryClusterSnapshot uses it to apply
 * committed placements. Inputs are never mutated.
 */
import type { InstanceResources, SnapshotInstance } from './types';

/** A task's footprint on its instance. */
export interface TaskFootprint {
  group: string;
  service?: string;
  cpu: number;
  memory: number;
  tcpPorts?: readonly number[];
  udpPorts?: readonly number[];
  gpuIds?: readonly string[];
}

function bump(m: ReadonlyMap<string, number>, key: string, by: number): Map<string, number> {
  const out = new Map(m);
  const n = (out.get(key) ?? 0) + by;
  if (n > 0) out.set(key, n);
  else out.delete(key);
  return out;
}

function portsAfter(s: ReadonlySet<number>, ports: readonly number[] | undefined, sign: 1 | -1): ReadonlySet<number> {
  if (!ports || ports.length === 0) return s;
  const out = new Set(s);
  for (const p of ports) sign > 0 ? out.add(p) : out.delete(p);
  return out;
}

/**
 * The instance after a task is placed on it (sign 1) or has stopped (sign -1): resources debited
 * or credited, ports and GPUs taken or freed, counts by group and service adjusted.
 */
export function withTask(inst: SnapshotInstance, t: TaskFootprint, sign: 1 | -1 = 1): SnapshotInstance {
  const r = inst.remaining;
  let gpuIds = r.gpuIds;
  if (t.gpuIds && t.gpuIds.length > 0) {
    gpuIds = sign > 0 ? r.gpuIds.filter((g) => !t.gpuIds!.includes(g)) : [...r.gpuIds, ...t.gpuIds.filter((g) => !r.gpuIds.includes(g))];
  }
  const remaining: InstanceResources = {
    cpu: r.cpu - sign * t.cpu,
    memory: r.memory - sign * t.memory,
    tcpPorts: portsAfter(r.tcpPorts, t.tcpPorts, sign),
    udpPorts: portsAfter(r.udpPorts, t.udpPorts, sign),
    gpuIds,
  };
  return {
    ...inst,
    remaining,
    runningTasksCount: Math.max(0, inst.runningTasksCount + sign),
    tasksByGroup: bump(inst.tasksByGroup, t.group, sign),
    tasksByService: t.service !== undefined ? bump(inst.tasksByService, t.service, sign) : inst.tasksByService,
  };
}

/** Builds a SnapshotInstance from plain JSON-ish data (scenario files, tests, adapters). */
export interface InstanceSpec {
  id: string;
  arn?: string;
  status?: SnapshotInstance['status'];
  agentConnected?: boolean;
  agentVersion?: string;
  ec2InstanceId?: string;
  /** Epoch ms or an ISO date. */
  registeredAt?: number | string;
  attributes?: Record<string, string | null>;
  registered: { cpu: number; memory: number; tcpPorts?: number[]; udpPorts?: number[]; gpuIds?: string[] };
  /** Defaults to registered. */
  remaining?: { cpu: number; memory: number; tcpPorts?: number[]; udpPorts?: number[]; gpuIds?: string[] };
  /** Tasks running on it; they set the counts (and, without `remaining`, debit the resources). */
  tasks?: { group: string; service?: string; cpu?: number; memory?: number; tcpPorts?: number[]; udpPorts?: number[]; gpuIds?: string[]; desiredStatus?: string }[];
  runningTasksCount?: number;
}

function resources(r: InstanceSpec['registered']): InstanceResources {
  return { cpu: r.cpu, memory: r.memory, tcpPorts: new Set(r.tcpPorts ?? []), udpPorts: new Set(r.udpPorts ?? []), gpuIds: [...(r.gpuIds ?? [])] };
}

export function instanceFromSpec(spec: InstanceSpec, arnPrefix = 'arn:aws:ecs:us-east-1:000000000000:container-instance/default/'): SnapshotInstance {
  const attributes = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(spec.attributes ?? {})) attributes.set(k, v ?? undefined);
  const registeredAt = typeof spec.registeredAt === 'string' ? Date.parse(spec.registeredAt) : (spec.registeredAt ?? 0);
  let inst: SnapshotInstance = {
    id: spec.id,
    arn: spec.arn ?? arnPrefix + spec.id,
    status: spec.status ?? 'ACTIVE',
    agentConnected: spec.agentConnected ?? true,
    registeredAt,
    attributes,
    registered: resources(spec.registered),
    remaining: resources(spec.remaining ?? spec.registered),
    runningTasksCount: 0,
    tasksByGroup: new Map(),
    tasksByService: new Map(),
  };
  if (spec.agentVersion !== undefined) inst = { ...inst, agentVersion: spec.agentVersion };
  if (spec.ec2InstanceId !== undefined) inst = { ...inst, ec2InstanceId: spec.ec2InstanceId };
  for (const t of spec.tasks ?? []) {
    if (t.desiredStatus === 'STOPPED') continue;
    const fp: TaskFootprint = { group: t.group, cpu: t.cpu ?? 0, memory: t.memory ?? 0 };
    if (t.service !== undefined) fp.service = t.service;
    if (!spec.remaining) {
      if (t.tcpPorts) fp.tcpPorts = t.tcpPorts;
      if (t.udpPorts) fp.udpPorts = t.udpPorts;
      if (t.gpuIds) fp.gpuIds = t.gpuIds;
    } else {
      fp.cpu = 0;
      fp.memory = 0;
    }
    inst = withTask(inst, fp, 1);
  }
  if (spec.runningTasksCount !== undefined) inst = { ...inst, runningTasksCount: spec.runningTasksCount };
  return inst;
}
