/**
 * ECS container definition -> Docker container spec (ECS-REFERENCE 3.4-3.10, 9.3-9.4). Pure:
 * everything that needs the engine (ids of the pause and sibling containers, volume names, the
 * task cgroup) is resolved by the TaskRunner first and passed in.
 */
import { readFileSync } from 'node:fs';
import type { ContainerDefinition, HealthCheck, TaskDefinition, TaskOverride } from '../core/shapes/ecs';
import { LABELS, type AgentTask } from '../api/agent/protocol';
import type { ContainerSpec } from './runtime/container-runtime';
import { metadataUris } from './task-metadata';

const MiB = 1024 * 1024;

export interface SpecContext {
  task: AgentTask;
  containerInstanceArn: string;
  def: ContainerDefinition;
  dockerName: string;
  networkMode: string;
  /** awsvpc: Docker id of the task's pause container. */
  pauseId?: string;
  /** Docker name of every container of the task, by container name (for links). */
  dockerNames: Record<string, string>;
  /** Docker id of every created container of the task, by container name (for volumesFrom). */
  dockerIds: Record<string, string>;
  /** Docker source (host path or volume name) of every TD volume, by volume name. */
  volumeSources: Record<string, string>;
  cgroupParent?: string;
  /** A Docker runtime other than the engine's default (runsc for Fargate tasks under gVisor). */
  sandboxRuntime?: string;
  /** Task memory (MiB) applied to each container when no whole-task cgroup is possible. */
  fallbackMemoryMiB?: number;
  /** The agent's endpoint for this task (task scale-in protection), as ECS_AGENT_URI. */
  agentUri?: string;
  /** Resolvers for a bridge-mode container whose definition names none (Wharf's DNS server). */
  dnsServers?: string[];
  /** Wharf's own labels to add (a pool pause container's id and the task's groups). */
  wharfLabels?: Record<string, string>;
  /**
   * The host's hard open-files limit (hostNofileLimit): a Fargate container's default nofile is
   * 65535 or this, the lower, since runc cannot raise a container's limit past the engine's.
   */
  hostNofileLimit?: number;
}

/** The container definitions with the task's containerOverrides applied. */
export function effectiveContainers(td: TaskDefinition, overrides?: TaskOverride): ContainerDefinition[] {
  return (td.containerDefinitions ?? []).map((def) => {
    const o = overrides?.containerOverrides?.find((x) => x.name === def.name);
    if (!o) return def;
    const env = new Map((def.environment ?? []).map((e) => [e.name ?? '', e.value ?? '']));
    for (const e of o.environment ?? []) env.set(e.name ?? '', e.value ?? '');
    return {
      ...def,
      command: o.command ?? def.command,
      environment: [...env].map(([name, value]) => ({ name, value })),
      // An override's list replaces the definition's (ECS ContainerOverride.environmentFiles).
      environmentFiles: o.environmentFiles ?? def.environmentFiles,
      cpu: o.cpu ?? def.cpu,
      memory: o.memory ?? def.memory,
      memoryReservation: o.memoryReservation ?? def.memoryReservation,
    };
  });
}

/** Task-level cpu units / memory MiB after overrides ("1 vCPU" forms are normalised at registration). */
export function taskLimits(td: TaskDefinition, overrides?: TaskOverride): { cpuUnits?: number; memoryMiB?: number } {
  const num = (s?: string) => (s && /^\d+$/.test(s.trim()) ? Number(s) : undefined);
  return { cpuUnits: num(overrides?.cpu ?? td.cpu), memoryMiB: num(overrides?.memory ?? td.memory) };
}

export function dockerHealthcheck(hc: HealthCheck): NonNullable<ContainerSpec['healthcheck']> {
  const s = 1_000_000_000;
  const cmd = hc.command ?? [];
  const test = cmd[0] === 'CMD' || cmd[0] === 'CMD-SHELL' ? cmd : ['CMD', ...cmd];
  return {
    test,
    intervalNs: (hc.interval ?? 30) * s,
    timeoutNs: (hc.timeout ?? 5) * s,
    retries: hc.retries ?? 3,
    startPeriodNs: (hc.startPeriod ?? 0) * s,
  };
}

function regionOf(arn: string): string | undefined {
  const parts = arn.split(':');
  return parts.length > 4 && parts[3] ? parts[3] : undefined;
}

/** Ports a mapping publishes: one, or each port of `containerPortRange` ("8000-8010"). */
function mappedPorts(pm: { containerPort?: number; containerPortRange?: string }): number[] {
  if (pm.containerPort !== undefined) return [pm.containerPort];
  const m = /^(\d+)-(\d+)$/.exec(pm.containerPortRange ?? '');
  if (!m) return [];
  const out: number[] = [];
  for (let p = Number(m[1]); p <= Number(m[2]); p++) out.push(p);
  return out;
}

/**
 * ECS labels last so that a user's dockerLabels can never forge task membership; Wharf's own
 * (`io.wharf.*`: pause containers, security groups) are never taken from the user at all.
 */
export function containerLabels(task: AgentTask, containerInstanceArn: string, containerName: string, extra: Record<string, string> = {}): Record<string, string> {
  const user = Object.fromEntries(Object.entries(extra).filter(([k]) => !k.startsWith('io.wharf.')));
  return {
    ...user,
    [LABELS.taskArn]: task.taskArn,
    [LABELS.containerName]: containerName,
    [LABELS.cluster]: task.clusterArn,
    [LABELS.family]: task.taskDefinition.family ?? '',
    [LABELS.revision]: String(task.taskDefinition.revision ?? ''),
    [LABELS.containerInstance]: containerInstanceArn,
  };
}

/** Processes one container of a Fargate task may run (Fargate's own limit is not published). */
export const FARGATE_PIDS_LIMIT = 4096;

export function buildContainerSpec(ctx: SpecContext): ContainerSpec {
  const { def, task } = ctx;
  const mode = ctx.networkMode;
  const awsvpc = mode === 'awsvpc';

  const vars = new Map<string, string>();
  for (const e of def.environment ?? []) if (e.name) vars.set(e.name, e.value ?? '');
  // Secret values (resolved by the control plane) win over `environment` entries of the same
  // name, as the ECS agent merges them over the container's environment.
  for (const [name, value] of Object.entries(task.secrets?.[def.name ?? ''] ?? {})) vars.set(name, value);
  const region = regionOf(task.taskArn);
  const fargate = task.launchType === 'FARGATE';
  if (!vars.has('AWS_EXECUTION_ENV')) vars.set('AWS_EXECUTION_ENV', fargate ? 'AWS_ECS_FARGATE' : 'AWS_ECS_EC2');
  if (region && !vars.has('AWS_REGION')) vars.set('AWS_REGION', region);
  if (region && !vars.has('AWS_DEFAULT_REGION')) vars.set('AWS_DEFAULT_REGION', region);
  // The agent's own address for the task wins, as the ECS agent injects it: a stale or foreign
  // value could only point the task at the wrong endpoint.
  if (ctx.agentUri) {
    vars.set('ECS_AGENT_URI', ctx.agentUri);
    // The task metadata endpoint, v4 and v3 (agent/task-metadata.ts), is served beside it, per container.
    const metadata = metadataUris(ctx.agentUri, def.name ?? '');
    if (!vars.has('ECS_CONTAINER_METADATA_URI_V4')) vars.set('ECS_CONTAINER_METADATA_URI_V4', metadata.v4);
    if (!vars.has('ECS_CONTAINER_METADATA_URI')) vars.set('ECS_CONTAINER_METADATA_URI', metadata.v3);
  }
  const env = [...vars].map(([name, value]) => `${name}=${value}`);

  // Ports: bridge publishes (empty HostPort = Docker picks a dynamic port); host and awsvpc use
  // the container port directly, so nothing is published.
  let exposedPorts: string[] | undefined;
  let portBindings: ContainerSpec['host']['portBindings'];
  if (mode === 'bridge' && def.portMappings?.length) {
    exposedPorts = [];
    portBindings = {};
    for (const pm of def.portMappings) {
      for (const port of mappedPorts(pm)) {
        const key = `${port}/${pm.protocol ?? 'tcp'}`;
        exposedPorts.push(key);
        const hostPort = pm.containerPortRange || !pm.hostPort ? '' : String(pm.hostPort);
        (portBindings[key] ??= []).push({ hostPort });
      }
    }
  }

  const binds: string[] = [];
  for (const mp of def.mountPoints ?? []) {
    const src = ctx.volumeSources[mp.sourceVolume ?? ''];
    if (src === undefined || !mp.containerPath) continue;
    binds.push(`${src}:${mp.containerPath}${mp.readOnly ? ':ro' : ''}`);
  }

  const lp = def.linuxParameters;
  const tmpfs: Record<string, string> = {};
  for (const t of lp?.tmpfs ?? []) tmpfs[t.containerPath] = [`size=${t.size}m`, ...(t.mountOptions ?? [])].join(',');
  // gVisor mounts a writable tmpfs at /tmp unless the spec mounts something there, so a read-only
  // root would leave /tmp writable (runc keeps it read-only): an empty read-only tmpfs keeps it so.
  const mountsTmp = (def.mountPoints ?? []).some((mp) => mp.containerPath?.replace(/\/+$/, '') === '/tmp') || '/tmp' in tmpfs;
  if (def.readonlyRootFilesystem && ctx.sandboxRuntime && !mountsTmp) tmpfs['/tmp'] = 'ro';

  // A Fargate container without a memory of its own gets the task's: the task cgroup holds the
  // whole task to it anyway, but a runtime that sizes itself from its own cgroup (a JVM, Node's
  // heap) would otherwise see no limit at all.
  const memoryMiB = def.memory ?? ctx.fallbackMemoryMiB ?? (fargate ? taskLimits(task.taskDefinition, task.overrides).memoryMiB : undefined);
  const memorySwapBytes =
    lp?.maxSwap !== undefined && memoryMiB !== undefined ? (memoryMiB + lp.maxSwap) * MiB : undefined;

  const logDriver = def.logConfiguration?.logDriver ?? 'json-file';
  // Docker's awslogs driver would ship logs to AWS itself. Without an explicit endpoint the
  // container logs to json-file and the agent ships that to Wharf's own logs API
  // (agent/awslogs-shipper.ts), so `wharf logs` keeps working too.
  const logConfig =
    logDriver === 'awslogs' && !def.logConfiguration?.options?.['awslogs-endpoint']
      ? { type: 'json-file' }
      : { type: logDriver, config: def.logConfiguration?.options };

  return {
    name: ctx.dockerName,
    image: def.image ?? '',
    labels: { ...containerLabels(task, ctx.containerInstanceArn, def.name ?? '', def.dockerLabels), ...ctx.wharfLabels },
    entrypoint: def.entryPoint,
    cmd: def.command,
    env,
    workingDir: def.workingDirectory,
    user: def.user,
    hostname: awsvpc ? undefined : def.hostname,
    exposedPorts,
    healthcheck: def.healthCheck ? dockerHealthcheck(def.healthCheck) : undefined,
    stopTimeoutSec: def.stopTimeout,
    networkDisabled: def.disableNetworking,
    openStdin: def.interactive,
    tty: def.pseudoTerminal,
    host: {
      networkMode: awsvpc ? `container:${ctx.pauseId}` : mode,
      ...namespaceModes(ctx),
      portBindings,
      links:
        mode === 'bridge' && def.links?.length
          ? def.links.map((l) => {
              const [target, alias] = l.split(':');
              return `${ctx.dockerNames[target!] ?? target}:${alias ?? target}`;
            })
          : undefined,
      binds: binds.length ? binds : undefined,
      tmpfs: Object.keys(tmpfs).length ? tmpfs : undefined,
      volumesFrom: def.volumesFrom?.length
        ? def.volumesFrom.map((v) => `${ctx.dockerIds[v.sourceContainer ?? ''] ?? v.sourceContainer}${v.readOnly ? ':ro' : ''}`)
        : undefined,
      // ECS passes CPU units as shares; the kernel minimum is 2 and Docker's maximum 262144.
      cpuShares: Math.min(262_144, Math.max(2, def.cpu ?? 0)),
      memoryBytes: memoryMiB !== undefined ? memoryMiB * MiB : undefined,
      memoryReservationBytes: def.memoryReservation !== undefined ? def.memoryReservation * MiB : undefined,
      memorySwapBytes,
      // ECS: "A maxSwap value must be set for the swappiness parameter to be used."
      memorySwappiness: lp?.maxSwap !== undefined ? lp.swappiness : undefined,
      cgroupParent: ctx.cgroupParent,
      ulimits: ulimitsOf(def, fargate, ctx.hostNofileLimit),
      readonlyRootfs: def.readonlyRootFilesystem,
      // A Fargate task cannot fork-bomb its host: each container gets a bounded process table.
      pidsLimit: fargate ? FARGATE_PIDS_LIMIT : undefined,
      runtime: ctx.sandboxRuntime,
      privileged: def.privileged,
      init: lp?.initProcessEnabled,
      capAdd: lp?.capabilities?.add,
      capDrop: capDropOf(lp?.capabilities?.drop, fargate),
      devices: lp?.devices?.map((d) => ({
        pathOnHost: d.hostPath,
        pathInContainer: d.containerPath ?? d.hostPath,
        cgroupPermissions: (d.permissions ?? ['read', 'write', 'mknod']).map((p) => p[0]).join(''),
      })),
      shmSizeBytes: lp?.sharedMemorySize !== undefined ? lp.sharedMemorySize * MiB : undefined,
      // Docker refuses DNS and host entries on a container that borrows another's network.
      // awsvpc containers use the pause container's resolver; Docker refuses DNS in host mode.
      dns: awsvpc ? undefined : (def.dnsServers ?? (mode === 'bridge' ? ctx.dnsServers : undefined)),
      dnsSearch: awsvpc ? undefined : def.dnsSearchDomains,
      extraHosts: awsvpc ? undefined : def.extraHosts?.map((h) => `${h.hostname}:${h.ipAddress}`),
      securityOpt: def.dockerSecurityOptions,
      sysctls: def.systemControls?.length
        ? Object.fromEntries(def.systemControls.filter((s) => s.namespace).map((s) => [s.namespace!, s.value ?? '']))
        : undefined,
      logConfig,
    },
  };
}

/**
 * pidMode/ipcMode: `host` maps directly; `task` (share among the task's containers) is done by
 * joining the pause container's namespaces, so it needs awsvpc; `none` is an ipc mode only.
 */
function namespaceModes(ctx: SpecContext): { pidMode?: string; ipcMode?: string } {
  const td = ctx.task.taskDefinition;
  const join = ctx.pauseId ? `container:${ctx.pauseId}` : undefined;
  return {
    pidMode: td.pidMode === 'host' ? 'host' : td.pidMode === 'task' ? join : undefined,
    ipcMode: td.ipcMode === 'host' ? 'host' : td.ipcMode === 'none' ? 'none' : td.ipcMode === 'task' ? join : undefined,
  };
}

/**
 * Capabilities to drop. A Fargate container never has NET_RAW, whatever its definition says
 * (Fargate platform 1.4.0 runs containers without it, and SYS_PTRACE is the only capability a
 * Fargate definition may add): with it, a task could forge source addresses and answer ARP for
 * its neighbours on the subnet bridge it shares with other tasks, getting past their security
 * groups and reading their traffic. ICMP echo works only through unprivileged ICMP sockets
 * (busybox's ping uses a raw one and fails). EC2 containers keep Docker's default capabilities,
 * as on ECS.
 */
function capDropOf(drop: string[] | undefined, fargate: boolean): string[] | undefined {
  if (!fargate) return drop;
  const named = (drop ?? []).some((c) => /^(CAP_)?(NET_RAW|ALL)$/i.test(c));
  return named ? drop : [...(drop ?? []), 'NET_RAW'];
}

/**
 * The container's ulimits. Fargate sets nofile to 65535/65535 where the definition does not
 * (API_Ulimit: "The default nofile soft limit is 65535 and the default hard limit is 65535"),
 * here capped at the host's own hard limit (runc refuses to start a container above it:
 * "error setting rlimit type 7: operation not permitted"); elsewhere the engine's defaults stand.
 */
function ulimitsOf(def: ContainerDefinition, fargate: boolean, hostLimit?: number): ContainerSpec['host']['ulimits'] {
  const list = (def.ulimits ?? []).map((u) => ({ name: u.name, soft: u.softLimit, hard: u.hardLimit }));
  if (fargate && !list.some((u) => u.name === 'nofile')) {
    const n = Math.min(FARGATE_NOFILE, hostLimit ?? FARGATE_NOFILE);
    list.push({ name: 'nofile', soft: n, hard: n });
  }
  return list.length ? list : undefined;
}

const FARGATE_NOFILE = 65_535;

/** This host's hard limit on open files (/proc/self/limits), or undefined where it cannot be read. */
export function hostNofileLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(text);
  if (!m) return undefined;
  return m[1] === 'unlimited' ? undefined : Number(m[1]);
}

/** Docker names allow [a-zA-Z0-9][a-zA-Z0-9_.-]; ECS family and container names already fit. */
export function dockerContainerName(td: TaskDefinition, containerName: string, suffix: string): string {
  const clean = (s: string) => s.replace(/[^a-zA-Z0-9_.-]/g, '');
  return `ecs-${clean(td.family ?? 'task')}-${td.revision ?? 0}-${clean(containerName)}-${suffix}`;
}
