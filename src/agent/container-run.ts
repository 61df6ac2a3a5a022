/**
 * The record a TaskRunner keeps per container, and how it reads on the wire.
 */
import type { ContainerDefinition, NetworkBinding } from '../core/shapes/ecs';
import type { WharfContainerStateChange } from '../api/agent/protocol';
import type { PortBinding } from './runtime/container-runtime';
import { apiContainerStatus, type ContainerKnownStatus, type HealthStatus } from './task-status';

export interface ContainerRun {
  name: string;
  def: ContainerDefinition;
  essential: boolean;
  internal: boolean;
  dockerName: string;
  dockerId?: string;
  known: ContainerKnownStatus;
  everStarted: boolean;
  /** Start or create failed: the container never ran. */
  failedToStart: boolean;
  exitCode?: number;
  reason?: string;
  health: HealthStatus;
  bindings: NetworkBinding[];
  imageDigest?: string;
  stopIssued: boolean;
  finishedAt?: number;
  waitingSince?: number;
  /** Times the restart policy started this same container again (ECS's RestartCount). */
  restartCount: number;
  /** When the agent last started it (epoch ms); the engine's StartedAt is preferred. */
  lastStartAt?: number;
  /**
   * What the engine last said of it, for the task metadata endpoint: created and started (epoch
   * ms), its image's id (`sha256:...`) and its IPv4 address per attached network.
   */
  engine?: { createdAt?: number; startedAt?: number; imageId?: string; ipAddresses: Record<string, string> };
  reportedKey?: string;
  /** Its image was gone at create (removed after the pull step saw it) and is pulled once more. */
  imageRepulled?: boolean;
}

export function newContainerRun(def: ContainerDefinition, essential: boolean, internal: boolean, dockerName: string): ContainerRun {
  return {
    name: def.name ?? '',
    def,
    essential,
    internal,
    dockerName,
    known: 'NONE',
    everStarted: false,
    failedToStart: false,
    health: 'UNKNOWN',
    bindings: [],
    stopIssued: false,
    restartCount: 0,
  };
}

/** One observed exit of a container that had been running. */
export interface ObservedExit {
  exitCode?: number;
  /** Epoch ms, from the engine. */
  startedAt?: number;
  finishedAt?: number;
}

/**
 * Whether the container's restart policy (ContainerRestartPolicy) asks for this exit to be
 * answered by starting the container again: enabled, an exit code that is known and not ignored,
 * and a run of at least restartAttemptPeriod (default 300 s). A container that exits sooner is
 * not restarted, so a crash loop ends in the ordinary exit handling. Whether the task still wants
 * the container (desired RUNNING, no stop issued) is the runner's half of the decision.
 */
export function restartWanted(c: ContainerRun, exit: ObservedExit, now: number): boolean {
  const policy = c.def.restartPolicy;
  if (!policy?.enabled || c.internal || c.failedToStart || !c.everStarted) return false;
  if (exit.exitCode === undefined) return false;
  if ((policy.ignoredExitCodes ?? []).includes(exit.exitCode)) return false;
  const from = exit.startedAt ?? c.lastStartAt;
  if (from === undefined) return false;
  const ranMs = (exit.finishedAt ?? now) - from;
  return ranMs >= (policy.restartAttemptPeriod ?? 300) * 1000;
}

/** networkBindings as ECS reports them: what Docker published (bridge), or the ports themselves (host). */
export function bindingsOf(c: ContainerRun, ports: PortBinding[], networkMode: string): NetworkBinding[] {
  if (networkMode === 'host') {
    return (c.def.portMappings ?? [])
      .filter((p) => p.containerPort !== undefined)
      .map((p) => ({ bindIP: '0.0.0.0', containerPort: p.containerPort, hostPort: p.containerPort, protocol: p.protocol ?? 'tcp' }));
  }
  return ports.map((p) => ({ bindIP: p.hostIp || '0.0.0.0', containerPort: p.containerPort, hostPort: p.hostPort, protocol: p.protocol }));
}

export function containerChange(c: ContainerRun): WharfContainerStateChange {
  return {
    containerName: c.name,
    runtimeId: c.dockerId,
    imageDigest: c.imageDigest,
    status: apiContainerStatus(c.known),
    exitCode: c.known === 'STOPPED' ? c.exitCode : undefined,
    reason: c.reason,
    networkBindings: c.bindings,
    healthStatus: c.health,
  };
}

/**
 * An awsvpc task's ports are published on its pause container (assignPublicIp ENABLED), which
 * owns the network namespace: each running container's networkBindings are the published ports
 * of its own port mappings.
 */
export function bindFromPause(containers: readonly ContainerRun[], networkMode: string): void {
  if (networkMode !== 'awsvpc') return;
  for (const c of containers) {
    if (c.internal || c.known !== 'RUNNING') continue;
    c.bindings = pauseBindingsOf(containers, c);
  }
}

/** The ports the task's pause container publishes for `c`'s own port mappings. */
export function pauseBindingsOf(containers: readonly ContainerRun[], c: ContainerRun): NetworkBinding[] {
  const published = containers.find((x) => x.internal)?.bindings ?? [];
  const mine = new Set((c.def.portMappings ?? []).map((m) => `${m.containerPort}/${m.protocol ?? 'tcp'}`));
  return published.filter((b) => mine.has(`${b.containerPort}/${b.protocol ?? 'tcp'}`));
}

/** The container is STOPPED: its exit code, the first reason given, no bindings, when (`now` if not known). */
export function markStopped(c: ContainerRun, exitCode: number | undefined, reason: string | undefined, now: number): void {
  c.known = 'STOPPED';
  c.exitCode = exitCode;
  c.reason ??= reason;
  c.bindings = [];
  c.finishedAt ??= now;
}
