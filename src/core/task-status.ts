/**
 * Task lifecycle (ECS-REFERENCE.md section 4). lastStatus only moves forward along this order;
 * desiredStatus is RUNNING or STOPPED and only moves from RUNNING to STOPPED.
 *
 *   PROVISIONING -> PENDING -> ACTIVATING -> RUNNING -> DEACTIVATING -> STOPPING
 *        -> DEPROVISIONING -> STOPPED -> (DELETED)
 *
 * Not every task visits every status: an EC2 bridge task goes PENDING -> RUNNING -> STOPPED; an
 * awsvpc task starts in PROVISIONING and passes DEPROVISIONING on its way out.
 */
export const TASK_LAST_STATUS_ORDER = [
  'PROVISIONING',
  'PENDING',
  'ACTIVATING',
  'RUNNING',
  'DEACTIVATING',
  'STOPPING',
  'DEPROVISIONING',
  'STOPPED',
  'DELETED',
] as const;
export type TaskLastStatus = (typeof TASK_LAST_STATUS_ORDER)[number];

export function taskStatusRank(s: string): number {
  return TASK_LAST_STATUS_ORDER.indexOf(s as TaskLastStatus);
}

/** True when moving from `from` to `to` goes forward (or stays). Unknown statuses never move. */
export function isForward(from: string, to: string): boolean {
  const a = taskStatusRank(from);
  const b = taskStatusRank(to);
  return a >= 0 && b >= 0 && b >= a;
}

export const isTerminal = (lastStatus: string) => lastStatus === 'STOPPED' || lastStatus === 'DELETED';

export const CONTAINER_STATUS_ORDER = ['PENDING', 'RUNNING', 'STOPPED'] as const;

export function containerStatusRank(s: string): number {
  return CONTAINER_STATUS_ORDER.indexOf(s as (typeof CONTAINER_STATUS_ORDER)[number]);
}

/** ECS's stop codes and the reasons it writes with them. */
export const STOP = {
  userInitiated: { stopCode: 'UserInitiated', reason: 'Task stopped by user' },
  essentialExited: { stopCode: 'EssentialContainerExited', reason: 'Essential container in task exited' },
  failedToStart: { stopCode: 'TaskFailedToStart', reason: 'Task failed to start' },
  serviceScheduler: { stopCode: 'ServiceSchedulerInitiated', reason: 'Scaling activity initiated by (deployment %s)' },
  // A Fargate pool host lost for longer than its grace period: the task is gone with it. ECS's
  // stop code for infrastructure it retires; its exact reason text for a failed host is not
  // documented, so the wording is Wharf's.
  hostLost: { stopCode: 'TerminationNotice', reason: 'Task stopped because its underlying Fargate host was lost' },
} as const;

/** How long a STOPPED task stays describable before the reaper removes it (ECS: at least 1 h). */
export const STOPPED_TASK_RETENTION_MS = 60 * 60 * 1000;

export type HealthStatus = 'HEALTHY' | 'UNHEALTHY' | 'UNKNOWN';

/**
 * Task health from its containers (ECS-REFERENCE 3.7): only essential containers that define a
 * health check count; any UNHEALTHY makes the task UNHEALTHY, all HEALTHY makes it HEALTHY.
 */
export function taskHealthOf(containers: { essential: boolean; hasHealthCheck: boolean; health: HealthStatus | string | undefined }[]): HealthStatus {
  const judged = containers.filter((c) => c.essential && c.hasHealthCheck);
  if (judged.length === 0) return 'UNKNOWN';
  if (judged.some((c) => c.health === 'UNHEALTHY')) return 'UNHEALTHY';
  return judged.every((c) => c.health === 'HEALTHY') ? 'HEALTHY' : 'UNKNOWN';
}
