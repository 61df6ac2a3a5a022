/**
 * Task and container statuses as the agent reports them, with their order. Known status only
 * ever moves forward through TASK_STATUS_ORDER (ECS-REFERENCE 4.1).
 *
 *   PROVISIONING (awsvpc: network + pause container)
 *        |
 *     PENDING (pull, create, start in dependency order)
 *        |
 *     RUNNING (every container started)
 *        |
 *     STOPPING (stop signal, SIGKILL after stopTimeout, reverse dependency order)
 *        |
 *   DEPROVISIONING (awsvpc: pause container last)
 *        |
 *     STOPPED
 */
import type { NetworkBinding } from '../core/shapes/ecs';
import { TASK_LAST_STATUS_ORDER, type HealthStatus, type TaskLastStatus } from '../core/task-status';

/** The API's lastStatus order (core/task-status.ts), preceded by the agent's own NONE. */
export type TaskStatus = 'NONE' | Exclude<TaskLastStatus, 'DELETED'>;
export const TASK_STATUS_ORDER: readonly TaskStatus[] = ['NONE', ...TASK_LAST_STATUS_ORDER.filter((s): s is Exclude<TaskLastStatus, 'DELETED'> => s !== 'DELETED')];

export function taskStatusRank(s: TaskStatus): number {
  return TASK_STATUS_ORDER.indexOf(s);
}

/** Agent-internal container states; the API shows NONE..CREATED as PENDING. */
export type ContainerKnownStatus = 'NONE' | 'PULLED' | 'CREATED' | 'RUNNING' | 'STOPPED';

export function apiContainerStatus(s: ContainerKnownStatus): 'PENDING' | 'RUNNING' | 'STOPPED' {
  return s === 'RUNNING' ? 'RUNNING' : s === 'STOPPED' ? 'STOPPED' : 'PENDING';
}

export { taskHealthOf as taskHealth, type HealthStatus } from '../core/task-status';

export const OOM_REASON = 'OutOfMemoryError: Container killed due to memory usage';
export const ESSENTIAL_EXITED_REASON = 'Essential container in task exited';
/**
 * A container the agent had created (its id written down) that the engine no longer has when a
 * restarted agent looks for it: the ECS agent's ContainerVanishedError, in its words.
 */
export const VANISHED_REASON = 'ContainerVanishedError: No container matching saved ID found';

/** What a TaskRunner knows of its task and containers at one moment (Agent.tasks()). */
export interface TaskSnapshot {
  taskArn: string;
  knownStatus: TaskStatus;
  desiredStatus: 'RUNNING' | 'STOPPED';
  stopCode?: string;
  stoppedReason?: string;
  healthStatus: HealthStatus;
  privateIpv4Address?: string;
  /** Epoch ms: the first image pull began, the last one ended, an essential container stopped. */
  pullStartedAt?: number;
  pullStoppedAt?: number;
  executionStoppedAt?: number;
  containers: {
    name: string;
    status: string;
    /** The agent's own status of it (NONE, PULLED, CREATED, RUNNING, STOPPED), as the ECS agent's. */
    knownStatus?: ContainerKnownStatus;
    dockerId?: string;
    dockerName?: string;
    /** Epoch ms, from the engine. */
    createdAt?: number;
    startedAt?: number;
    finishedAt?: number;
    /** The image's id as the engine names it (`sha256:...`). */
    imageId?: string;
    /** IPv4 address per attached network, as the engine last reported them. */
    ipAddresses?: Record<string, string>;
    exitCode?: number;
    reason?: string;
    health: HealthStatus;
    networkBindings: NetworkBinding[];
    /** Restarts by the container's restart policy (the task metadata endpoint's RestartCount). */
    restartCount: number;
  }[];
}
