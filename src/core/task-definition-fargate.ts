/**
 * The Fargate task sizes (ECS-REFERENCE 3.9). Fargate sells fixed cpu/memory pairs, so a task
 * definition that requires FARGATE must pick one of them; any other pair is answered with
 * `No Fargate configuration exists for given values.`
 */

import type { ContainerDefinition } from './shapes/ecs';

export interface FargateSize {
  /** Task cpu units. */
  cpu: number;
  /** Allowed task memory values in MiB, ascending. */
  memory: readonly number[];
  /** Whether Windows tasks may use this size (Windows needs at least 1 vCPU, and no 8/16 vCPU). */
  windows: boolean;
}

function steps(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let m = from; m <= to; m += step) out.push(m);
  return out;
}

export const FARGATE_SIZES: readonly FargateSize[] = [
  { cpu: 256, memory: [512, 1024, 2048], windows: false },
  { cpu: 512, memory: [1024, 2048, 3072, 4096], windows: false },
  { cpu: 1024, memory: steps(2048, 8192, 1024), windows: true },
  { cpu: 2048, memory: steps(4096, 16384, 1024), windows: true },
  { cpu: 4096, memory: steps(8192, 30720, 1024), windows: true },
  { cpu: 8192, memory: steps(16384, 61440, 4096), windows: false },
  { cpu: 16384, memory: steps(32768, 122880, 8192), windows: false },
];

/** True when (cpu units, memory MiB) is a size Fargate offers for the given OS. */
export function isFargateSize(cpu: number, memory: number, windows = false): boolean {
  const size = FARGATE_SIZES.find((s) => s.cpu === cpu);
  if (!size || (windows && !size.windows)) return false;
  return size.memory.includes(memory);
}

/** Fargate's limits on container timeouts (seconds). */
export const FARGATE_MAX_STOP_TIMEOUT = 120;
export const FARGATE_START_TIMEOUT = { min: 2, max: 120 } as const;
/** Fargate ephemeral storage (GiB); 20 GiB is what a task gets when the field is omitted. */
export const EPHEMERAL_STORAGE_GIB = { min: 21, max: 200 } as const;
/** Log drivers a Fargate task may use. */
export const FARGATE_LOG_DRIVERS: readonly string[] = ['awslogs', 'splunk', 'awsfirelens'];
/** The only Linux capability a Fargate container may add. */
export const FARGATE_ADDABLE_CAPABILITIES: readonly string[] = ['SYS_PTRACE'];

/** What fargateViolation needs to see: a normalized task definition (cpu/memory as plain numbers). */
export interface FargateCandidate {
  networkMode?: string;
  executionRoleArn?: string;
  cpu?: string;
  memory?: string;
  pidMode?: string;
  ipcMode?: string;
  placementConstraints?: readonly unknown[];
  inferenceAccelerators?: readonly unknown[];
  runtimePlatform?: { cpuArchitecture?: string; operatingSystemFamily?: string };
  volumes?: readonly {
    name?: string;
    host?: { sourcePath?: string };
    dockerVolumeConfiguration?: unknown;
    fsxWindowsFileServerVolumeConfiguration?: unknown;
  }[];
  containerDefinitions: readonly ContainerDefinition[];
}

const unsupported = (what: string) => `Tasks using the Fargate launch type do not support ${what}.`;

/**
 * The first reason this task definition cannot run on Fargate, worded as ECS words it, or
 * undefined when it can. Used twice: to reject a definition that requires FARGATE, and to decide
 * whether FARGATE goes into the computed `compatibilities` of one that doesn't.
 */
export function fargateViolation(td: FargateCandidate): string | undefined {
  // ECS prints this one with typographic quotes.
  if (td.networkMode !== 'awsvpc') return 'Fargate only supports network mode \u2018awsvpc\u2019.';
  if (td.cpu === undefined) return "Fargate requires that 'cpu' be defined at the task level.";
  if (td.memory === undefined) return "Fargate requires that 'memory' be defined at the task level.";
  const windows = (td.runtimePlatform?.operatingSystemFamily ?? 'LINUX') !== 'LINUX';
  if (!isFargateSize(Number(td.cpu), Number(td.memory), windows)) return 'No Fargate configuration exists for given values.';
  if (windows && td.runtimePlatform?.cpuArchitecture === 'ARM64') {
    return 'Fargate Windows tasks support only the X86_64 cpu architecture.';
  }
  if (td.ipcMode !== undefined) return unsupported('ipcMode');
  if (td.pidMode === 'host') return `${unsupported("pidMode 'host'")} The supported value for pidMode is 'task'.`;
  if ((td.placementConstraints ?? []).length > 0) return unsupported('placementConstraints');
  if ((td.inferenceAccelerators ?? []).length > 0) return unsupported('inferenceAccelerators');
  for (const v of td.volumes ?? []) {
    if (v.host?.sourcePath !== undefined) return unsupported(`host volumes with a sourcePath (volume '${v.name}')`);
    if (v.dockerVolumeConfiguration !== undefined) return unsupported(`dockerVolumeConfiguration (volume '${v.name}')`);
    if (v.fsxWindowsFileServerVolumeConfiguration !== undefined && !windows) {
      return unsupported(`FSx for Windows File Server volumes on Linux (volume '${v.name}')`);
    }
  }
  for (const c of td.containerDefinitions) {
    const found = containerFargateViolation(c);
    if (found) return found;
    if (c.logConfiguration?.logDriver === 'awslogs' && td.executionRoleArn === undefined) {
      // Fargate's own agent ships the logs with the execution role's credentials.
      return 'Fargate requires task definition to have execution role ARN to support log driver awslogs.';
    }
    if (c.logConfiguration?.logDriver === 'awslogs' && !c.logConfiguration.options?.['awslogs-stream-prefix']) {
      // Fargate has no container instance whose Docker ids could name the streams.
      return 'Fargate requires log configuration options to include awslogs-stream-prefix to support log driver awslogs.';
    }
  }
  return undefined;
}

function containerFargateViolation(c: ContainerDefinition): string | undefined {
  const of = `for container '${c.name}'`;
  if (c.privileged) return unsupported(`'privileged' ${of}`);
  if ((c.links ?? []).length > 0) return unsupported(`'links' ${of}`);
  if ((c.dnsServers ?? []).length > 0) return unsupported(`'dnsServers' ${of}`);
  if ((c.dnsSearchDomains ?? []).length > 0) return unsupported(`'dnsSearchDomains' ${of}`);
  if ((c.extraHosts ?? []).length > 0) return unsupported(`'extraHosts' ${of}`);
  if ((c.dockerSecurityOptions ?? []).length > 0) return unsupported(`'dockerSecurityOptions' ${of}`);
  if (c.disableNetworking !== undefined) return unsupported(`'disableNetworking' ${of}`);
  const lp = c.linuxParameters;
  if (lp) {
    if (lp.maxSwap !== undefined) return unsupported(`'linuxParameters.maxSwap' ${of}`);
    if (lp.swappiness !== undefined) return unsupported(`'linuxParameters.swappiness' ${of}`);
    if ((lp.devices ?? []).length > 0) return unsupported(`'linuxParameters.devices' ${of}`);
    if (lp.sharedMemorySize !== undefined) return unsupported(`'linuxParameters.sharedMemorySize' ${of}`);
    if ((lp.tmpfs ?? []).length > 0) return unsupported(`'linuxParameters.tmpfs' ${of}`);
    const added = (lp.capabilities?.add ?? []).find((cap) => !FARGATE_ADDABLE_CAPABILITIES.includes(cap));
    if (added !== undefined) return unsupported(`adding the capability '${added}' ${of} (only SYS_PTRACE)`);
  }
  // Fargate allows only network-namespaced kernel parameters.
  const sysctl = (c.systemControls ?? []).find((s) => !(s.namespace ?? '').startsWith('net.'));
  if (sysctl) return unsupported(`the systemControls namespace '${sysctl.namespace}' ${of} (only net.*)`);
  const driver = c.logConfiguration?.logDriver;
  if (driver !== undefined && !FARGATE_LOG_DRIVERS.includes(driver)) {
    return unsupported(`the log driver '${driver}' ${of}`);
  }
  if ((c.resourceRequirements ?? []).some((r) => r.type === 'GPU')) return unsupported(`GPU resource requirements ${of}`);
  if (c.stopTimeout !== undefined && c.stopTimeout > FARGATE_MAX_STOP_TIMEOUT) {
    return `Invalid 'stopTimeout' setting ${of}. Fargate supports at most ${FARGATE_MAX_STOP_TIMEOUT} seconds.`;
  }
  if (
    c.startTimeout !== undefined &&
    (c.startTimeout < FARGATE_START_TIMEOUT.min || c.startTimeout > FARGATE_START_TIMEOUT.max)
  ) {
    return `Invalid 'startTimeout' setting ${of}. Fargate supports ${FARGATE_START_TIMEOUT.min} to ${FARGATE_START_TIMEOUT.max} seconds.`;
  }
  return undefined;
}
