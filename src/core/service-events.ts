/**
 * Service events: ECS's message texts (ECS-REFERENCE 6.9) and the list rules: newest first, at
 * most 100, and an identical message is not repeated while it is still the newest one and less
 * than 6 hours old (ECS suppresses repeats "until the cause changes or ~6 h pass").
 */
import type { ServiceEvent } from './shapes/ecs';

export const MAX_SERVICE_EVENTS = 100;
export const DUPLICATE_WINDOW_MS = 6 * 60 * 60 * 1000;

const svc = (name: string) => `(service ${name})`;
const taskList = (ids: readonly string[]) => ids.map((id) => `(task ${id})`).join(' ');

/** Closest-instance reasons as ECS words them in "unable to place" events. */
const PLACEMENT_DETAIL: Record<string, string> = {
  'RESOURCE:MEMORY': 'has insufficient memory available',
  'RESOURCE:CPU': 'has insufficient CPU units available',
  'RESOURCE:PORTS': 'is already using a port required by your task',
  'RESOURCE:GPU': 'has insufficient GPU available',
  ATTRIBUTE: 'is missing an attribute required by your task',
  AGENT: 'encountered error "AGENT"',
};

export const serviceEventText = {
  started: (s: string, taskIds: readonly string[]) => `${svc(s)} has started ${taskIds.length} tasks: ${taskList(taskIds)}.`,
  stopped: (s: string, taskIds: readonly string[]) => `${svc(s)} has stopped ${taskIds.length} running tasks: ${taskList(taskIds)}.`,
  steadyState: (s: string) => `${svc(s)} has reached a steady state.`,
  deploymentCompleted: (s: string, deploymentId: string) => `${svc(s)} (deployment ${deploymentId}) deployment completed.`,
  deploymentFailed: (s: string, deploymentId: string) => `${svc(s)} (deployment ${deploymentId}) deployment failed: tasks failed to start.`,
  rollingBack: (s: string, deploymentId: string) => `${svc(s)} (deployment ${deploymentId}) deployment failed: tasks failed to start. Rolling back to the last completed deployment.`,
  /** `reason` is a placement failure reason, `instanceId` the closest instance (absent: none). */
  unableToPlace(s: string, reason: string, instanceId?: string): string {
    const head = `${svc(s)} was unable to place a task because no container instance met all of its requirements.`;
    if (instanceId === undefined) return `${head} Reason: No Container Instances were found in your cluster. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.`;
    const detail = PLACEMENT_DETAIL[reason] ?? `encountered error "${reason}"`;
    return `${head} The closest matching (container-instance ${instanceId}) ${detail}. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.`;
  },
  /** A Fargate service: the pool is Wharf's, so no instance is named. */
  unableToPlaceFargate: (s: string, capacityReason: string) => `${svc(s)} was unable to place a task. Reason: ${capacityReason}.`,
  unableToConsistentlyStart: (s: string) => `${svc(s)} is unable to consistently start tasks successfully.`,
  stalledByConfiguration: (s: string) =>
    `${svc(s)} was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.`,
  failedHealthChecks: (s: string, taskId: string) => `${svc(s)} (task ${taskId}) failed container health checks.`,
  // Load balancers (ECS-REFERENCE 6.8, 6.9, and events ECS wrote in 2026): ECS writes the two
  // target counts without a period.
  registeredTargets: (s: string, n: number, targetGroupArn: string) => `${svc(s)} registered ${n} targets in (target-group ${targetGroupArn})`,
  deregisteredTargets: (s: string, n: number, targetGroupArn: string) => `${svc(s)} deregistered ${n} targets in (target-group ${targetGroupArn})`,
  /** ECS names the draining tasks' deployment as a task set: `(service S, taskSet ecs-svc/…)`. */
  beganDraining: (s: string, deploymentId: string | undefined, n: number) =>
    `${deploymentId ? `(service ${s}, taskSet ${deploymentId})` : svc(s)} has begun draining connections on ${n} tasks.`,
  /** `target` is `(task <id>)` for ip targets, `(instance <ec2 id>)` for instance targets. */
  unhealthyTarget: (s: string, target: string, port: number, targetGroupArn: string, reason: string) =>
    `${svc(s)} ${target} (port ${port}) is unhealthy in (target-group ${targetGroupArn}) due to (reason ${reason}).`,
  /** Wharf's wording (ECS's text for a target group that is gone could not be verified). */
  targetGroupNotFound: (s: string, targetGroupArn: string) => `${svc(s)} failed to register targets in (target-group ${targetGroupArn}) with (error Target groups '${targetGroupArn}' not found)`,
  /** Wharf's wording (ECS's for this case was not found): modelled on targetGroupNotFound. */
  registryNotFound: (s: string, registryArn: string) => `${svc(s)} failed to register tasks in (service-registry ${registryArn}) with (error Service '${registryArn.split('/').pop()}' not found): the Cloud Map service does not exist`,
} as const;

/** Deployment rolloutStateReason texts. */
export const rolloutReason = {
  inProgress: (id: string) => `ECS deployment ${id} in progress.`,
  completed: (id: string) => `ECS deployment ${id} completed.`,
  circuitBreakerFailed: () => 'ECS deployment circuit breaker: tasks failed to start.',
  rollingBack: (toId: string) => `ECS deployment circuit breaker: rolling back to deploymentId ${toId}.`,
} as const;

/**
 * Adds messages (oldest first in `messages`) to a newest-first event list. A message equal to the
 * newest event younger than 6 h is dropped. Returns the same array object when nothing was added.
 * `newId` makes event ids (UUIDs in ECS); `nowS` is epoch seconds.
 */
export function addServiceEvents(events: readonly ServiceEvent[], messages: readonly string[], nowS: number, newId: () => string): ServiceEvent[] {
  let out = events as ServiceEvent[];
  for (const message of messages) {
    const newest = out[0];
    if (newest && newest.message === message && (nowS - (newest.createdAt ?? 0)) * 1000 < DUPLICATE_WINDOW_MS) continue;
    out = [{ id: newId(), createdAt: nowS, message }, ...out].slice(0, MAX_SERVICE_EVENTS);
  }
  return out;
}
