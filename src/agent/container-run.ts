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
  reportedKey?: string;
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
  };
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
