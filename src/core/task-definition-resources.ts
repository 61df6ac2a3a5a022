/**
 * What a task takes from a host, after RunTask/StartTask overrides: the numbers the scheduler's
 * resource and port filters debit, and the per-container values the agent starts containers with.
 *
 * Reservation rules (ECS-REFERENCE 11.5):
 *   - a container reserves memoryReservation when set, else memory (else nothing);
 *   - task-level cpu/memory, when present, replace the sums of the containers;
 *   - static host ports: bridge -> hostPort > 0 (0 is a dynamic port, not reserved);
 *     host -> every containerPort; awsvpc -> none (the task has its own network namespace);
 *     none -> none.
 *
 * Worked example: bridge, no task memory, containers {memory 256} and {memory 512,
 * memoryReservation 128} with an override memoryReservation 64 on the second:
 * memory reserved = 256 + 64 = 320 MiB.
 */
import type {
  ContainerOverride,
  EnvironmentFile,
  KeyValuePair,
  NetworkMode,
  ResourceRequirement,
  TaskDefinition,
  TaskOverride,
} from './shapes/ecs';
import { invalidParameterFail, isInt, taskSizeProblem } from './task-definition-checks';
import { MIN_CONTAINER_MEMORY_MIB, containerGpuCount } from './task-definition-container';
import { parseTaskCpu, parseTaskMemory } from './task-definition-units';

export interface ContainerResourceNeeds {
  name: string;
  /** CPU units (0 when the container sets none). */
  cpu: number;
  /** Hard memory limit in MiB, if any. */
  memory?: number;
  /** Soft memory limit in MiB, if any. */
  memoryReservation?: number;
  /** MiB this container reserves on the host: memoryReservation, else memory, else 0. */
  reservedMemory: number;
  gpus: number;
  /** The command to run: the override's when given, else the definition's (may be absent). */
  command?: string[];
  /** Definition environment with override variables replacing same-named ones. */
  environment: KeyValuePair[];
  environmentFiles: EnvironmentFile[];
  resourceRequirements: ResourceRequirement[];
}

export interface ResourceNeeds {
  networkMode: NetworkMode;
  /** CPU units to reserve. */
  cpu: number;
  /** Memory MiB to reserve. */
  memory: number;
  /** Static host ports, sorted, without duplicates. */
  portsTcp: number[];
  portsUdp: number[];
  gpus: number;
  containers: ContainerResourceNeeds[];
}

export type ResourceSource = Pick<TaskDefinition, 'containerDefinitions' | 'networkMode' | 'cpu' | 'memory'>;

export function resolveResourceNeeds(td: ResourceSource, overrides?: TaskOverride): ResourceNeeds {
  const networkMode = td.networkMode ?? 'bridge';
  const defs = td.containerDefinitions ?? [];
  const byName = new Map<string, ContainerOverride>();
  for (const o of overrides?.containerOverrides ?? []) {
    // ECS's own words for a nameless override (aws/aws-sdk-go issue 2553).
    if (!o.name) invalidParameterFail('name cannot be blank.');
    if (!defs.some((c) => c.name === o.name)) {
      invalidParameterFail(`Override for container named '${o.name}' is not a container in the TaskDefinition.`);
    }
    if (byName.has(o.name)) invalidParameterFail(`Duplicate override for container named '${o.name}'.`);
    byName.set(o.name, o);
  }

  const containers = defs.map((c): ContainerResourceNeeds => {
    const o = byName.get(c.name!);
    const cpu = o?.cpu ?? c.cpu ?? 0;
    const memory = o?.memory ?? c.memory;
    const memoryReservation = o?.memoryReservation ?? c.memoryReservation;
    const where = `container '${c.name}'`;
    if (!isInt(cpu) || cpu < 0) invalidParameterFail(`Invalid 'cpu' override for ${where}.`);
    for (const [field, v] of [['memory', memory], ['memoryReservation', memoryReservation]] as const) {
      if (v !== undefined && !isInt(v)) invalidParameterFail(`Invalid '${field}' override for ${where}.`);
      // Registration's floor (Docker refuses less), so the task does not fail at container creation.
      if (v !== undefined && v < MIN_CONTAINER_MEMORY_MIB) {
        invalidParameterFail(`Invalid '${field}' override for ${where}. The minimum is ${MIN_CONTAINER_MEMORY_MIB} MiB.`);
      }
    }
    if (memory !== undefined && memoryReservation !== undefined && memory <= memoryReservation) {
      invalidParameterFail(`Invalid overrides for ${where}. 'memory' must be greater than 'memoryReservation'.`);
    }
    const resourceRequirements = o?.resourceRequirements ?? c.resourceRequirements ?? [];
    const out: ContainerResourceNeeds = {
      name: c.name!,
      cpu,
      reservedMemory: memoryReservation ?? memory ?? 0,
      gpus: containerGpuCount({ resourceRequirements }),
      environment: mergeEnvironment(c.environment ?? [], o?.environment ?? []),
      environmentFiles: [...(c.environmentFiles ?? []), ...(o?.environmentFiles ?? [])],
      resourceRequirements,
    };
    if (memory !== undefined) out.memory = memory;
    if (memoryReservation !== undefined) out.memoryReservation = memoryReservation;
    const command = o?.command ?? c.command;
    if (command !== undefined) out.command = command;
    return out;
  });

  const taskCpu = taskLevel(overrides?.cpu ?? td.cpu, parseTaskCpu, 'cpu');
  const taskMemory = taskLevel(overrides?.memory ?? td.memory, parseTaskMemory, 'memory');
  // Registration's arithmetic on the values after overrides: a task size below what its
  // containers take would be reserved while the containers get their larger limits.
  const sizeProblem = taskSizeProblem(containers, taskCpu, taskMemory);
  if (sizeProblem) invalidParameterFail(sizeProblem);
  const tcp = new Set<number>();
  const udp = new Set<number>();
  for (const c of defs) {
    for (const pm of c.portMappings ?? []) {
      const port = staticHostPort(networkMode, pm.containerPort, pm.hostPort);
      if (port === undefined) continue;
      (pm.protocol === 'udp' ? udp : tcp).add(port);
    }
  }
  return {
    networkMode,
    cpu: taskCpu ?? containers.reduce((s, c) => s + c.cpu, 0),
    memory: taskMemory ?? containers.reduce((s, c) => s + c.reservedMemory, 0),
    portsTcp: [...tcp].sort((a, b) => a - b),
    portsUdp: [...udp].sort((a, b) => a - b),
    gpus: containers.reduce((s, c) => s + c.gpus, 0),
    containers,
  };
}

function staticHostPort(mode: NetworkMode, containerPort?: number, hostPort?: number): number | undefined {
  if (mode === 'host') return containerPort;
  if (mode === 'bridge' && hostPort !== undefined && hostPort > 0) return hostPort;
  return undefined;
}

function taskLevel(value: string | undefined, parse: (s: string) => number | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const n = parse(value);
  if (n === undefined || n <= 0) invalidParameterFail(`Invalid task '${field}' value '${value}'.`);
  return n;
}

/** Override variables win over same-named definition variables; new names are appended. */
function mergeEnvironment(base: KeyValuePair[], extra: KeyValuePair[]): KeyValuePair[] {
  const names = new Set(extra.map((e) => e.name));
  return [...base.filter((e) => !names.has(e.name)), ...extra];
}
